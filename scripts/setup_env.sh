#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install mlbs into it.
#
# Nothing is reinstalled while the inputs of the installed package are unchanged: a hash of
# pyproject.toml, CMakeLists.txt, this script, the C++ core (cpp/), the binding (mlbs_core/) and
# the Python package (python/mlbs/, which is installed as a copy) is kept in .venv/.mlbs-stamp,
# and a run whose hash matches returns at once. Otherwise torch is installed first, pinned to the
# 2.13.0 CPU wheel, so that the package's "torch>=2.2" requirement is already satisfied and no
# CUDA packages are pulled; then the build tools (scikit-build-core, pybind11, cmake, ninja), which
# the developer loop of the README (scripts/build_inplace.sh) also uses; then mlbs without build
# isolation, so that its CMake build folder (build/) is reused and only changed sources recompile.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.mlbs-stamp

inputs_hash() {
  find pyproject.toml CMakeLists.txt scripts/setup_env.sh cpp mlbs_core python/mlbs -type f \
      ! -path '*/__pycache__/*' ! -path '*/.*' ! -name '*.pyc' ! -name '_core*.so' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64
}

want=$(inputs_hash)
if [ -x .venv/bin/mlbs ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date (no change in pyproject.toml, CMakeLists.txt, cpp/, mlbs_core/, python/mlbs/)"
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
. .venv/bin/activate
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja
python -m pip install --quiet --no-build-isolation ".[experiments,cluster,test]"
echo "$want" > "$STAMP"
echo "setup: mlbs installed into .venv (stamp $STAMP)"
