#!/usr/bin/env bash
# Run the test suite in the project's environment (made by scripts/setup_env.sh).
# pytest exits with 5 when it collected no tests: that means nothing was checked, so it is
# reported as a failure rather than passed on silently.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; refusing to report success" >&2
  exit 1
fi
exit "$status"
