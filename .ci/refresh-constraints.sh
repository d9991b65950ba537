#!/usr/bin/env bash
# Re-resolve the project's dependencies from scratch and write constraints.txt, the pins that the README's
# install commands, CI and the Dockerfile use (`pip install -c constraints.txt ...`).
#
# Run it on purpose (a new release of a dependency is wanted, or pyproject.toml changed its requirements),
# then run the tests and commit constraints.txt with the change. Without it, a fresh machine next month would
# resolve other versions than the ones the tests passed with.
#
#   bash .ci/refresh-constraints.sh            # every extra the README installs
#   EXTRAS=ui,local,dev bash .ci/refresh-constraints.sh   # without the PostgreSQL driver
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
extras="${EXTRAS:-ui,local,sandbox,dev,postgres}"
python_bin="${PYTHON_BIN:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python_bin" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
# The build of llama-cpp-python is portable (no -march=native), as in the README.
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$work/venv/bin/pip" install -q "$repo[$extras]"
{
    echo "# Pins for pip install -c constraints.txt: every dependency of codearena[$extras], resolved on"
    echo "# $(date -u +%Y-%m-%d) by .ci/refresh-constraints.sh (run it again to move them forward)."
    "$work/venv/bin/pip" freeze --exclude-editable | grep -v -i '^codearena[= @]'
} > "$repo/constraints.txt.new"
mv "$repo/constraints.txt.new" "$repo/constraints.txt"
echo "wrote $repo/constraints.txt ($(grep -vc '^#' "$repo/constraints.txt") pins)"
