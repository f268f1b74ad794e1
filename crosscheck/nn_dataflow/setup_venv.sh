#!/usr/bin/env bash
# Create the private virtual environment for the nn_dataflow cross-check.
#
# nn_dataflow (Stanford, PyPI `nn-dataflow`) needs an old sympy (==1.9), which
# would break the main environment, so it lives in its own venv, by default
# .venv-nn-dataflow at the repository root (ignored by git through `.venv*/`).
# Usage: bash crosscheck/nn_dataflow/setup_venv.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:-$root/.venv-nn-dataflow}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "nn-dataflow==2.1" "sympy==1.9"
# The project itself is not installed here: run_nn_dataflow.py writes a CSV that
# compare.py reads in the main environment (docs/estimation_crosscheck.md).
"$venv/bin/python" -c "import nn_dataflow, sympy; print('nn_dataflow OK, sympy', sympy.__version__)"
echo "venv ready: $venv"
