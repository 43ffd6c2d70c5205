"""AdaC's chain kernel (``mlbs.policies._chain``): the batches recorded from the former C++ chain,
the tree walks against the compiled index, and the law of a batch against the slow oracle."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import oracles as ref
from mlbs.core import WeightedIndex
from mlbs.data import load_dataset
from mlbs.policies import AdaC
from mlbs.chain import ChainGraph, _locate, _prefix, _total, draw_chain
from sampling_laws import ALPHA, chisquare_pvalue, count

RECORDING = Path(__file__).parent / "data" / "adac_chain_draws.npz"


def fingerprint(Y) -> str:
    Y = sp.csr_matrix(Y)
    return hashlib.sha256(np.asarray(Y.indptr, np.int64).tobytes() + np.asarray(Y.indices, np.int64).tobytes()).hexdigest()


@pytest.mark.parametrize("scenario", ["small", "yeast"])
def test_replays_the_batches_recorded_from_the_cpp_chain(scenario):
    """Same seed, same batches, same generator state afterwards as the C++ chain gave.

    The recording was made with the chain in C++ (``cpp/mlbs/chain.hpp``, before its removal) by
    running exactly the loop below: AdaC with weights w_i = 1 + (i mod 5) / 4, the recorded
    pressure and seed; a warm-up observation of every sample with losses warm / 16; then, per
    round, ``draw(m)`` and an observation of the batch with losses[r] / 16 (losses were drawn
    as integers 0..255 so that they are exact in the file). Scenarios: ``small``, 40 samples
    and 6 labels (``small_labels``) with 4 label-less rows and pressure 10^6, 12 batches of 36,
    so that late in a batch the drawn samples hold nearly all the mass and the steps end in the
    exact enumerations; ``yeast`` (bundled, fingerprint checked), pressure 8, 24 batches of 128.
    """
    rec = np.load(RECORDING)
    get = lambda key: rec[f"{scenario}_{key}"]  # noqa: E731
    if scenario == "small":
        Y = sp.csr_matrix(rec["small_labels"])
    else:
        Y = sp.csr_matrix(load_dataset("yeast").Y)
        assert fingerprint(Y) == str(rec["yeast_labels_sha256"]), "the yeast labels differ from the recorded ones"
    n = Y.shape[0]
    policy = AdaC(Y, weights=1.0 + (np.arange(n) % 5) / 4.0, pressure=float(get("pressure")), seed=int(get("seed")))
    policy.observe(np.arange(n), losses=get("warm") / 16.0)
    policy.start_selection()
    rounds, m = get("batches").shape
    for r in range(rounds):
        batch = policy.draw(m)
        np.testing.assert_array_equal(batch, get("batches")[r], err_msg=f"batch {r}")
        policy.observe(batch, losses=get("losses")[r] / 16.0)
    assert policy.fallbacks == int(get("fallbacks"))
    assert list(policy.index.rng_state) == [int(word) for word in get("rng_state")]


@pytest.mark.parametrize("n", [1, 5, 8, 9, 64, 65, 4097])
def test_tree_walks_match_the_index(n):
    """The kernel's locate, prefix and total give the compiled index's values, bit for bit."""
    rng = np.random.default_rng(n)
    index = WeightedIndex(n, seed=0)
    weights = rng.exponential(1.0, n) * (rng.random(n) < 0.7)
    weights[rng.integers(n)] = 0.5
    index.assign(weights)
    tree = index._level_addresses()
    total = index.total()
    assert _total(tree) == total
    positions = np.arange(n + 1) if n < 100 else np.r_[0, rng.integers(0, n + 1, 500), n]
    assert [_prefix(tree, n, int(i)) for i in positions] == index.prefix(positions).tolist()
    masses = np.r_[0.0, rng.random(500) * total, index.prefix(np.arange(n))[weights > 0], np.nextafter(total, 0.0)]
    masses = masses[masses < total]
    assert [_locate(tree, float(u)) for u in masses] == index.locate(masses).tolist()


def chain_law(P, Y, seed_label, related, k):
    """Probability of every ordered batch of k: P(s_1) prod_t Pr(s_t | s_1..s_{t-1}) (oracle)."""
    law = {}
    for batch in itertools.permutations(range(len(P)), k):
        p = P[batch[0]]
        for t in range(1, k):
            if p == 0:
                break
            p *= ref.chain_step_probabilities(P, Y, seed_label, related, batch[t - 1], set(batch[:t]))[batch[t]]
        if p > 0:
            law[batch] = p
    return law


@pytest.mark.parametrize("labels, omega", [
    # Restricted steps whose unselected part of D_c holds about 1/1000 of its mass: they run out of
    # rejections and end in the enumeration of D_c \ Sel.
    ([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], [1e3, 1, 1e3, 1, 1e3, 1e3]),
    # Four heavy samples without labels: the chain falls back to P, and once they are drawn the
    # global draws run out of rejections and end in the enumeration of all samples.
    ([[0, 0], [0, 0], [0, 0], [0, 0], [1, 0], [1, 1]], [1e3, 1e3, 1e3, 1e3, 1, 1]),
])
def test_batches_follow_the_chain_law_through_the_exact_fallbacks(labels, omega):
    """Whole batches (all 6 samples, in order) against the oracle's law, chi-square at ALPHA.

    Fixed seed; 30,000 batches; cells expecting fewer than 5 are pooled."""
    Y = np.array(labels, np.int8)
    policy = AdaC(Y, weights=np.ones(len(Y)), pressure=8.0, seed=7)
    policy._assign_weights(np.asarray(omega, dtype=float))
    P = policy.probabilities()
    g = policy.graph
    related = [g.related[g.related_ptr[j]:g.related_ptr[j + 1]].tolist() for j in range(Y.shape[1])]
    law = chain_law(P, Y, g.seed_label, related, len(Y))
    trials = 30_000
    rows = [tuple(policy.draw(len(Y)).tolist()) for _ in range(trials)]
    assert chisquare_pvalue(count(rows), law, trials) > ALPHA


def test_bad_requests_raise_and_leave_the_generator_unchanged():
    Y = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1], [0, 0]], np.int8))
    policy = AdaC(Y, weights=np.ones(4), pressure=8.0)
    policy._assign_weights(np.array([1.0, 0.0, 2.0, 3.0]))
    state = list(policy.index.rng_state)
    with pytest.raises(ValueError, match="cannot draw 4 distinct samples: 3 of the 4"):
        policy.draw(4)
    with pytest.raises(ValueError, match="cannot draw -1"):
        policy.draw(-1)
    with pytest.raises(TypeError, match="ChainGraph"):
        draw_chain(policy.index, policy.pairs, vars(policy.graph), 2)
    with pytest.raises(ValueError, match="pairs 4 pairs, got 4 and 3"):
        draw_chain(policy.index, WeightedIndex(3), policy.graph, 2)
    with pytest.raises(ValueError, match="seed labels must be in"):
        ChainGraph.of(**{**{k: getattr(policy.graph, k) for k in ("seed_label", "related_ptr", "related",
                                                                    "posting_ptr", "posting_item", "label_ptr",
                                                                    "label_of")}, "seed_label": [0, 0, 5, 0]})
    assert list(policy.index.rng_state) == state
    assert len(policy.draw(3)) == 3
