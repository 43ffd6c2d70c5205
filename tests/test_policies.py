"""Policies (Random, Hard, Adaptive, AdaC) against their slow references, and their draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.signals.bce import per_sample_bce
from mlbs.policies import AdaC, Adaptive, Hard, Random
import oracles as ref
from mlbs.statistics.structure import related_labels, seed_labels
from mlbs.selector import BatchSelector
from mlbs.statistics.labels import cardinality, cooccurrence_matrix, irlbl
from sampling_laws import ALPHA, chisquare_pvalue, count, sequential_law


def synthetic(n=400, q=12, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    freq = 0.5 * 0.7 ** np.arange(q)  # imbalanced labels
    Y = (rng.random((n, q)) < freq).astype(np.int8)
    return X, Y


def observation_stream(n, q, batches, batch=37, seed=1):
    """Random batches (with repeated indices) and logits, some far out to move the maximum."""
    rng = np.random.default_rng(seed)
    for t in range(batches):
        idx = rng.integers(0, n, batch)
        scale = 4.0 if t % 7 == 3 else 1.0
        yield idx, rng.normal(0, scale, (batch, q))


def replay_losses(Y, stream):
    """Reference loss table: last visit's mean BCE (last write wins within a batch)."""
    loss = np.zeros(Y.shape[0])
    for idx, z in stream:
        for i, row in zip(idx, per_sample_bce(z, Y[idx])):
            loss[i] = row
    return loss


@pytest.mark.parametrize("refresh", ["batch", "epoch"])
def test_hard_matches_eq3_reference(refresh):
    X, Y = synthetic()
    policy = Hard(Y, pressure=8.0, refresh=refresh)
    stream = list(observation_stream(*Y.shape, batches=40))
    for idx, z in stream[:10]:
        policy.observe(idx, z)
    policy.start_selection()
    snapshot = policy.probabilities()
    for idx, z in stream[10:]:
        policy.observe(idx, z)
    expected = ref.hard_probabilities(replay_losses(Y, stream), 8.0)
    if refresh == "epoch":
        np.testing.assert_allclose(policy.probabilities(), snapshot, rtol=0)  # frozen within the epoch
        policy.end_epoch()
    np.testing.assert_allclose(policy.probabilities(), expected, rtol=1e-9)


@pytest.mark.parametrize("cls", [Adaptive, AdaC])
@pytest.mark.parametrize("refresh", ["batch", "epoch"])
def test_adaptive_matches_eqs_6_7_reference(cls, refresh):
    X, Y = synthetic()
    w = 1.0 + np.random.default_rng(2).random(Y.shape[0])
    policy = cls(Y, weights=w, pressure=16.0, refresh=refresh)
    stream = list(observation_stream(*Y.shape, batches=60))
    for idx, z in stream[:11]:
        policy.observe(idx, z)
    policy.start_selection()
    for t, (idx, z) in enumerate(stream[11:]):
        policy.observe(idx, z)
        if refresh == "batch" and t % 5 == 0:  # exact after every batch, max changes included
            table = w * replay_losses(Y, stream[: 12 + t])
            np.testing.assert_allclose(policy.probabilities(), ref.adaptive_probabilities(table, 16.0), rtol=1e-9)
    if refresh == "epoch":
        policy.end_epoch()
    table = w * replay_losses(Y, stream)
    np.testing.assert_allclose(policy.probabilities(), ref.adaptive_probabilities(table, 16.0), rtol=1e-9)
    if refresh == "batch":
        assert 1 <= policy.rebuilds < len(stream) - 11  # the maximum moved sometimes, not always
    if cls is AdaC:  # the pair index mirrors the instance weights
        np.testing.assert_array_equal(policy.pairs.weights(), policy.index.weights()[policy.graph.posting_item])


def test_adaptive_draws_follow_its_probabilities():
    X, Y = synthetic(n=60)
    policy = Adaptive(Y, weights=np.linspace(1, 3, 60), pressure=64.0)
    for idx, z in observation_stream(60, Y.shape[1], batches=5, batch=60):
        policy.observe(np.arange(60), z)
    policy.start_selection()
    first = [int(policy.draw(3)[0]) for _ in range(60_000)]
    assert chisquare_pvalue(count(first), dict(enumerate(policy.probabilities())), len(first)) > ALPHA


def test_hard_distinct_draws_follow_sequential_law():
    X, Y = synthetic(n=6, q=3)
    policy = Hard(Y, pressure=100.0)
    policy.observe(np.arange(6), np.random.default_rng(0).normal(size=(6, 3)))
    policy.start_selection()
    rows = [tuple(policy.draw(2).tolist()) for _ in range(30_000)]
    assert chisquare_pvalue(count(rows), sequential_law(policy.probabilities(), 2), len(rows)) > ALPHA


# ---------------------------------------------------------------------------------------------
# AdaC chain


def test_adac_precomputation_matches_reference():
    X, Y = synthetic(n=300, q=10)
    K = max(1, math.ceil(cardinality(Y)))
    ptr, rel = related_labels(cooccurrence_matrix(Y, dense=False), K)
    expected = ref.related_sets(Y, K)
    assert [rel[ptr[j]:ptr[j + 1]].tolist() for j in range(Y.shape[1])] == expected
    sigma = seed_labels(sp.csr_matrix(Y), irlbl(Y))
    for i in range(Y.shape[0]):
        pos = np.flatnonzero(Y[i])
        assert sigma[i] == (-1 if pos.size == 0 else pos[np.argmax(irlbl(Y)[pos])])


def test_adac_chain_follows_the_restricted_law():
    """Ordered triples of a chain batch against the exact law P(s1) P(s2|s1) P(s3|s1,s2)."""
    rng = np.random.default_rng(4)
    n, q = 9, 4
    Y = np.zeros((n, q), np.int8)
    Y[[0, 1, 2, 3], 0] = 1
    Y[[2, 3, 4, 5], 1] = 1
    Y[[5, 6], 2] = 1
    Y[[1, 6, 7], 3] = 1  # sample 8 has no label: falls back to the global P
    policy = AdaC(Y, weights=np.ones(n), pressure=8.0)
    policy.observe(np.arange(n), rng.normal(0, 2, (n, q)))
    policy.start_selection()
    P = policy.probabilities()
    g = policy.graph
    related = [g.related[g.related_ptr[j]:g.related_ptr[j + 1]].tolist() for j in range(q)]
    law = {}
    for s1 in range(n):
        p2 = ref.chain_step_probabilities(P, Y, g.seed_label, related, s1, {s1})
        for s2 in np.flatnonzero(p2):
            p3 = ref.chain_step_probabilities(P, Y, g.seed_label, related, s2, {s1, s2})
            for s3 in np.flatnonzero(p3):
                law[(s1, int(s2), int(s3))] = P[s1] * p2[s2] * p3[s3]
    trials = 60_000
    rows = [tuple(policy.draw(3).tolist()) for _ in range(trials)]
    assert chisquare_pvalue(count(rows), law, trials) > ALPHA
    assert policy.fallbacks > 0


# ---------------------------------------------------------------------------------------------
# Real data: Adaptive favours samples with minority labels

def test_adaptive_favours_minority_samples_on_yeast():
    from mlbs.data import load_dataset
    from mlbs.statistics.labels import minority_labels

    data = load_dataset("yeast")
    X = np.asarray(data.X, dtype=np.float64)
    X = (X - X.min(0)) / np.maximum(X.max(0) - X.min(0), 1e-12)
    Y = data.Y
    n = Y.shape[0]
    policy = Adaptive(Y, X, pressure=8.0)
    # Outputs of a label-prior model (every sample gets logit(frequency of label j)), as early in
    # training: samples with rare labels have the larger losses.
    freq = np.asarray(Y.mean(axis=0)).ravel()
    policy.observe(np.arange(n), np.tile(np.log(freq / (1 - freq)), (n, 1)))
    policy.start_selection()
    has_minority = np.asarray(Y[:, minority_labels(Y)].sum(axis=1)).ravel() > 0
    draws = np.concatenate([policy.draw(128) for _ in range(400)])
    adaptive_share = has_minority[draws].mean()
    random_share = has_minority.mean()  # what Random draws in expectation
    # One-sided z-test of the share over 51,200 draws against Random's, level 1e-3 (z > 3.09).
    se = math.sqrt(random_share * (1 - random_share) / draws.size)
    assert (adaptive_share - random_share) / se > 3.09, (adaptive_share, random_share)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("cls", [Hard, Adaptive, AdaC])
def test_bad_observations_raise_and_change_nothing(cls):
    X, Y = synthetic(n=50, q=4)
    policy = cls(Y) if cls is Hard else cls(Y, weights=np.ones(50))
    policy.observe(np.arange(50), np.zeros((50, 4)))
    policy.start_selection()
    before = (policy.loss.copy(), policy.probabilities())
    bad = [
        (([50], np.zeros((1, 4))), IndexError, "sample index 50"),
        (([-1], np.zeros((1, 4))), IndexError, "sample index -1"),
        (([1.0], np.zeros((1, 4))), TypeError, "integers"),
        (([1, 2], np.zeros((2, 3))), ValueError, "shape"),
        (([1, 2], np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]])), ValueError, "sample 2"),
        (([7], np.full((1, 4), np.inf)), ValueError, "sample 7"),
    ]
    for (idx, z), exc, match in bad:
        with pytest.raises(exc, match=match):
            policy.observe(idx, z)
    with pytest.raises(ValueError, match="sample 3"):
        policy.observe([3], np.full((1, 4), 1.5), kind="probabilities")
    np.testing.assert_array_equal(policy.loss, before[0])
    np.testing.assert_array_equal(policy.probabilities(), before[1])


@pytest.mark.parametrize("s", [1.0, 0.5, np.nan, np.inf])
def test_bad_pressure(s):
    X, Y = synthetic(n=20, q=3)
    with pytest.raises(ValueError, match="pressure"):
        Hard(Y, pressure=s)
    with pytest.raises(ValueError, match="pressure"):
        Adaptive(Y, weights=np.ones(20), pressure=s)


def test_bad_labels_and_batch_size():
    with pytest.raises(ValueError, match="0 or 1"):
        Hard(np.array([[0, 1], [2, 0]]))
    X, Y = synthetic(n=20, q=3)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSelector(Hard(Y), 21)
    with pytest.raises(ValueError, match="features"):
        Adaptive(Y)


def test_no_minority_labels_warns():
    Y = np.array([[1, 0], [0, 1]] * 10, np.int8)  # both labels equally frequent
    X = np.random.default_rng(0).random((20, 3))
    with pytest.warns(UserWarning, match="no minority labels"):
        policy = Adaptive(Y, X, k=3)
    np.testing.assert_array_equal(policy.imbalance_weights, np.ones(20))


def test_random_is_uniform():
    X, Y = synthetic(n=30, q=3)
    policy = Random(Y)
    np.testing.assert_allclose(policy.probabilities(), 1 / 30)
    assert len(set(policy.draw(30).tolist())) == 30


def test_random_draw_by_rejection_is_sequential_uniform_sampling():
    """k <= n/4 takes the rejection path (repeats redrawn, 1 in 8 draws here): every ordered
    pair of distinct samples is equally likely (chi-square, fixed seed, level ALPHA)."""
    from sampling_laws import ALPHA, chisquare_pvalue, count, sequential_law

    _, Y = synthetic(n=8, q=3)
    policy = Random(Y, seed=4)
    trials = 40_000
    rows = [tuple(policy.draw(2).tolist()) for _ in range(trials)]
    assert all(a != b for a, b in rows)
    assert chisquare_pvalue(count(rows), sequential_law(np.ones(8), 2), trials) > ALPHA
