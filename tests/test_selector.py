"""BatchSelector: epoch plans, lazy per-batch refresh, checkpoint and resume."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from mlbs.policies import AdaC, Adaptive, Hard, Random
from mlbs.selector import BatchSelector, UnobservedBatchWarning, oldest_free_slots


def labels(n=250, q=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, q)) < 0.5 * 0.6 ** np.arange(q)).astype(np.int8)


def logits_of(batch, q):
    """Deterministic stand-in for a model: outputs depend only on the sample ids."""
    return np.sin(np.outer(batch + 1.0, np.arange(1, q + 1)))


def make(kind, Y, **kw):
    n = Y.shape[0]
    policy = {"random": lambda: Random(Y), "hard": lambda: Hard(Y),
              "adaptive": lambda: Adaptive(Y, weights=np.linspace(1, 2, n)),
              "adac": lambda: AdaC(Y, weights=np.linspace(1, 2, n))}[kind]()
    return BatchSelector(policy, 32, warmup_epochs=2, seed=7, **kw)


def run(selector, epochs, q, stop_after=None):
    out = []
    for e in range(epochs):
        for batch in selector.epoch(e):
            out.append(batch.copy())
            selector.observe(batch, logits_of(batch, q))
            if stop_after is not None and len(out) == stop_after:
                return out
    return out


def test_warmup_epochs_are_permutations_and_selective_epochs_draw_n_samples():
    Y = labels()
    selector = make("adaptive", Y)
    for e in range(4):
        batches = list(selector.epoch(e))
        for b in batches:
            selector.observe(b, logits_of(b, Y.shape[1]))
        sizes = [len(b) for b in batches]
        assert len(batches) == len(selector) == 8 and sum(sizes) == 250 and sizes[-1] == 250 - 7 * 32
        assert all(len(set(b.tolist())) == len(b) for b in batches)
        if e < 2:
            assert sorted(np.concatenate(batches).tolist()) == list(range(250))
    assert selector.policy.selecting


def test_sequential_warmup_and_full_batches():
    Y = labels()
    selector = make("hard", Y, warmup_order="sequential", batch_sizes="all_full")
    first = list(selector.epoch(0))
    np.testing.assert_array_equal(np.concatenate(first), np.arange(250))
    for b in first:
        selector.observe(b, logits_of(b, Y.shape[1]))
    for b in selector.epoch(1):
        selector.observe(b, logits_of(b, Y.shape[1]))
    assert [len(b) for b in selector.epoch(2)] == [32] * 8


def test_random_shuffles_every_epoch():
    selector = make("random", labels())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Random needs no observations: no warning for unobserved batches
        e0, e1 = np.concatenate(list(selector.epoch(0))), np.concatenate(list(selector.epoch(1)))
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(250))
    assert not np.array_equal(e0, e1)


def test_batch_refresh_uses_every_previous_observation():
    Y = labels()
    selector = make("adaptive", Y)
    run(selector, 2, Y.shape[1])
    it = selector.epoch(2)
    first = next(it)
    before = selector.policy.probabilities()
    selector.observe(first, 10 * logits_of(first, Y.shape[1]))
    assert not np.allclose(selector.policy.probabilities(), before)


@pytest.mark.parametrize("kind", ["random", "hard", "adaptive", "adac"])
@pytest.mark.parametrize("stop_after", [5, 20, 27])  # in warm-up, first selective epoch, later
def test_resume_from_checkpoint_gives_the_same_future_batches(kind, stop_after):
    Y = labels()
    full = run(make(kind, Y), 4, Y.shape[1])
    interrupted = make(kind, Y)
    head = run(interrupted, 4, Y.shape[1], stop_after=stop_after)
    state = pickle.loads(pickle.dumps(interrupted.state_dict()))
    resumed = make(kind, Y)
    resumed.load_state_dict(state)
    tail = []
    for e in range(state["epoch"], 4):
        for batch in resumed.epoch(e):
            tail.append(batch.copy())
            resumed.observe(batch, logits_of(batch, Y.shape[1]))
    assert len(head) + len(tail) == len(full)
    for a, b in zip(head + tail, full):
        np.testing.assert_array_equal(a, b)


def test_resume_replays_prefetched_batches():
    Y = labels()
    full = run(make("adaptive", Y), 4, Y.shape[1])
    selector = make("adaptive", Y)
    seen = run(selector, 4, Y.shape[1], stop_after=20)
    it = selector.epoch(2)
    prefetched = [next(it), next(it)]  # a loader pulled two batches ahead
    state = selector.state_dict()
    resumed = make("adaptive", Y)
    resumed.load_state_dict(state)
    again = resumed.epoch(2)
    for b in prefetched:
        np.testing.assert_array_equal(next(again), b)
    np.testing.assert_array_equal(prefetched[0], full[len(seen)])


def test_observe_matches_batches_by_ids_in_any_order():
    Y = labels()
    q = Y.shape[1]
    reference, shuffled = make("adaptive", Y), make("adaptive", Y)
    rng = np.random.default_rng(1)
    for e in range(3):
        a_batches, b_batches = list(reference.epoch(e)), list(shuffled.epoch(e))
        for a in a_batches:
            reference.observe(a, logits_of(a, q))
        # observed in reverse order of hand-out, each batch permuted
        for b in reversed(b_batches):
            p = rng.permutation(b.size)
            shuffled.observe(b[p], logits_of(b[p], q))
        assert not shuffled.pending
    np.testing.assert_array_equal(reference.policy.loss, shuffled.policy.loss)
    np.testing.assert_array_equal(reference.policy.probabilities(), shuffled.policy.probabilities())


def test_observe_in_parts_and_several_batches_at_once():
    Y = labels()
    q = Y.shape[1]
    selector = make("hard", Y)
    it = selector.epoch(0)
    a, b, c = next(it), next(it), next(it)
    selector.observe(a[10:], logits_of(a[10:], q))            # part of a batch: still outstanding
    assert len(selector.pending) == 3
    both = np.concatenate([c, a[:10]])                        # the rest of a with all of c
    selector.observe(both, logits_of(both, q))
    assert len(selector.pending) == 1 and np.array_equal(selector.pending[0], b)
    np.testing.assert_allclose(selector.policy.loss[a], _bce(logits_of(a, q), Y[a]))
    np.testing.assert_allclose(selector.policy.loss[c], _bce(logits_of(c, q), Y[c]))


def _bce(z, y):
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)


def test_unmatched_ids_are_refused_and_nothing_changes():
    Y = labels()
    q = Y.shape[1]
    selector = make("hard", Y)
    it = selector.epoch(0)
    a = next(it)
    outside = np.setdiff1d(np.arange(250), a)[:3]
    ids = np.concatenate([a[:5], outside])
    before = selector.policy.loss.copy()
    with pytest.raises(ValueError, match=str(outside.tolist())):
        selector.observe(ids, logits_of(ids, q))
    np.testing.assert_array_equal(selector.policy.loss, before)
    assert len(selector.pending) == 1 and not selector._outstanding[0].seen.any()
    selector.observe(a, logits_of(a, q))
    with pytest.raises(ValueError, match="match no batch"):    # observed twice
        selector.observe(a, logits_of(a, q))


def test_invalid_outputs_leave_the_batch_outstanding():
    Y = labels()
    selector = make("hard", Y)
    a = next(selector.epoch(0))
    with pytest.raises(ValueError):
        selector.observe(a, np.full((a.size, Y.shape[1]), np.nan))
    assert len(selector.pending) == 1
    selector.observe(a, logits_of(a, Y.shape[1]))
    assert not selector.pending


def test_unobserved_batches_are_reported_at_the_epoch_end_unless_discarded():
    Y = labels()
    q = Y.shape[1]
    selector = make("hard", Y)
    batches = list(selector.epoch(0))
    for b in batches[1:]:
        selector.observe(b, logits_of(b, q))
    with pytest.warns(UnobservedBatchWarning, match="1 batch"):
        list(selector.epoch(1))
    selector = make("hard", Y)
    batches = list(selector.epoch(0))
    selector.discard(batches[0])
    for b in batches[1:]:
        selector.observe(b, logits_of(b, q))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selector.epoch(1)


def test_fingerprint_tells_states_apart():
    Y = labels()
    a, b = make("adaptive", Y), make("adaptive", Y)
    assert a.fingerprint() == b.fingerprint()
    run(a, 3, Y.shape[1])
    run(b, 3, Y.shape[1])
    assert a.fingerprint() == b.fingerprint()
    other_seed = BatchSelector(Adaptive(Y, weights=np.linspace(1, 2, 250)), 32, warmup_epochs=2, seed=8)
    assert other_seed.fingerprint() != make("adaptive", Y).fingerprint()
    c = make("adaptive", Y)
    run(c, 3, Y.shape[1], stop_after=20)
    assert c.fingerprint() != a.fingerprint()


def test_warmup_defaults_to_the_policys():
    Y = labels()
    assert BatchSelector(Adaptive(Y, weights=np.ones(250)), 32).warmup_epochs == Adaptive.warmup_epochs
    assert BatchSelector(Hard(Y), 32, warmup_epochs=0).warmup_epochs == 0


def reference_oldest_free_slots(ids, slot_ids):
    """The obvious loop: each id takes the oldest slot holding it that no earlier id took."""
    free = {}
    for s, i in enumerate(slot_ids.tolist()):
        free.setdefault(i, []).append(s)
    slot, matched = np.zeros(ids.size, dtype=np.int64), np.zeros(ids.size, dtype=bool)
    for k, i in enumerate(ids.tolist()):
        if free.get(i):
            slot[k], matched[k] = free[i].pop(0), True
    return slot, matched


@pytest.mark.parametrize("seed", range(30))
def test_oldest_free_slots_agrees_with_the_loop(seed):
    rng = np.random.default_rng(seed)
    slot_ids = rng.integers(0, 12, size=rng.integers(0, 40))      # ids repeat across batches
    ids = rng.integers(0, 14, size=rng.integers(0, 25))           # repeats, and ids with no slot
    got = oldest_free_slots(ids, slot_ids)
    expected = reference_oldest_free_slots(ids, slot_ids)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0][got[1]], expected[0][expected[1]])
