#!/usr/bin/env bash
# Sanitizer job: build the compiled core with AddressSanitizer and UndefinedBehaviorSanitizer
# (CMake option MLBS_SANITIZE, build dir build/asan) and run the tests of the core and of the
# policies against it. The in-place module python/mlbs/_core*.so is not touched: the tests
# import a temporary copy of the package that holds the sanitized module.
#
# Exit status: non-zero when the build fails, a test fails, or any sanitizer report is written
# (reports of child processes included: they go to files that are checked at the end).
# Extra arguments go to pytest (e.g. -x, -k ...); the test files are listed below.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
CXX="${CXX:-g++}"

cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DMLBS_SANITIZE=ON -DMLBS_NATIVE=OFF \
  -DCMAKE_CXX_COMPILER="$(command -v "$CXX")" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build build/asan

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pkg" "$work/reports"
cp -r python/mlbs "$work/pkg/mlbs"
find "$work/pkg" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$work"/pkg/mlbs/_core*.so
cp build/asan/_core*.so "$work/pkg/mlbs/"

# The sanitizer runtimes must be loaded before anything else (Python is not built with them);
# libstdc++ with them, so that the runtime's operator new/delete interposition sees it.
preload="$("$CXX" -print-file-name=libasan.so):$("$CXX" -print-file-name=libstdc++.so)"
for lib in ${preload//:/ }; do
  [ -f "$lib" ] || { echo "sanitize: $lib not found" >&2; exit 2; }
done

tests=(tests/test_weighted_index.py tests/test_rank_index.py tests/test_core_fuzz.py
       tests/test_core_robustness.py tests/test_core_kernels.py tests/test_build.py tests/test_policies.py
       # the structures' tests again on the baseline path: they run above already, on the path
       # this CPU uses; twice would double the job's time
       --deselect tests/test_build.py::test_core_tests_pass_on_the_baseline_path)
status=0
# CPython keeps objects alive until exit by design: leak detection off.
env LD_PRELOAD="$preload" PYTHONPATH="$work/pkg" MLBS_EXPECT_SANITIZED=1 \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$work/reports/asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan" \
  PYTHONFAULTHANDLER=1 "$PY" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@" || status=$?

if compgen -G "$work/reports/*" >/dev/null; then
  echo "sanitize: sanitizer reports:" >&2
  cat "$work"/reports/* >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize: tests failed under the sanitizers (pytest status $status)" >&2
  exit "$status"
fi
echo "sanitize: no sanitizer report; tests passed"
