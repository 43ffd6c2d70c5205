"""The internal kernels of the compiled core refuse out-of-range indices instead of reading or
writing out of bounds (their Python wrappers in mlbs.core check first; these calls bypass them).
Run in a fresh interpreter, so that a regression fails the test instead of killing the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap


def run_isolated(code: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_quantized_observation_refuses_an_out_of_range_index():
    result = run_isolated(
        """
        import json
        import numpy as np
        from mlbs import _core
        table, w = np.zeros(10), np.ones(10)
        out = {}
        for bad in [10**9, 10, -1]:
            try:
                _core._observe_quantized(table, w, np.array([1, bad]), np.array([0.5, 0.5]), 1.0, 0, 2.0)
                out[str(bad)] = "no error"
            except IndexError as e:
                out[str(bad)] = str(e)
        out["table unchanged"] = bool((table == 0).all())
        print(json.dumps(out))
        """
    )
    assert result.pop("table unchanged")
    for bad, message in result.items():
        assert f"index {bad}" in message, (bad, message)


def test_bce_observation_refuses_label_rows_outside_the_label_arrays():
    result = run_isolated(
        """
        import json
        import numpy as np
        from mlbs import _core
        logits = np.zeros((2, 3), dtype=np.float32)
        good_ptr, good_cols = np.array([0, 1, 2, 3], dtype=np.int64), np.array([0, 2, 1], dtype=np.int64)
        cases = {
            "valid": (np.array([0, 2]), good_ptr, good_cols),
            "row": (np.array([0, 3]), good_ptr, good_cols),
            "indptr past cols": (np.array([0, 1]), np.array([0, 1, 10**9, 3], dtype=np.int64), good_cols),
            "label >= q": (np.array([0, 1]), good_ptr, np.array([0, 7, 1], dtype=np.int64)),
            "negative label": (np.array([0, 1]), good_ptr, np.array([0, -4, 1], dtype=np.int64)),
        }
        out = {k: _core._observe_bce(i, logits, p, c, 3, False) is None for k, (i, p, c) in cases.items()}
        print(json.dumps(out))
        """
    )
    assert result == {"valid": False, "row": True, "indptr past cols": True, "label >= q": True,
                      "negative label": True}
