#!/usr/bin/env bash
# Developer build: compile the core into python/mlbs/ so that PYTHONPATH=python works
# without reinstalling. Uses the active Python (run inside .venv). The build is the portable
# default; MLBS_NATIVE=ON scripts/build_inplace.sh optimises for this CPU instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLBS_NATIVE="${MLBS_NATIVE:-OFF}" \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/dev
# Copy then rename: a Python process that has the old module mapped keeps a valid file.
for so in build/dev/_core*.so; do
  cp "$so" "python/mlbs/.$(basename "$so").tmp"
  mv -f "python/mlbs/.$(basename "$so").tmp" "python/mlbs/$(basename "$so")"
done
