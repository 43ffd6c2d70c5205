"""Policy checkpoints: a state says what it belongs to, and loading is all or nothing.

Each refusal below was accepted before states carried their class, version, n, q and the
fingerprints of labels and settings (the policy then trained on a state of another policy, of
another training set, or was left half-overwritten by a refused load)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.policies import D2ACE, ActiveBias, AdaC, Adaptive, Hard, Random, RecencyBias, Uncertain

N, Q = 40, 6


def problem(n=N, q=Q, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.3).astype(np.int8)
    Y[0, :] = 1
    return Y, rng.integers(0, n, (n, 3))


def build(cls, Y, nb, **options):
    if cls in (Adaptive, AdaC):
        return cls(Y, weights=np.linspace(1, 2, Y.shape[0]), **options)
    if cls is D2ACE:
        return cls(Y, neighbors=nb, **options)
    return cls(Y, **options)


def trained(cls, Y, nb, **options):
    """A policy after two epochs of observations, selecting."""
    policy = build(cls, Y, nb, **options)
    rng = np.random.default_rng(1)
    for epoch in range(2):
        order = rng.permutation(Y.shape[0])
        for batch in np.array_split(order, 4):
            policy.observe(batch, rng.normal(0, 2, (batch.size, Y.shape[1])))
        policy.end_epoch()
    policy.start_selection()
    return policy


def same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


ALL = [Random, Hard, Adaptive, AdaC, Uncertain, D2ACE, ActiveBias, RecencyBias]


@pytest.mark.parametrize("cls", ALL)
def test_round_trip_restores_the_distribution_and_the_draws(cls):
    Y, nb = problem()
    source = trained(cls, Y, nb)
    target = build(cls, Y, nb)
    target.load_state_dict(source.state_dict())
    assert same_state(target.state_dict(), source.state_dict())
    np.testing.assert_array_equal(target.probabilities(), source.probabilities())
    np.testing.assert_array_equal(target.draw(8), source.draw(8))


@pytest.mark.parametrize("source_cls, target_cls", [(Adaptive, Hard), (Hard, Adaptive), (Uncertain, D2ACE),
                                                    (ActiveBias, RecencyBias), (Adaptive, AdaC)])
def test_a_state_of_another_policy_class_is_refused(source_cls, target_cls):
    Y, nb = problem()
    target = trained(target_cls, Y, nb)
    before = target.state_dict()
    with pytest.raises(ValueError, match=f"policy {source_cls.__name__!r}"):
        target.load_state_dict(trained(source_cls, Y, nb).state_dict())
    assert same_state(target.state_dict(), before)


@pytest.mark.parametrize("cls", [ActiveBias, RecencyBias, Uncertain])
def test_a_state_with_another_number_of_labels_is_refused(cls):
    Y, nb = problem()
    one_label = trained(cls, Y[:, :1], nb)
    target = trained(cls, Y, nb)
    before = target.state_dict()
    with pytest.raises(ValueError, match="q ="):
        target.load_state_dict(one_label.state_dict())
    assert same_state(target.state_dict(), before)


@pytest.mark.parametrize("cls", [Hard, Adaptive, D2ACE])
def test_a_state_of_another_training_set_of_the_same_size_is_refused(cls):
    Y, nb = problem()
    permuted = Y[np.random.default_rng(5).permutation(N)]
    target = trained(cls, Y, nb)
    before = target.state_dict()
    with pytest.raises(ValueError, match="other training labels"):
        target.load_state_dict(trained(cls, permuted, nb).state_dict())
    flipped = Y.copy()
    flipped[3, 2] = 1 - flipped[3, 2]
    with pytest.raises(ValueError, match="other training labels"):
        target.load_state_dict(trained(cls, flipped, nb).state_dict())
    assert same_state(target.state_dict(), before)


def test_a_state_built_with_other_table_settings_is_refused():
    Y, nb = problem()
    target = trained(Uncertain, Y, nb)
    with pytest.raises(ValueError, match="other settings"):
        target.load_state_dict(trained(Uncertain, Y, nb, window=4).state_dict())
    with pytest.raises(ValueError, match="other settings"):
        target.load_state_dict(trained(Uncertain, Y, nb, window_dtype="uint8").state_dict())
    adaptive = trained(Adaptive, Y, nb)
    with pytest.raises(ValueError, match="other settings"):  # other imbalance weights w
        adaptive.load_state_dict(Adaptive(Y, weights=np.ones(N)).state_dict())


@pytest.mark.parametrize("cls", ALL)
def test_a_refused_load_changes_nothing(cls):
    """The last thing checked is broken: every earlier part of the state must stay unassigned."""
    Y, nb = problem()
    target = trained(cls, Y, nb)
    before = target.state_dict()
    other = trained(cls, Y, nb)
    other.observe(np.arange(5), np.full((5, Q), 3.0))
    state = other.state_dict()
    assert not same_state(state, before)
    broken = dict(state)
    broken["rng"] = "not a generator state"
    with pytest.raises(ValueError, match="rng"):
        target.load_state_dict(broken)
    assert same_state(target.state_dict(), before)
    for name, value in state.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.size:
            for bad in (value[:-1], np.full(value.shape, np.nan) if value.dtype.kind == "f" else value[:-1]):
                with pytest.raises(ValueError, match=repr(name)):
                    target.load_state_dict({**state, name: bad})
                assert same_state(target.state_dict(), before)
    missing = {k: v for k, v in state.items() if k != "loss"}
    with pytest.raises(ValueError, match="'loss'"):
        target.load_state_dict(missing)
    assert same_state(target.state_dict(), before)


def test_negative_or_overflowing_index_weights_are_refused():
    Y, nb = problem()
    target = trained(Adaptive, Y, nb)
    before = target.state_dict()
    for bad in (-np.ones(N), np.full(N, 1e308)):
        with pytest.raises(ValueError, match="'index'"):
            target.load_state_dict({**before, "index": bad})
    with pytest.raises(ValueError, match="argmax"):
        target.load_state_dict({**before, "argmax": N})
    assert same_state(target.state_dict(), before)


def test_a_state_without_its_header_is_refused():
    Y, nb = problem()
    target = trained(Hard, Y, nb)
    old_format = {"loss": np.zeros(N), "selecting": True, "index": np.zeros(N), "rng": target.index.rng_state}
    with pytest.raises(ValueError, match="no 'policy'"):
        target.load_state_dict(old_format)
    with pytest.raises(ValueError, match="format version"):
        target.load_state_dict({**target.state_dict(), "version": 1})


# -- refusals before any table changes ---------------------------------------------------------

def test_adaptive_refuses_losses_whose_weighted_value_overflows():
    Y, _ = problem()
    w = np.ones(N)
    w[7] = 1e300
    policy = Adaptive(Y, weights=w)
    policy.observe(np.arange(N), losses=np.full(N, 0.5))
    policy.start_selection()
    before = policy.state_dict()
    with pytest.raises(OverflowError, match="sample 7"):
        policy.observe(np.array([3, 7]), losses=np.array([1.0, 1e10]))
    assert same_state(policy.state_dict(), before)
    policy.observe(np.array([3, 7]), losses=np.array([1.0, 1e-10]))  # a finite product is fine


@pytest.mark.parametrize("cls", [Hard, Adaptive, AdaC])
def test_a_pressure_whose_weights_overflow_is_refused(cls):
    Y, nb = problem()
    with pytest.raises(ValueError, match="too large"):
        build(cls, Y, nb, pressure=1e308)


def test_d2ace_refuses_labels_without_positives_with_a_clear_message():
    _, nb = problem()
    with pytest.raises(ValueError, match="at least one positive"):
        D2ACE(np.zeros((N, Q), np.int8), neighbors=nb)
    # an empty label column or empty rows are fine
    Y, _ = problem()
    Y[:, 2] = 0
    Y[10:20] = 0
    Y[0, :] = 0
    Y[0, 0] = 1
    policy = trained(D2ACE, Y, nb)
    assert np.isfinite(policy.probabilities()).all()


def test_the_caller_labels_are_not_changed():
    Y, _ = problem()
    M = sp.csr_matrix(Y)
    M.data[:] = 1
    Hard(M)
    assert M.indptr.flags.writeable and M.indices.flags.writeable
