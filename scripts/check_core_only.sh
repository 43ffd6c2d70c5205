#!/usr/bin/env bash
# Check that the sampler works with the core dependencies alone (numpy, scipy, numba, llvmlite,
# faiss-cpu): no torch, tqdm or matplotlib installed, none of them imported.
#
# Makes a throwaway virtual environment under build/ with exactly the core dependencies of
# pyproject.toml (same version bounds) and reuses it while those bounds are unchanged. The package
# itself is taken from python/ (PYTHONPATH), with the compiled core built in place there by
# scripts/build_inplace.sh, so the check runs the working tree.
#
# Usage: scripts/check_core_only.sh            (PYTHON=... picks the interpreter; default: the one
#                                                of .venv, which matches the in-place build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
venv=build/core-only-venv
stamp="$venv/core-dependencies.txt"

# The core dependencies, one requirement a line, as pyproject.toml states them.
deps="$("$PYTHON" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
EOF
)"
ext_suffix="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
if ! ls python/mlbs/_core"$ext_suffix" >/dev/null 2>&1; then
  echo "check_core_only: python/mlbs/_core$ext_suffix is missing; run scripts/build_inplace.sh first" >&2
  exit 1
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$deps" ] && [ -x "$venv/bin/python" ]; then
  echo "check_core_only: reusing $venv"
else
  echo "check_core_only: creating $venv with:"
  printf '  %s\n' $deps
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  # shellcheck disable=SC2086  # one argument per requirement; none contains a space
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $deps
  printf '%s' "$deps" > "$stamp"
fi

PYTHONPATH=python "$venv/bin/python" - <<'EOF'
import importlib.util
import sys

absent = [m for m in ("torch", "tqdm", "matplotlib") if importlib.util.find_spec(m) is not None]
assert not absent, f"the core-only environment must not contain {absent}"

import numpy as np

import mlbs
import mlbs.data
import mlbs.metrics
import mlbs.policies
from mlbs.policies import Adaptive, Random
from mlbs.selector import BatchSelector

rng = np.random.default_rng(0)
n, d, q, batch = 600, 8, 5, 64
X = rng.normal(size=(n, d)).astype(np.float32)
Y = (rng.random((n, q)) < 0.2).astype(np.int8)
for policy in (Adaptive(Y, X, seed=0), Random(Y, seed=0)):
    selector = BatchSelector(policy, batch_size=batch, warmup_epochs=1, seed=0)
    seen = []
    for epoch in range(3):
        for indices in selector.epoch(epoch):
            logits = rng.normal(size=(len(indices), q))
            selector.observe(indices, logits)
            seen.append(indices)
    drawn = np.concatenate(seen)
    assert drawn.size == 3 * n and drawn.min() >= 0 and drawn.max() < n, type(policy).__name__
    p = policy.probabilities()
    assert p.shape == (n,) and abs(p.sum() - 1.0) < 1e-9, type(policy).__name__

heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tqdm", "matplotlib"))
assert not heavy, f"imported without being asked for: {heavy}"

# The console script a core-only install gets must at least start and explain itself.
import contextlib
import io

from mlbs import cli

with contextlib.redirect_stdout(io.StringIO()) as text:
    try:
        cli.main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0, f"mlbs --help exited with {stop.code}"
assert "usage" in text.getvalue().lower(), "mlbs --help printed no usage"
print(f"check_core_only: mlbs {mlbs.__version__} imports and selects without torch, tqdm, matplotlib "
      f"(Adaptive and Random, 3 epochs of {n} samples); mlbs --help runs")
EOF
