"""pytest-benchmark micro-benchmarks of the compiled core at n = 10^6.

Run: ``pytest bench/test_bench_core.py --benchmark-enable`` (figures are saved with
``--benchmark-autosave`` or ``--benchmark-json PATH``).
"""

import numpy as np
import pytest

from mlbs import RankIndex, WeightedIndex

N, B = 10**6, 256


@pytest.fixture(scope="module")
def weighted():
    index = WeightedIndex(N, seed=0)
    index.assign(np.random.default_rng(0).random(N))
    return index


@pytest.fixture(scope="module")
def ranked():
    index = RankIndex(N, seed=0)
    index.assign(np.random.default_rng(0).random(N))
    return index


@pytest.fixture
def batches():
    rng = np.random.default_rng(1)
    return rng.integers(0, N, (64, B)), rng.random((64, B))


def test_update(benchmark, weighted, batches):
    idx, w = batches
    counter = iter(range(10**9))
    benchmark(lambda: weighted.update(idx[next(counter) % 64], w[next(counter) % 64]))


def test_draw(benchmark, weighted):
    assert len(benchmark(weighted.draw, B)) == B


def test_draw_distinct(benchmark, weighted):
    assert len(set(benchmark(weighted.draw_distinct, B).tolist())) == B


def stepper(index, batches, draw):
    """One step: update a batch of B weights (or scores), then draw B distinct items."""
    idx, w = batches
    counter = iter(range(10**9))

    def step():
        t = next(counter) % 64
        index.update(idx[t], w[t])
        return draw()

    return step


def test_step_update_then_draw_distinct(benchmark, weighted, batches):
    assert len(benchmark(stepper(weighted, batches, lambda: weighted.draw_distinct(B)))) == B


def test_rank_step_update_then_draw_distinct(benchmark, ranked, batches):
    assert len(benchmark(stepper(ranked, batches, lambda: ranked.draw_distinct(B, 8.0)))) == B


def test_assign(benchmark, weighted):
    w = np.random.default_rng(2).random(N)
    benchmark(weighted.assign, w)
