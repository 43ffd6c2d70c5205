#!/usr/bin/env bash
# Everything the project checks, in the project's environment (made by scripts/setup_env.sh):
#   1. the test suite (pytest) against the installed package;
#   2. the sampler with the core dependencies alone (no torch, tqdm or matplotlib installed), on
#      the working tree with the core compiled in place (scripts/check_core_only.sh);
#   3. the core and policy tests under AddressSanitizer and UndefinedBehaviorSanitizer
#      (scripts/sanitize.sh).
# Arguments go to pytest in step 1 only; with arguments, steps 2 and 3 are skipped (a developer
# running a subset). pytest exits with 5 when it collected no tests: that means nothing was
# checked, so it is reported as a failure rather than passed on silently.
set -uo pipefail
cd "$(dirname "$0")/.."

.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; refusing to report success" >&2
  exit 1
fi
[ "$status" -eq 0 ] || exit "$status"
[ "$#" -eq 0 ] || exit 0

set -e
echo "run_tests: core dependencies alone"
# The check runs the working tree with the compiled core beside it: the one setup just installed
# (built from the same sources, as its stamp says), copied in without compiling again.
installed=$(.venv/bin/python -c 'import mlbs._core as c; print(c.__file__)')
cp "$installed" "python/mlbs/.$(basename "$installed").tmp"
mv -f "python/mlbs/.$(basename "$installed").tmp" "python/mlbs/$(basename "$installed")"
./scripts/check_core_only.sh
echo "run_tests: sanitizers"
./scripts/sanitize.sh
