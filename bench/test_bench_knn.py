"""pytest-benchmark timings of the weight pipeline at a small size (run with ``--benchmark-enable``).

``python -m pytest bench/test_bench_knn.py --benchmark-enable`` (the project's
pytest options disable benchmarks by default, so in a normal test run each
function executes once as a smoke test).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from knn_weights import mixture  # noqa: E402

from mlbs.statistics.imbalance import imbalance_weights  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return mixture(20_000, 64, components=64)


@pytest.mark.parametrize("flat_max_rows", [10**9, 0], ids=["flat", "pruned"])
def test_exact_weights(benchmark, data, flat_max_rows):
    X, Y = data
    res = benchmark(imbalance_weights, X, Y, 5, method="exact", flat_max_rows=flat_max_rows)
    assert res.w.shape == (X.shape[0],)


def test_ivf_weights(benchmark, data):
    X, Y = data
    res = benchmark(imbalance_weights, X, Y, 5, method="ivf")
    assert res.w.shape == (X.shape[0],)
