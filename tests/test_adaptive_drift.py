"""Adaptive under drifting losses: the exact maximum (Zhou et al. 2024, eqs. 6-7) and the geometric
reference R (a power of g above L_max) that bounds the number of O(N) rebuilds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import oracles as ref
from mlbs.policies import AdaC, Adaptive
from mlbs.policies.adaptive import REFERENCE_GROWTH, geometric_reference

N, Q, PRESSURE, BATCH = 240, 6, 8.0, 16


def labels(n=N, q=Q, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.3).astype(np.int8)
    Y[np.arange(n), rng.integers(0, q, n)] = 1
    return sp.csr_matrix(Y)


def reference_oracle(top: float, g: float) -> float:
    """Smallest g^k >= top by walking k one step at a time from 0."""
    if top <= 0:
        return 0.0
    k = 0
    while g ** k < top:
        k += 1
    while g ** (k - 1) >= top:
        k -= 1
    return g ** k


def probabilities_against(table: np.ndarray, R: float, pressure: float) -> np.ndarray:
    """Eqs. 6-7 with R in place of L_max: Q_i = ceil(N L_i / R) in [0, N], P_i ~ s^(Q_i/N)."""
    n = len(table)
    if R <= 0:
        return np.full(n, 1.0 / n)
    levels = np.clip(np.ceil(n * table / R), 0, n)
    w = pressure ** (levels / n)
    return w / w.sum()


def drifting_run(policy, *, batches, growth, noise, seed=3, check=None):
    """Warm-up visit of every sample, then ``batches`` draws whose losses are base_i growth^t,
    times a uniform factor in [1 - noise, 1 + noise]. Returns the table and L_max after each batch."""
    rng = np.random.default_rng(seed)
    w = policy.imbalance_weights
    base = rng.exponential(1.0, policy.n)
    table = np.zeros(policy.n)
    policy.observe(np.arange(policy.n), losses=base)
    table[:] = w * base
    policy.start_selection()
    maxima = [table.max()]
    for t in range(1, batches + 1):
        idx = policy.draw(BATCH)
        loss = base[idx] * growth ** t * rng.uniform(1 - noise, 1 + noise, idx.size)
        policy.observe(idx, losses=loss)
        table[idx] = w[idx] * loss
        maxima.append(table.max())
        if check is not None:
            check(policy, table)
    return table, np.array(maxima)


@pytest.mark.parametrize("cls", [Adaptive, AdaC])
def test_exact_mode_is_eqs_6_7_under_drift(cls):
    Y = labels()
    w = 1.0 + np.random.default_rng(1).random(N)

    def check(policy, table):
        assert policy.table_max == table.max() and policy.reference == table.max()
        np.testing.assert_allclose(policy.probabilities(), ref.adaptive_probabilities(table, PRESSURE), rtol=1e-9)

    policy = cls(Y, weights=w, pressure=PRESSURE)
    drifting_run(policy, batches=60, growth=1.01, noise=0.05, check=check)
    assert policy.rebuilds > 20  # drift: the maximum moves in most batches


@pytest.mark.parametrize("cls", [Adaptive, AdaC])
def test_geometric_mode_is_eqs_6_7_with_R_in_place_of_L_max(cls):
    Y = labels()
    w = 1.0 + np.random.default_rng(1).random(N)
    seen = set()

    def check(policy, table):
        R = reference_oracle(table.max(), REFERENCE_GROWTH)
        assert policy.table_max == table.max() and policy.reference == R
        seen.add(R)
        np.testing.assert_allclose(policy.probabilities(), probabilities_against(table, R, PRESSURE), rtol=1e-9)
        if cls is AdaC:  # the pair index mirrors the instance weights
            np.testing.assert_array_equal(policy.pairs.weights(), policy.index.weights()[policy.graph.posting_item])

    policy = cls(Y, weights=w, pressure=PRESSURE, max_reference="geometric")
    # noise 0.3: the sample holding L_max often falls when visited (the O(N) scan path)
    drifting_run(policy, batches=80, growth=1.01, noise=0.3, check=check)
    assert len(seen) >= 3  # R moved: the checks covered rebuilds


def test_geometric_rebuilds_are_the_changes_of_R_and_logarithmic_in_the_growth():
    Y = labels()
    exact = Adaptive(Y, weights=np.ones(N), pressure=PRESSURE)
    geometric = Adaptive(Y, weights=np.ones(N), pressure=PRESSURE, max_reference="geometric")
    batches, growth = 200, 1.002
    _, maxima_exact = drifting_run(exact, batches=batches, growth=growth, noise=0.0)
    _, maxima = drifting_run(geometric, batches=batches, growth=growth, noise=0.0)
    assert np.all(np.diff(maxima) >= 0)  # every visit raises a loss: L_max never falls
    R = np.array([reference_oracle(m, REFERENCE_GROWTH) for m in maxima])
    changes = int(np.count_nonzero(R[1:] != R[:-1]))
    assert geometric.rebuilds - 1 == changes  # 1: start_selection's
    assert changes <= math.log(maxima[-1] / maxima[0], REFERENCE_GROWTH) + 1
    assert changes <= exact.rebuilds - 1
    assert exact.rebuilds - 1 > 4 * changes  # the exact mode rebuilds far more often


def test_geometric_reference_is_the_smallest_power_above():
    for g in (REFERENCE_GROWTH, 2.0, 1.25):
        for top in [1e-300, 1e-12, 0.3, 1.0, 1.0 + 1e-15, g, g ** 7, g ** -5, g ** 7 * (1 + 1e-15), 7.77, 1e200]:
            R = geometric_reference(top, g)
            assert R == reference_oracle(top, g), (g, top)
            assert top <= R < top * g
    assert geometric_reference(0.0) == 0.0
    assert geometric_reference(1.7e308, 2.0) == 1.7e308  # 2^1024 is not a float: top itself


def test_geometric_distribution_is_within_the_stated_factor_of_the_exact_one():
    rng = np.random.default_rng(5)
    table = rng.exponential(1.0, 1000)
    s, g = PRESSURE, REFERENCE_GROWTH
    for scale in g ** np.linspace(0, 1, 9):
        t = table * scale
        p, q = ref.adaptive_probabilities(t, s), probabilities_against(t, geometric_reference(t.max()), s)
        M = s ** (1 - 1 / g + 1 / len(t))
        assert np.maximum(p / q, q / p).max() <= M * (1 + 1e-12)
        assert 0.5 * np.abs(p - q).sum() <= (math.sqrt(M) - 1) / (math.sqrt(M) + 1)


def test_geometric_state_round_trip_and_mode_mismatch():
    Y = labels()
    policy = Adaptive(Y, weights=np.ones(N), pressure=PRESSURE, max_reference="geometric")
    drifting_run(policy, batches=10, growth=1.02, noise=0.1)
    state = policy.state_dict()
    restored = Adaptive(Y, weights=np.ones(N), pressure=PRESSURE, max_reference="geometric")
    restored.load_state_dict(state)
    assert restored.reference == policy.reference and restored.table_max == policy.table_max
    np.testing.assert_array_equal(restored.probabilities(), policy.probabilities())
    np.testing.assert_array_equal(restored.draw(BATCH), policy.draw(BATCH))
    exact = Adaptive(Y, weights=np.ones(N), pressure=PRESSURE)
    before = exact.probabilities()
    with pytest.raises(ValueError, match="other settings"):
        exact.load_state_dict(state)
    np.testing.assert_array_equal(exact.probabilities(), before)


def test_unknown_max_reference_is_refused():
    with pytest.raises(ValueError, match="'geometrical'"):
        Adaptive(labels(), weights=np.ones(N), max_reference="geometrical")
