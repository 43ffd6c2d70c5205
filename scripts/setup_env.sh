#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install mlbs into it.
# torch is installed first, pinned to the 2.13.0 CPU wheel, so that the package's
# "torch>=2.2" requirement is already satisfied and no CUDA packages are pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet ".[experiments,cluster,test]"
