"""How the compiled core was built (the flags recorded in mlbs._core.build_flags), and its
instruction-set paths: each narrower set, forced in a subprocess (MLBS_MAX_ISA), gives what the set
in use gives."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest

from mlbs import _core


def test_build_flags_are_recorded():
    assert isinstance(_core.build_flags, str) and "-O" in _core.build_flags


@pytest.mark.skipif(os.environ.get("MLBS_EXPECT_SANITIZED") != "1", reason="only in the sanitizer job")
def test_the_sanitized_build_is_the_one_under_test():
    """scripts/sanitize.sh sets MLBS_EXPECT_SANITIZED: the module it tests must be its own build."""
    assert "-fsanitize=address,undefined" in _core.build_flags


def test_default_build_is_portable():
    """The default build targets a baseline every x86-64 CPU of the last fifteen years runs
    (wider paths are chosen at run time); -march=native is an explicit opt-in (MLBS_NATIVE)."""
    assert "-march=native" not in _core.build_flags


#: The instruction sets narrower than the one this process uses: each is tested against it.
ISA_ORDER = ("baseline", "avx2", "avx512")
NARROWER = ISA_ORDER[:ISA_ORDER.index(_core.isa)]


def run_with_isa(isa: str, code: str) -> bytes:
    """Run code in a new interpreter with MLBS_MAX_ISA=isa (checked to be the set in use); its
    standard output."""
    env = dict(os.environ, MLBS_MAX_ISA=isa, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    code = f"from mlbs import _core; assert _core.isa == {isa!r}, _core.isa\n" + code
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:]).decode(errors="replace")
    return proc.stdout


def test_an_unknown_isa_name_is_refused_when_the_core_loads():
    env = dict(os.environ, MLBS_MAX_ISA="sse9", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", "from mlbs import WeightedIndex"], capture_output=True, env=env,
                          timeout=600)
    assert proc.returncode != 0 and b"MLBS_MAX_ISA must be baseline, avx2 or avx512, got 'sse9'" in proc.stderr


INDEX_CASES = """
import numpy as np
from mlbs import WeightedIndex
rng = np.random.default_rng(3)
index = WeightedIndex(300_000, seed=11)
index.assign(rng.random(300_000) * 10.0 ** rng.uniform(-6, 0, 300_000))
out = [index.draw(1000), index.draw_distinct(5000)]
index.update(rng.integers(0, 300_000, 20_000), rng.random(20_000))
out += [index.draw_distinct(256), index.prefix(np.arange(0, 300_001, 997))]
"""


@pytest.mark.parametrize("isa", NARROWER)
def test_narrower_path_draws_exactly_what_the_wide_path_draws(isa):
    """The inner loops compiled for a narrower instruction set and for the one in use give the
    same tree and the same draws, bit for bit."""
    code = (INDEX_CASES + "print(repr(index.total()))\n"
            "np.save(__import__('sys').stdout.buffer, np.concatenate([o.astype(float) for o in out]))\n")
    total_line, _, saved = run_with_isa(isa, code).partition(b"\n")
    narrow = np.load(io.BytesIO(saved))
    scope: dict = {}
    exec(INDEX_CASES, scope)
    assert repr(scope["index"].total()) == total_line.decode()
    np.testing.assert_array_equal(np.concatenate([o.astype(float) for o in scope["out"]]), narrow)


@pytest.mark.parametrize("isa", NARROWER)
def test_core_tests_pass_on_a_narrower_path(isa):
    """The tests of the sampling structures, run again on a narrower instruction set (the
    baseline: what a CPU without AVX2 runs)."""
    here = os.path.dirname(__file__)
    out = run_with_isa(
        isa,
        "import sys, pytest;"
        f"sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', {os.path.join(here, 'test_weighted_index.py')!r},"
        f" {os.path.join(here, 'test_rank_index.py')!r}]))"
    )
    assert b" passed" in out and b"failed" not in out


KERNEL_CASES = """
import numpy as np
from mlbs import _core
rng = np.random.default_rng(5)
n, m, q = 2000, 300, 374
counts = rng.integers(0, 9, size=n)
indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
cols = np.concatenate([np.sort(rng.choice(q, c, replace=False)) for c in counts]).astype(np.int32)
idx = rng.choice(n, m, replace=False).astype(np.int64)
losses = []
for dtype in (np.float64, np.float32):
    for scale in (0.5, 4.0, 40.0):
        z = (rng.standard_normal((m, q)) * scale).astype(dtype)
        losses.append(_core._observe_bce(idx, z, indptr, cols, q, False)[1])
        p = rng.random((m, q)).astype(dtype)
        losses.append(_core._observe_bce(idx, p, indptr, cols, q, True)[1])
        assert _core._outputs_valid(z, False) and _core._outputs_valid(p, True)
        assert not _core._outputs_valid(np.where(z > scale, np.inf, z), False)
"""


@pytest.mark.parametrize("isa", NARROWER)
def test_narrower_kernels_agree_with_the_wide_path(isa):
    """The per-batch BCE kernel compiled for a narrower instruction set and for the one in use:
    float64 outputs give the same losses bit for bit; float32 outputs go through glibc's vector
    expf/log1pf, whose wider variants may differ in the last bits of a term, and the per-sample
    losses then agree within 2e-8 relative (a sixth of float32's epsilon)."""
    code = KERNEL_CASES + "\nnp.save(__import__('sys').stdout.buffer, np.stack(losses))\n"
    narrow = np.load(io.BytesIO(run_with_isa(isa, code)))
    scope: dict = {}
    exec(KERNEL_CASES, scope)
    wide = np.stack(scope["losses"])
    np.testing.assert_array_equal(wide[:6], narrow[:6])
    np.testing.assert_allclose(wide[6:], narrow[6:], rtol=2e-8, atol=0)


WINDOW_CASES = """
import itertools
import numpy as np
import scipy.sparse as sp
from mlbs import core
from mlbs.signals.window import PredictionWindow
rng = np.random.default_rng(8)
n, q = 120, 300
Y = sp.csr_matrix((rng.random((n, q)) < 0.05).astype(np.float64))
labels = core.LabelsCSR.of(Y)
results = {}
for length, code, table, kind, dtype in itertools.product(
        (3, 8), ("float64", "float32", "uint16", "uint8"), ("float64", "float32"),
        ("logits", "probabilities"), (np.float64, np.float32)):
    win = PredictionWindow(n, q, window=length, window_dtype=code, table_dtype=table, track_phi=True,
                           track_loss=True, alpha=0.3, entropy_nan=kind == "probabilities")
    losses = []
    for visit in range(11):
        rows = rng.choice(n, 40, replace=False).astype(np.int64)
        z = rng.standard_normal((40, q)) * 6.0
        out = z if kind == "logits" else 1.0 / (1.0 + np.exp(-z))
        losses.append(win.visit(rows, out.astype(dtype), kind, labels))
    key = f"{length}-{code}-{table}-{kind}-{np.dtype(dtype).name}"
    results[key] = [np.concatenate(losses)] + [getattr(win, t).astype(np.float64).ravel()
                                                for t in ("window", "E", "phi", "loss")]
"""


@pytest.mark.parametrize("isa", NARROWER)
def test_narrower_window_kernel_agrees_with_the_wide_path(isa):
    """The prediction window's kernel (Uncertain, D2ACE) compiled for a narrower instruction set
    and for the one in use, over window lengths 3 (one fused loop) and 8 (the summed changes),
    every storage and table type, logits and probabilities, 11 visits of 40 of 120 rows. Logits
    go through the inline polynomial e^x and log1p only: every table equal bit for bit.
    Probabilities go through glibc's vector log and log1p, whose wider variants may differ in
    the last bit of a term: float64 results within 1e-14 relative, float32 tables within one
    float32 rounding (2^-23 relative), window codes equal."""
    code = (WINDOW_CASES + "\nimport pickle, sys\npickle.dump(results, sys.stdout.buffer)\n")
    import pickle

    narrow = pickle.loads(run_with_isa(isa, code))
    scope: dict = {}
    exec(WINDOW_CASES, scope)
    wide = scope["results"]
    assert wide.keys() == narrow.keys() and len(wide) == 64
    for key, arrays in wide.items():
        for name, a, b in zip(("sample loss", "window", "E", "phi", "loss"), arrays, narrow[key]):
            if "logits" in key or name == "window":
                np.testing.assert_array_equal(a, b, err_msg=f"{key} {name}")
            else:
                single = name != "sample loss" and "-float32-probabilities" in key
                np.testing.assert_allclose(a, b, rtol=2.0 ** -23 if single else 1e-14, atol=0,
                                           err_msg=f"{key} {name}")
