"""constraints.txt pins what a fresh machine installs (README, CI, Dockerfile): every requirement the
project names must be pinned there, to one exact version, or next month's machine tests other code."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# Installed elsewhere on purpose: official vllm lives in its own venv (.ci/setup-vllm.sh), never beside gradio.
OWN_VENV = {"vllm"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (NAME==VERSION)"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_requirement_is_pinned_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"] if "python_version<'3.11'" not in r.replace(" ", "")}
    for reqs in project["optional-dependencies"].values():
        names |= {_name(r) for r in reqs} - OWN_VENV
    pins = _pins()
    missing = sorted(names - set(pins))
    assert not missing, f"not pinned in constraints.txt: {missing}; run bash .ci/refresh-constraints.sh"


def test_the_readme_and_the_image_install_with_the_pins():
    readme = (ROOT / "README.md").read_text().splitlines()
    setup = [ln for ln in readme[:8] if ln.startswith("python3 -m venv")]
    assert len(setup) == 2 and all("-c constraints.txt" in ln for ln in setup)
    assert "-c constraints.txt" in (ROOT / "Dockerfile").read_text()
