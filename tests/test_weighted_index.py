"""WeightedIndex against a numpy reference: probabilities, draws, state, bad input."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbs import WeightedIndex
from sampling_laws import ALPHA, chisquare_pvalue, count, sequential_law

# ---------------------------------------------------------------------------------------------
# Probabilities after arbitrary sequences of updates (property tests against w / sum(w))

weights_st = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-300, max_value=1e300),
    st.floats(min_value=0.0, max_value=10.0),
)


@st.composite
def histories(draw):
    n = draw(st.integers(1, 300))
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            ops.append(("assign", draw(st.lists(weights_st, min_size=n, max_size=n))))
        else:
            k = draw(st.integers(0, 40))
            idx = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))
            w = draw(st.lists(weights_st, min_size=k, max_size=k))
            ops.append(("update", idx, w))
    return n, ops


def replay(n, ops):
    """Apply the history to a WeightedIndex and to a plain numpy array (last write wins)."""
    index, ref = WeightedIndex(n, seed=0), np.zeros(n)
    for op in ops:
        if op[0] == "assign":
            ref = np.array(op[1], dtype=float)
            index.assign(op[1])
        else:
            _, idx, w = op
            if sum(w) + ref.sum() > 1e307:  # keep the total finite (overflow is tested below)
                continue
            for i, x in zip(idx, w):
                ref[i] = x
            index.update(np.array(idx, dtype=np.int64), np.array(w))
    return index, ref


@settings(max_examples=150, deadline=None)
@given(histories())
def test_probabilities_match_numpy_reference(history):
    n, ops = history
    if any(op[0] == "assign" and math.fsum(op[1]) > 1e307 for op in ops):
        return
    index, ref = replay(n, ops)
    assert len(index) == n
    np.testing.assert_array_equal(index.weights(), ref)
    assert index.nonzero() == np.count_nonzero(ref)
    total = math.fsum(ref)
    assert index.total() == pytest.approx(total, rel=1e-12, abs=0.0)
    if total > 0:
        np.testing.assert_allclose(index.probabilities(), ref / total, rtol=1e-12, atol=0.0)
        assert all(index.weight(i) == ref[i] for i in range(0, n, 7))


def test_tree_is_a_function_of_the_weights_not_of_the_update_order():
    rng = np.random.default_rng(1)
    n = 5000
    target = rng.random(n) * 10.0 ** rng.uniform(-8, 0, n)
    direct = WeightedIndex(n, seed=5)
    direct.assign(target)
    churned = WeightedIndex(n, seed=5)
    churned.assign(rng.random(n))
    for _ in range(50):
        idx = rng.integers(0, n, 200)
        churned.update(idx, rng.random(200) * 1e3)
    churned.update(np.arange(n)[::-1], target[::-1])
    assert churned.total() == direct.total()  # bit for bit
    np.testing.assert_array_equal(churned.draw(1000), direct.draw(1000))


def test_repeated_index_keeps_last_weight():
    index = WeightedIndex(4, seed=0)
    index.update([2, 1, 2, 2], [5.0, 1.0, 7.0, 3.0])
    np.testing.assert_array_equal(index.weights(), [0.0, 1.0, 3.0, 0.0])
    assert index.total() == 4.0


def test_memory_is_at_most_24_bytes_per_item():
    for n in [1, 17, 1000, 123_457, 2_000_000]:
        assert WeightedIndex(n, seed=0).memory_bytes() <= 24 * n + 512


# ---------------------------------------------------------------------------------------------
# Draws follow the weights (chi-square, fixed seeds, level ALPHA)

SPANNING = 10.0 ** np.linspace(-8, 0, 40)  # 8 orders of magnitude


@pytest.mark.parametrize("weights", [np.arange(1.0, 31.0), SPANNING], ids=["linear", "8-decades"])
def test_draws_with_replacement_follow_weights(weights):
    index = WeightedIndex(len(weights), seed=11)
    index.assign(weights)
    draws = index.draw(400_000)
    p = weights / weights.sum()
    assert chisquare_pvalue(count(draws.tolist()), dict(enumerate(p)), len(draws)) > ALPHA


@pytest.mark.parametrize(
    "weights,k",
    [
        (np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3),
        (np.array([1.0, 1e-2, 1e-4, 1e-6, 1e-8, 0.5]), 2),  # 8 orders of magnitude
        (np.array([1000.0, 1.0, 2.0, 1.0, 3.0]), 4),  # drawn mass > 1/2: exclusion path
    ],
    ids=["linear", "8-decades", "exclusion"],
)
def test_distinct_draws_follow_the_sequential_law(weights, k):
    index = WeightedIndex(len(weights), seed=7)
    index.assign(weights)
    trials = 40_000
    rows = [tuple(index.draw_distinct(k).tolist()) for _ in range(trials)]
    assert all(len(set(r)) == k for r in rows)
    assert chisquare_pvalue(count(rows), sequential_law(weights, k), trials) > ALPHA
    np.testing.assert_array_equal(index.weights(), weights)  # exclusion restored the tree


def test_distinct_draws_follow_the_sequential_law_across_levels():
    """Items of several levels of the tree, three of them in one leaf block (whose walks must
    ignore the marks of items already drawn in the same call)."""
    n, positions = 700, np.array([0, 3, 7, 64, 450, 699])
    support = np.array([5.0, 1.0, 2.0, 1e-3, 3.0, 0.5])
    weights = np.zeros(n)
    weights[positions] = support
    index = WeightedIndex(n, seed=5)
    index.assign(weights)
    trials = 40_000
    rows = [tuple(index.draw_distinct(4).tolist()) for _ in range(trials)]
    law = {tuple(int(positions[i]) for i in tup): p for tup, p in sequential_law(support, 4).items()}
    assert chisquare_pvalue(count(rows), law, trials) > ALPHA
    np.testing.assert_array_equal(index.weights(), weights)


def test_distinct_draws_from_a_large_index_are_distinct_and_follow_inclusion_counts():
    n, k = 10_000, 256
    rng = np.random.default_rng(3)
    weights = rng.random(n)
    index = WeightedIndex(n, seed=2)
    index.assign(weights)
    hits = np.zeros(n)
    for _ in range(200):
        batch = index.draw_distinct(k)
        assert len(np.unique(batch)) == k
        hits[batch] += 1
    # With k << n, inclusion probability is close to k p_i: compare decile sums.
    order = np.argsort(weights)
    expected = weights / weights.sum() * k * 200
    obs = [hits[c].sum() for c in np.array_split(order, 10)]
    exp = [expected[c].sum() for c in np.array_split(order, 10)]
    np.testing.assert_allclose(obs, exp, rtol=0.05)


def test_zero_weight_items_are_never_drawn():
    n = 1000
    weights = np.zeros(n)
    positive = np.arange(3, n, 10)
    weights[positive] = 10.0 ** np.random.default_rng(0).uniform(-8, 0, len(positive))
    index = WeightedIndex(n, seed=1)
    index.assign(weights)
    assert set(index.draw(200_000).tolist()) <= set(positive.tolist())
    for _ in range(20):
        assert sorted(index.draw_distinct(len(positive)).tolist()) == positive.tolist()
    np.testing.assert_array_equal(index.weights(), weights)  # no drawn-item marks left behind


def test_negative_zero_is_a_zero_weight():
    index = WeightedIndex(3, seed=0)
    index.update([0, 1, 2], [-0.0, 1.0, 2.0])
    assert not np.signbit(index.weights()).any() and index.nonzero() == 2
    assert 0 not in set(index.draw(1000).tolist())
    assert sorted(index.draw_distinct(2).tolist()) == [1, 2]


def test_single_positive_item():
    index = WeightedIndex(1_000_000, seed=0)
    index.update([999_999], [1e-300])
    assert set(index.draw(1000).tolist()) == {999_999}
    assert index.draw_distinct(1).tolist() == [999_999]


# ---------------------------------------------------------------------------------------------
# Reproducibility and state

def xoshiro256ss_uniforms(seed: int, count_: int) -> np.ndarray:
    """Pure-Python xoshiro256** seeded by SplitMix64: the documented generator of the core."""
    mask = (1 << 64) - 1

    def splitmix(x):
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return x, z ^ (z >> 31)

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & mask

    s, x = [], seed
    for _ in range(4):
        x, z = splitmix(x)
        s.append(z)
    out = []
    for _ in range(count_):
        result = (rotl((s[1] * 5) & mask, 7) * 9) & mask
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        out.append((result >> 11) * 2.0**-53)
    return np.array(out)


def test_draws_are_inverse_cdf_of_the_documented_generator():
    """Same seed, same draws on every platform: draw t is the inverse CDF at U_t."""
    rng = np.random.default_rng(4)
    weights = rng.random(5000)
    index = WeightedIndex(len(weights), seed=12345)
    index.assign(weights)
    u = xoshiro256ss_uniforms(12345, 300) * index.total()
    expected = np.searchsorted(np.cumsum(weights), u, side="right")
    np.testing.assert_array_equal(index.draw(300), expected)


def test_rng_state_restores_identical_sequences():
    index = WeightedIndex(10_000, seed=99)
    index.assign(np.random.default_rng(0).random(10_000))
    saved = index.rng_state
    a = [index.draw_distinct(128) for _ in range(5)] + [index.draw(50)]
    index.rng_state = saved
    b = [index.draw_distinct(128) for _ in range(5)] + [index.draw(50)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_pickle_resumes_the_same_future():
    index = WeightedIndex(3000, seed=8)
    index.assign(np.random.default_rng(1).random(3000))
    index.draw(10)
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.weights(), index.weights())
    np.testing.assert_array_equal(clone.draw_distinct(300), index.draw_distinct(300))


def test_same_seed_same_draws_different_seed_different_draws():
    def run(seed):
        index = WeightedIndex(1000, seed=seed)
        index.assign(np.ones(1000))
        return index.draw(100)

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_reseed_and_bad_state():
    index = WeightedIndex(10, seed=0)
    index.assign(np.ones(10))
    first = index.draw(20)
    index.seed(0)
    np.testing.assert_array_equal(index.draw(20), first)
    with pytest.raises(ValueError, match="all zero"):
        index.rng_state = (0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Bad input: a clear exception and nothing changed

def snapshot(index):
    return index.weights().copy(), index.total(), index.rng_state, index.nonzero()


def assert_unchanged(index, before):
    w, total, state, nonzero = before
    np.testing.assert_array_equal(index.weights(), w)
    assert index.total() == total and index.rng_state == state and index.nonzero() == nonzero


@pytest.fixture
def index():
    index = WeightedIndex(10, seed=0)
    index.assign(np.arange(1.0, 11.0))
    return index


@pytest.mark.parametrize(
    "idx,w,exc,match",
    [
        ([1, 2], [1.0, -0.5], ValueError, "item 2"),
        ([1, 3], [1.0, np.nan], ValueError, "item 3"),
        ([4, 5], [np.inf, 1.0], ValueError, "item 4"),
        ([1, 10], [1.0, 1.0], IndexError, "index 10"),
        ([-1], [1.0], IndexError, "index -1"),
        ([1.0, 2.0], [1.0, 1.0], TypeError, "integers"),
        ([True], [1.0], TypeError, "integers"),
        ([1, 2, 3], [1.0, 1.0], ValueError, "different lengths"),
        ([[1, 2]], [[1.0, 1.0]], ValueError, "one-dimensional"),
        ([1], ["a"], TypeError, "real numbers"),
    ],
)
def test_bad_update_raises_and_changes_nothing(index, idx, w, exc, match):
    before = snapshot(index)
    with pytest.raises(exc, match=match):
        index.update(idx, w)
    assert_unchanged(index, before)


def test_overflowing_total_is_rejected_and_rolled_back(index):
    before = snapshot(index)
    with pytest.raises(OverflowError):
        index.update([0, 1, 0], [3.0, 1.7e308, 1.7e308])
    assert_unchanged(index, before)


def test_bad_assign(index):
    before = snapshot(index)
    with pytest.raises(ValueError, match="needs 10 weights"):
        index.assign(np.ones(9))
    with pytest.raises(ValueError, match="item 3"):
        index.assign([1.0, 1.0, 1.0, -1.0, 1, 1, 1, 1, 1, 1])
    assert_unchanged(index, before)


def test_bad_draws():
    empty = WeightedIndex(5, seed=0)
    with pytest.raises(ValueError, match="total weight is zero"):
        empty.draw(1)
    with pytest.raises(ValueError, match="total weight is zero"):
        empty.probabilities()
    with pytest.raises(ValueError, match="only 0 items"):
        empty.draw_distinct(1)
    empty.update([1, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="only 2 items have positive weight"):
        empty.draw_distinct(3)
    with pytest.raises(ValueError, match=">= 0"):
        empty.draw(-1)
    assert empty.draw(0).shape == (0,) and empty.draw_distinct(0).shape == (0,)
    with pytest.raises(IndexError):
        empty.weight(5)


@pytest.mark.parametrize("n", [0, -3])
def test_empty_index_is_refused(n):
    with pytest.raises(ValueError, match="at least one item"):
        WeightedIndex(n)


def test_prefix_and_locate_match_cumulative_sums():
    rng = np.random.default_rng(6)
    weights = rng.random(1000) * (rng.random(1000) < 0.7)  # with zeros
    index = WeightedIndex(1000, seed=0)
    index.assign(weights)
    positions = np.arange(1001)
    expected = np.concatenate([[0.0], np.cumsum(weights)])
    np.testing.assert_allclose(index.prefix(positions), expected, rtol=1e-12, atol=1e-12)
    u = rng.random(5000) * index.total()
    located = index.locate(u)
    np.testing.assert_array_equal(located, np.searchsorted(np.cumsum(weights), u, side="right"))
    assert (weights[located] > 0).all()
    with pytest.raises(ValueError, match="outside"):
        index.locate([index.total()])
    with pytest.raises(IndexError):
        index.prefix([1001])


def block_scan(v: np.ndarray) -> np.ndarray:
    """The documented summation order of a block's prefix sums (weighted_index.hpp,
    block_prefix): pairs, then quads, then the upper half on top of P_3; float64 additions."""
    p = np.abs(np.asarray(v, dtype=np.float64)).copy()
    for m in (1, 3, 5, 7):
        p[m] = p[m] + p[m - 1]
    for m in (2, 3, 6, 7):
        p[m] = p[m] + p[(m & ~3) + 1]
    for m in (4, 5, 6, 7):
        p[m] = p[m] + p[3]
    return p


def test_block_prefix_sums_follow_the_documented_order_bit_for_bit():
    """Same weights, same sums on every platform: the compiled scan (vector or scalar path)
    adds in exactly the documented order, so its prefix sums equal the transcription exactly."""
    rng = np.random.default_rng(12)
    for _ in range(200):
        v = 10.0 ** rng.uniform(-12, 12, 8) * (rng.random(8) < 0.8)
        index = WeightedIndex(8, seed=0)
        index.assign(v)
        expected = np.concatenate([[0.0], block_scan(v)])
        assert index.prefix(np.arange(9)).tolist() == expected.tolist()
        assert index.total() == expected[-1]
        assert (np.diff(expected) >= 0).all()
