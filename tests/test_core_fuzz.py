"""Random sequences of calls to the compiled core, valid and invalid, against a numpy model.

A state machine per structure keeps the model of the object's state (the n weights or scores; the
generator state as read from the object) and applies random calls of the public API: assign,
update, draw, draw_distinct, pickling, reading and writing the generator state. A valid call must
leave the object equal to the model with the call applied; an invalid one must raise the
documented exception and leave it equal to the model as it was (generator state included).
Derandomized, so CI runs the same sequences every time.
"""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mlbs import RankIndex, WeightedIndex

SETTINGS = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

finite_weights = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=10.0),
    st.floats(min_value=1e-300, max_value=1e300),
    st.floats(min_value=1e306, max_value=1.7e308),  # a few of these overflow the total
)
bad_weights = st.sampled_from([-1.0, -1e-300, math.nan, math.inf, -math.inf])
scores = st.one_of(st.sampled_from([0.0, 1.0, -2.5]), st.floats(-1e6, 1e6), st.floats(-1e300, 1e300))
bad_scores = st.sampled_from([math.nan, math.inf, -math.inf])
states = st.tuples(*[st.integers(0, 2**64 - 1)] * 4).filter(any)
bad_states = st.one_of(st.just((0, 0, 0, 0)), st.tuples(st.integers(-(2**63), -1), *[st.integers(0, 5)] * 3))


def reference_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ascending ranks, ties broken by item id."""
    order = np.lexsort((np.arange(len(scores)), scores))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


class CoreMachine(RuleBasedStateMachine):
    """What both structures share: the model, the unchanged-after-error check, pickling, state."""

    cls: type
    values_of: str
    good_value: st.SearchStrategy
    bad_value: st.SearchStrategy

    def values(self) -> np.ndarray:
        return getattr(self.obj, self.values_of)()

    def snapshot(self):
        return self.values().copy(), self.obj.rng_state

    def refused(self, call, exc, match=None):
        """call() raises exc (matching match) and changes nothing."""
        before = self.snapshot()
        with pytest.raises(exc, match=match):
            call()
        values, rng_state = before
        np.testing.assert_array_equal(self.values(), values)
        assert self.obj.rng_state == rng_state

    @initialize(n=st.integers(1, 40), seed=st.integers(0, 2**64 - 1))
    def create(self, n, seed):
        self.n = n
        self.obj = self.cls(n, seed=seed)
        self.model = np.zeros(n)

    @invariant()
    def matches_model(self):
        np.testing.assert_array_equal(self.values(), self.model)
        assert len(self.obj) == self.n

    def apply(self, call, model):
        """call() sets the values to model, or is refused with OverflowError when the total of
        model overflows (either may happen within 1e-9 of the largest double)."""
        verdict = self.total_verdict(model)
        if verdict == "overflows":
            return self.refused(call, OverflowError, "overflow")
        try:
            call()
        except OverflowError:
            assert verdict == "either"
            return
        self.model = model + 0.0

    @rule(data=st.data())
    def assign(self, data):
        new = np.array(data.draw(st.lists(self.good_value, min_size=self.n, max_size=self.n)))
        self.apply(lambda: self.obj.assign(new), new)

    @rule(data=st.data())
    def update(self, data):
        k = data.draw(st.integers(0, 2 * self.n))
        idx = data.draw(st.lists(st.integers(0, self.n - 1), min_size=k, max_size=k))
        new = data.draw(st.lists(self.good_value, min_size=k, max_size=k))
        model = self.model.copy()
        for i, x in zip(idx, new):
            model[i] = x
        self.apply(lambda: self.obj.update(np.array(idx, dtype=np.int64), np.array(new)), model)

    @rule(data=st.data(), kind=st.sampled_from(["length", "value", "index", "dtype", "shape"]))
    def invalid_change(self, data, kind):
        if kind == "length":
            size = data.draw(st.integers(0, self.n + 3).filter(lambda m: m != self.n))
            self.refused(lambda: self.obj.assign(np.ones(size)), ValueError, f"needs {self.n}")
            self.refused(lambda: self.obj.update([0] * (size + 1), np.ones(size)), ValueError, "different lengths")
        elif kind == "value":
            new = np.ones(self.n)
            at = data.draw(st.integers(0, self.n - 1))
            new[at] = data.draw(self.bad_value)
            self.refused(lambda: self.obj.assign(new), ValueError, f"item {at}")
            self.refused(lambda: self.obj.update([0, at], [1.0, new[at]]), ValueError, f"item {at}")
        elif kind == "index":
            bad = data.draw(st.one_of(st.integers(self.n, 2**62), st.integers(-(2**62), -1)))
            self.refused(lambda: self.obj.update([0, bad], [1.0, 1.0]), IndexError, f"index {bad}")
        elif kind == "dtype":
            self.refused(lambda: self.obj.update([0.0], [1.0]), TypeError, "integers")
            self.refused(lambda: self.obj.assign(["x"] * self.n), TypeError, "real numbers")
        else:
            self.refused(lambda: self.obj.assign(np.ones((self.n, 1))), ValueError, "one-dimensional")

    @rule(protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
    def pickle_round_trip(self, protocol):
        clone = pickle.loads(pickle.dumps(self.obj, protocol=protocol))
        np.testing.assert_array_equal(getattr(clone, self.values_of)(), self.model)
        assert clone.rng_state == self.obj.rng_state
        self.obj = clone  # go on with the restored object

    @rule(state=states)
    def set_rng_state(self, state):
        self.obj.rng_state = state
        assert self.obj.rng_state == list(state)

    @rule(state=bad_states)
    def set_bad_rng_state(self, state):
        before = self.snapshot()
        with pytest.raises((ValueError, TypeError, OverflowError)):
            self.obj.rng_state = state
        assert self.obj.rng_state == before[1]

    @rule(data=st.data())
    def tampered_state(self, data):
        """A state whose n disagrees with its values is refused; the object is not touched."""
        n, values, rng_state = self.obj.__getstate__()
        wrong = data.draw(st.integers(-2, self.n + 5).filter(lambda m: m != n))
        with pytest.raises(ValueError):
            self.cls.__new__(self.cls).__setstate__((wrong, values, rng_state))


class WeightedIndexMachine(CoreMachine):
    cls = WeightedIndex
    values_of = "weights"
    good_value = finite_weights
    bad_value = bad_weights

    def total_verdict(self, weights):
        total = sum(map(Fraction, weights))
        largest = Fraction(np.finfo(float).max)
        if total > largest * (1 + Fraction(1, 10**9)):
            return "overflows"
        return "finite" if total < largest * (1 - Fraction(1, 10**9)) else "either"

    @invariant()
    def totals_match_model(self):
        assert self.obj.nonzero() == np.count_nonzero(self.model)
        exact = float(sum(map(Fraction, self.model)))
        assert self.obj.total() == pytest.approx(exact, rel=1e-12, abs=0.0)

    @rule(k=st.integers(0, 60))
    def draw(self, k):
        if not self.model.any():
            return self.refused(lambda: self.obj.draw(max(k, 1)), ValueError, "total weight is zero")
        drawn = self.obj.draw(k)
        assert drawn.shape == (k,) and (self.model[drawn] > 0).all()

    @rule(data=st.data())
    def draw_distinct(self, data):
        positive = int(np.count_nonzero(self.model))
        k = data.draw(st.integers(0, positive))
        drawn = self.obj.draw_distinct(k)
        assert len(set(drawn.tolist())) == k and (self.model[drawn] > 0).all()
        over = data.draw(st.integers(positive + 1, positive + 5))
        self.refused(lambda: self.obj.draw_distinct(over), ValueError, f"only {positive} items")

    @rule(k=st.integers(-(2**62), -1))
    def negative_count(self, k):
        self.refused(lambda: self.obj.draw(k), ValueError, ">= 0")

    @precondition(lambda self: self.model.any())
    @rule()
    def probabilities(self):
        exact = float(sum(map(Fraction, self.model)))
        np.testing.assert_allclose(self.obj.probabilities(), self.model / exact, rtol=1e-12, atol=0)


class RankIndexMachine(CoreMachine):
    cls = RankIndex
    values_of = "scores"
    good_value = scores
    bad_value = bad_scores
    pressures = st.one_of(st.sampled_from([1.0, 2.0, 1e300, 1.7e308]), st.floats(1.0, 1e6))

    def total_verdict(self, values):
        return "finite"

    @invariant()
    def ranks_match_model(self):
        np.testing.assert_array_equal(self.obj.rank(np.arange(self.n)), reference_ranks(self.model))

    @rule(k=st.integers(0, 60), pressure=pressures)
    def draw(self, k, pressure):
        drawn = self.obj.draw(k, pressure)
        assert drawn.shape == (k,) and ((drawn >= 0) & (drawn < self.n)).all()

    @rule(data=st.data(), pressure=pressures)
    def draw_distinct(self, data, pressure):
        k = data.draw(st.integers(0, self.n))
        drawn = self.obj.draw_distinct(k, pressure)
        assert sorted(set(drawn.tolist())) == sorted(drawn.tolist()) and len(drawn) == k
        self.refused(lambda: self.obj.draw_distinct(self.n + 1, pressure), ValueError, "distinct items out of")

    @rule(pressure=st.one_of(st.floats(max_value=0.999), st.just(math.nan), st.just(math.inf)))
    def bad_pressure(self, pressure):
        self.refused(lambda: self.obj.draw(1, pressure), ValueError, "pressure")
        self.refused(lambda: self.obj.draw_distinct(1, pressure), ValueError, "pressure")

    @rule(pressure=pressures)
    def probabilities(self, pressure):
        p = self.obj.probabilities(pressure)
        assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, rel=1e-9)
        logw = math.log(pressure) * reference_ranks(self.model) / self.n
        expected = np.exp(logw - logw.max())
        np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-9, atol=0)


TestWeightedIndexFuzz = WeightedIndexMachine.TestCase
TestWeightedIndexFuzz.settings = SETTINGS
TestRankIndexFuzz = RankIndexMachine.TestCase
TestRankIndexFuzz.settings = SETTINGS
