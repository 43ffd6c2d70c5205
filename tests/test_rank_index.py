"""RankIndex (rank-based selection, eq. 3 of the seed paper) against a numpy reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbs import RankIndex
from sampling_laws import ALPHA, chisquare_pvalue, count, sequential_law


def reference_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ascending ranks, ties broken by item id (stable sort of the scores)."""
    order = np.lexsort((np.arange(len(scores)), scores))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def reference_probabilities(scores: np.ndarray, pressure: float) -> np.ndarray:
    """p_i = s^(r_i/n) / sum_j s^(r_j/n) (Loshchilov & Hutter 2016; seed paper eq. 3)."""
    n = len(scores)
    w = pressure ** (reference_ranks(scores) / n)
    return w / w.sum()


score_st = st.one_of(st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e6, 1e6))


@st.composite
def histories(draw):
    n = draw(st.integers(1, 200))
    start = draw(st.lists(score_st, min_size=n, max_size=n))
    updates = []
    for _ in range(draw(st.integers(0, 5))):
        k = draw(st.integers(0, 30))
        updates.append(
            (
                draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k)),
                draw(st.lists(score_st, min_size=k, max_size=k)),
            )
        )
    return n, start, updates


@st.composite
def large_histories(draw):
    """Over a thousand items and updates of hundreds of them at once, with many ties: blocks of
    the index are split and merged (it keeps a few hundred items per block)."""
    n = draw(st.integers(600, 2500))
    levels = draw(st.integers(1, 50))  # scores from a few values: long runs of ties
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = rng.integers(0, levels, n).astype(float)
    updates = []
    for _ in range(draw(st.integers(1, 6))):
        k = draw(st.integers(1, 900))
        lo = draw(st.integers(0, n - 1))  # a run of consecutive ranks leaves its blocks
        idx = np.argsort(start, kind="stable")[lo : lo + k] if draw(st.booleans()) else rng.integers(0, n, k)
        updates.append((idx.tolist(), (rng.integers(0, levels, len(idx)) + draw(st.sampled_from([0.0, 1e3]))).tolist()))
    return n, start.tolist(), updates


def check_against_reference(history, pressure):
    n, start, updates = history
    index = RankIndex(n, seed=0)
    ref = np.array(start, dtype=float)
    index.assign(ref)
    for idx, s in updates:
        index.update(np.array(idx, dtype=np.int64), np.array(s, dtype=float))
        for i, x in zip(idx, s):
            ref[i] = x
    order = np.lexsort((np.arange(n), ref))
    np.testing.assert_array_equal(index.scores(), ref)
    np.testing.assert_array_equal(index.rank(np.arange(n)), reference_ranks(ref))
    np.testing.assert_array_equal(index.order(), order)
    np.testing.assert_array_equal(index.select(np.arange(1, n + 1)), order)
    np.testing.assert_allclose(index.probabilities(pressure), reference_probabilities(ref, pressure), rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from([1.0, 1.5, 8.0, 1e4]))
def test_ranks_and_probabilities_match_reference(history, pressure):
    check_against_reference(history, pressure)


@settings(max_examples=40, deadline=None)
@given(large_histories(), st.sampled_from([1.0, 8.0]))
def test_ranks_match_reference_across_block_splits_and_merges(history, pressure):
    check_against_reference(history, pressure)


def test_order_survives_blocks_emptied_and_overfilled():
    """Two runs of 512 consecutive ranks move to the top (their blocks empty and merge, the top
    block overflows and splits), then every item is tied, then scores are reversed."""
    n = 3000
    index = RankIndex(n, seed=0)
    ref = np.arange(n, dtype=float)
    index.assign(ref)
    steps = [
        (np.arange(256, 768), 1e6 + np.arange(512.0)),
        (np.arange(1500, 2012), 2e6 + np.arange(512.0)),
        (np.arange(n)[::-1], np.zeros(n)),
        (np.arange(n), -np.arange(n, dtype=float)),
    ]
    for idx, s in steps:
        index.update(idx, s)
        ref[idx] = s
        order = np.lexsort((np.arange(n), ref))
        np.testing.assert_array_equal(index.order(), order)
        np.testing.assert_array_equal(index.select(np.arange(1, n + 1)), order)
        np.testing.assert_array_equal(index.rank(np.arange(n)), reference_ranks(ref))
    assert sorted(index.draw_distinct(n, 8.0).tolist()) == list(range(n))  # the fallback path


def test_initial_ranks_follow_ids():
    index = RankIndex(7, seed=0)
    np.testing.assert_array_equal(index.rank(np.arange(7)), np.arange(1, 8))


@pytest.mark.parametrize("pressure", [8.0, 100.0, 1.0])
def test_draws_follow_the_rank_law(pressure):
    rng = np.random.default_rng(5)
    scores = rng.normal(size=40)
    index = RankIndex(40, seed=3)
    index.assign(scores)
    draws = index.draw(300_000, pressure)
    p = reference_probabilities(scores, pressure)
    assert chisquare_pvalue(count(draws.tolist()), dict(enumerate(p)), len(draws)) > ALPHA


@pytest.mark.parametrize("n,k,pressure", [(6, 3, 8.0), (4, 3, 1e6)], ids=["rejection", "fallback"])
def test_distinct_draws_follow_the_sequential_rank_law(n, k, pressure):
    scores = np.random.default_rng(2).normal(size=n)
    index = RankIndex(n, seed=9)
    index.assign(scores)
    trials = 40_000
    rows = [tuple(index.draw_distinct(k, pressure).tolist()) for _ in range(trials)]
    law = sequential_law(reference_probabilities(scores, pressure), k)
    assert chisquare_pvalue(count(rows), law, trials) > ALPHA


def test_distinct_draw_of_all_items_is_a_permutation():
    index = RankIndex(50, seed=1)
    index.assign(np.random.default_rng(0).random(50))
    assert sorted(index.draw_distinct(50, 8.0).tolist()) == list(range(50))


def test_state_and_pickle_restore_identical_sequences():
    index = RankIndex(2000, seed=4)
    index.assign(np.random.default_rng(1).random(2000))
    saved = index.rng_state
    a = index.draw_distinct(128, 8.0)
    index.rng_state = saved
    np.testing.assert_array_equal(index.draw_distinct(128, 8.0), a)
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.draw(64, 8.0), index.draw(64, 8.0))


def test_bad_input_raises_and_changes_nothing():
    index = RankIndex(10, seed=0)
    index.assign(np.arange(10.0))
    before = index.scores().copy()
    with pytest.raises(ValueError, match="item 4"):
        index.update([1, 4], [0.5, np.nan])
    with pytest.raises(IndexError, match="index 10"):
        index.update([10], [0.5])
    with pytest.raises(TypeError, match="integers"):
        index.update([0.5], [0.5])
    with pytest.raises(ValueError, match="different lengths"):
        index.update([1, 2], [0.5])
    np.testing.assert_array_equal(index.scores(), before)
    for bad in [0.5, np.nan, np.inf]:
        with pytest.raises(ValueError, match="pressure"):
            index.draw(1, bad)
    with pytest.raises(IndexError, match="rank 0"):
        index.select([1, 0])
    with pytest.raises(IndexError, match="rank 11"):
        index.select([11])
    with pytest.raises(ValueError, match="11 distinct items out of 10"):
        index.draw_distinct(11, 8.0)
    with pytest.raises(ValueError, match="at least one item"):
        RankIndex(0)


def test_assign_orders_extreme_keys_and_signed_zeros_like_the_reference():
    """assign sorts by the keys' bits (a radix sort): every digit of the 64-bit keys differs
    somewhere here, with both zeros (equal, so ordered by id), subnormals and the extremes."""
    rng = np.random.default_rng(21)
    n = 20_000
    scores = rng.standard_normal(n) * 10.0 ** rng.integers(-308, 308, n)
    special = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0]
    scores[rng.integers(0, n, 4000)] = rng.choice(special, 4000)
    index = RankIndex(n, seed=0)
    index.assign(scores)
    order = np.lexsort((np.arange(n), scores))  # numpy: -0.0 == 0.0, ties by id
    np.testing.assert_array_equal(index.order(), order)
    np.testing.assert_array_equal(index.rank(np.arange(n)), reference_ranks(scores))
    np.testing.assert_array_equal(index.scores(), scores)
    index.update(order[:500], np.zeros(500))  # entries written by assign are found again
    scores[order[:500]] = 0.0
    np.testing.assert_array_equal(index.order(), np.lexsort((np.arange(n), scores)))
