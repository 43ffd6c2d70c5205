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


def test_benchmark_configuration_reports_recall_and_memory():
    from knn_weights import run_one

    r = run_one({"kind": "unclustered", "n": 3000, "d": 16, "k": 5, "method": "ivf", "check_queries": 500})
    assert r["recall_queries"] == 1000 and r["check_queries"] == 500
    assert abs(r["recall_reported"] - r["recall_check"]) < 0.05  # two independent samples of the same recall
    assert r["low_recall_warning"] == (r["recall_reported"] < 0.95)
    assert r["peak_rss_mb"] >= r["peak_rss_data_mb"] > 0 and r["wall_s"] > 0
    exact = run_one({"kind": "clustered", "n": 2000, "d": 16, "k": 5, "method": "exact", "check_queries": 500})
    assert exact["recall_reported"] == 1.0 and exact["recall_queries"] == 0 and "recall_check" not in exact
