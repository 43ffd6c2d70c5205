"""Uncertain, D2ACE, ActiveBias, RecencyBias against their dense references, draws, state, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.signals.bce import per_sample_bce
from mlbs.policies import D2ACE, ActiveBias, RecencyBias, Uncertain
import oracles as ref
from mlbs.experiments.presets import preset_options
from mlbs.signals.refresh import d2ace_scores
from mlbs.statistics.structure import local_context
from mlbs.policies.schedules import ExpDecay, Linear, d2ace_beta, d2ace_pressure, evaluation_epoch
from mlbs.policies.transforms import quantized_min_max
from mlbs.selector import BatchSelector
from sampling_laws import ALPHA, chisquare_pvalue, count, sequential_law

EXACT = {"window_dtype": "float64", "table_dtype": "float64"}


def problem(n=120, q=9, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.45 * 0.75 ** np.arange(q)).astype(np.int8)
    Y[:, -1] = 0          # a label without positives (8.6)
    Y[:3] = 0             # rows without labels
    neighbors = np.stack([rng.choice(np.delete(np.arange(n), i), 6, replace=False) for i in range(n)])
    return Y, neighbors


def stream(n, q, batches=30, batch=25, seed=1, kind="logits"):
    """Batches with repeated indices inside some of them; every sample visited a few times."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(batches):
        idx = rng.integers(0, n, batch) if t % 3 else rng.choice(n, batch, replace=False)
        z = rng.normal(0, 1.5, (batch, q))
        out.append((idx, z if kind == "logits" else 1 / (1 + np.exp(-z))))
    return out


def feed(policy, batches, epochs_per=10):
    for t, (idx, z) in enumerate(batches):
        policy.observe(idx, z, kind="logits" if z.min() < 0 else "probabilities")
        if (t + 1) % epochs_per == 0:
            policy.end_epoch()


# -- transforms and schedules ---------------------------------------------------------------------

@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("pressure", [8.0, 0.977, 1.0])
def test_qmm_matches_reference(clip, pressure):
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(500) * 7, 1)  # many ties
    np.testing.assert_allclose(quantized_min_max(scores, pressure, clip=clip),
                               ref.qmm_weights(scores, pressure, clip), rtol=1e-12)
    w = quantized_min_max(scores, 8.0)
    assert w.max() == 1.0 and np.isclose(w.min(), 1 / 8)          # ratio s
    assert np.array_equal(quantized_min_max(np.full(5, 2.0), 8.0), np.ones(5))  # constant: uniform
    bad = scores.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="sample 7"):
        quantized_min_max(bad, 8.0)
    assert np.array_equal(quantized_min_max(bad, 8.0, nonfinite="uniform"), np.ones(500))
    with pytest.raises(ValueError, match="ratio"):
        quantized_min_max(scores, 0.0)


def test_schedules_match_the_table_of_2_4():
    s, b = d2ace_pressure(), d2ace_beta()
    table = {9: (8, 0.7, 0.977, 8.13), 10: (8, 0.7, 1.0, 7.94), 20: (6.35, 0.633, 1.26, 6.31),
             40: (4.0, 0.5, 2.0, 3.98), 55: (2.83, 0.4, 2.83, 2.82), 70: (2.0, 0.3, 4.0, 2.0),
             85: (1.41, 0.3, 5.66, 1.41), 99: (1.02, 0.3, 7.82, 1.02)}
    increasing = ExpDecay(8, 1, 100, 10, hold=False)   # the code of Zhou et al. 2024b, swapped arguments
    analyse = ExpDecay(10, 1, 0, 100)
    for e, (se, be, ue, ae) in table.items():
        assert s(e) == pytest.approx(se, abs=6e-3) and b(e) == pytest.approx(be, abs=6e-4)
        assert increasing(e) == pytest.approx(ue, abs=6e-3) and analyse(e) == pytest.approx(ae, abs=6e-3)
    assert ExpDecay(100, 1, 10, 100, hold=False)(9) == pytest.approx(105.3, abs=0.06)
    assert s(500) == 1.0 and b(500) == 0.3 and b(-1) == 0.7
    assert evaluation_epoch(10) == 9 and evaluation_epoch(10, "current") == 10
    for bad in (lambda: ExpDecay(0, 1, 0, 1), lambda: ExpDecay(8, 1, 5, 5), lambda: Linear(1, 0, 5, 5),
                lambda: evaluation_epoch(3, "later")):
        with pytest.raises(ValueError):
            bad()


# -- signals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_window_signals_match_reference(kind):
    Y, nb = problem()
    n, q = Y.shape
    batches = stream(n, q, kind=kind)
    policy = D2ACE(Y, neighbors=nb, window=4, alpha=0.6, **EXACT)
    for idx, z in batches:
        policy.observe(idx, z, kind=kind)
    hist = ref.replay_visits(Y, batches, kind)
    E, phi = ref.window_signals(hist, q, w=4, alpha=0.6)
    s = policy.signals
    np.testing.assert_allclose(s.E, E, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(s.phi, phi, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(s.loss, ref.last_bce(Y, hist), rtol=1e-9, atol=1e-15)
    seen = np.flatnonzero([len(h) > 0 for h in hist])
    probs = np.array([hist[i][-1] for i in seen])
    np.testing.assert_allclose(policy.loss[seen], per_sample_bce(probs, Y[seen], kind="probabilities"), rtol=1e-9)
    assert s.count.tolist() == [len(h) for h in hist]


@pytest.mark.parametrize("w", [1, 2, 5, 8])
@pytest.mark.parametrize("dtype", ["float64", "float32", "uint8"])
def test_window_lengths_match_reference(w, dtype):
    """Every window length, including w = 1 (no stored change), a full ring of the default 5 and
    one longer than the compiled pass keeps in registers (8 > 6)."""
    Y, nb = problem(n=40, q=7)
    batches = stream(*Y.shape, batches=30, batch=12, seed=4)
    policy = D2ACE(Y, neighbors=nb, window=w, window_dtype=dtype, table_dtype="float64")
    for idx, z in batches:
        policy.observe(idx, z)
    E, phi = ref.window_signals(ref.replay_visits(Y, batches), Y.shape[1], w=w)
    tol = {"float64": 1e-12, "float32": 2.0 ** -24, "uint8": 1 / 255}[dtype]
    np.testing.assert_allclose(policy.signals.E, E, rtol=1e-9, atol=tol)
    if w >= 2:  # phi needs the previous prediction, which a window of 1 does not keep
        np.testing.assert_allclose(policy.signals.phi, phi, rtol=1e-9, atol=tol)
    assert np.isfinite(policy.signals.E).all()


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_a_large_batch_matches_row_by_row_visits(dtype):
    """A batch of B q >= 2^16 entries in one call: the tables and losses are those of visiting
    its rows one at a time."""
    rng = np.random.default_rng(13)
    n, q, batch = 900, 256, 300
    Y = sp.csr_matrix((rng.random((n, q)) < 0.02).astype(np.int8))
    nb = rng.integers(0, n, (n, 3))
    whole, by_row = (D2ACE(Y, neighbors=nb, window=3, window_dtype=dtype) for _ in range(2))
    for _ in range(4):
        idx, z = rng.choice(n, batch, replace=False), rng.normal(0, 3, (batch, q)).astype(np.float32)
        whole.observe(idx, z)
        for r in range(batch):
            by_row.observe(idx[r:r + 1], z[r:r + 1])
    for name in ("window", "count", "E", "phi", "loss"):
        assert np.array_equal(getattr(whole.signals, name), getattr(by_row.signals, name)), name
    assert np.array_equal(whole.loss, by_row.loss)


@pytest.mark.parametrize("dtype, step", [("uint8", 1 / 255), ("uint16", 1 / 65535), ("float32", 2.0 ** -24)])
def test_compact_window_error_is_bounded_by_its_step(dtype, step):
    """Each stored value is within step/2, each change within step: |dE| <= step/2, |dphi| <= step."""
    Y, nb = problem()
    batches = stream(*Y.shape, batches=40)
    exact = D2ACE(Y, neighbors=nb, **EXACT)
    compact = D2ACE(Y, neighbors=nb, window_dtype=dtype, table_dtype="float64")
    feed(exact, batches), feed(compact, batches)
    err_e = np.abs(exact.signals.E - compact.signals.E).max()
    err_phi = np.abs(exact.signals.phi - compact.signals.phi).max()
    assert 0 < err_e <= step / 2 * (1 + 1e-6) and err_phi <= step * (1 + 1e-6)
    assert np.array_equal(exact.signals.loss, compact.signals.loss)


def test_compat_nans():
    Y, nb = problem(n=20, q=3)
    z = np.zeros((2, 3))
    z[0, 1] = 40.0  # float32 sigmoid is exactly 1
    policy = Uncertain(Y, **preset_options("Uncertain", "uncertainty_batch"))
    policy.observe([0, 1], z)
    assert np.isnan(policy.signals.E[0]).all()  # first visit: 0/0 window change
    policy.observe([0, 1], z)
    assert np.isnan(policy.signals.E[0, 1]) and not np.isnan(policy.signals.E[0, 0])
    default = Uncertain(Y)
    default.observe([0, 1], z), default.observe([0, 1], z)
    assert np.isfinite(default.signals.E).all()
    d = D2ACE(Y, neighbors=nb, **preset_options("D2ACE", "d2ace"))
    d.observe([0, 1], z), d.observe([0, 1], z)
    d.start_selection()
    wu, wh, _ = d.pool_weights(d.schedule_epoch)
    assert np.array_equal(wu, np.ones(20)) and not np.array_equal(wh, np.ones(20))  # D4


# -- end-of-epoch refresh against the dense transcriptions ---------------------------------------

@pytest.mark.parametrize("epochs", [2, 7])
def test_uncertain_matches_reference(epochs):
    Y, _ = problem()
    batches = stream(*Y.shape, batches=10 * epochs)
    policy = Uncertain(Y, **EXACT)
    feed(policy, batches)
    policy.start_selection()
    E, _ = ref.window_signals(ref.replay_visits(Y, batches), Y.shape[1])
    e = epochs - 1  # lagged
    expected = ref.uncertain_probabilities(E, e, d2ace_pressure()(e))
    np.testing.assert_allclose(policy.probabilities(), expected, rtol=1e-9)


@pytest.mark.parametrize("transform, clip", [("1-exp", False), ("2-exp", True)])
@pytest.mark.parametrize("mixture", ["deterministic", "per_draw"])
def test_d2ace_matches_dense_reference(transform, clip, mixture):
    Y, nb = problem()
    batches = stream(*Y.shape, batches=40)
    policy = D2ACE(Y, neighbors=nb, loss_transform=transform, qmm_clip=clip, mixture=mixture,
                   pressure=ExpDecay(8, 1, 1, 10), beta=Linear(0.7, 0.3, 1, 6), **EXACT)
    feed(policy, batches)       # 4 epochs: evaluated at e = 3
    policy.start_selection()
    hist = ref.replay_visits(Y, batches)
    E, phi = ref.window_signals(hist, Y.shape[1])
    s, beta = ExpDecay(8, 1, 1, 10)(3), Linear(0.7, 0.3, 1, 6)(3)
    PU, PH, P = ref.d2ace_probabilities(E, phi, ref.last_bce(Y, hist), Y, nb, pressure=s, beta=beta,
                                        loss_transform=transform, clip=clip)
    np.testing.assert_allclose(policy.probabilities(), P, rtol=1e-9)
    wu, wh, b = policy.pool_weights(3)
    np.testing.assert_allclose(wu / wu.sum(), PU, rtol=1e-9)
    np.testing.assert_allclose(wh / wh.sum(), PH, rtol=1e-9)
    assert b == beta and not np.allclose(PU, PH)


def test_d2ace_scores_sparse_vs_dense_on_random_tables():
    rng = np.random.default_rng(5)
    n, q = 300, 60
    Y = sp.random(n, q, density=0.05, random_state=6, format="csr")
    Y.data[:] = 1
    nb = rng.integers(0, n, (n, 6))
    E, phi, loss = rng.random((n, q)), rng.random((n, q)) * 0.5, rng.exponential(1.0, (n, q))
    Z = local_context(sp.csr_matrix(Y, dtype=np.int8), nb)
    su, sh = d2ace_scores(E, phi, loss, sp.csr_matrix(Y, dtype=np.int8), Z, chunk=37)
    PU, PH, _ = ref.d2ace_probabilities(E, phi, loss, Y, nb, pressure=8.0, beta=0.5)
    wu, wh = quantized_min_max(su, 8.0), quantized_min_max(sh, 8.0)
    np.testing.assert_allclose(wu / wu.sum(), PU, rtol=1e-9)
    np.testing.assert_allclose(wh / wh.sum(), PH, rtol=1e-9)
    Zd = np.array([Y.toarray()[[i, *nb[i]]].max(axis=0) for i in range(n)])
    assert np.array_equal(Z.toarray(), Zd)


def test_d2ace_scores_do_not_depend_on_the_number_of_threads():
    """The refresh's compiled passes run in parallel over fixed parts of the rows / labels: one
    thread and two give bit-identical scores (more blocks than parts, so parts hold several)."""
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(11)
    n, q = 3000, 30
    Y = sp.random(n, q, density=0.1, random_state=12, format="csr")
    Y.data[:] = 1
    Y = sp.csr_matrix(Y, dtype=np.int8)
    Z = local_context(Y, rng.integers(0, n, (n, 4)))
    E, phi, loss = rng.random((n, q)), rng.random((n, q)) * 0.5, rng.exponential(1.0, (n, q))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = d2ace_scores(E, phi, loss, Y, Z, chunk=8)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = d2ace_scores(E, phi, loss, Y, Z, chunk=8)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


@pytest.mark.parametrize("dtypes", [(np.float16,) * 3, (np.float32, np.float16, np.float64)])
@pytest.mark.parametrize("transform", ["1-exp", "2-exp"])
def test_d2ace_scores_on_compact_tables(dtypes, transform):
    """float16 tables (read through look-up tables) and mixed dtypes give the dense transcription
    of the stored values."""
    rng = np.random.default_rng(8)
    n, q = 200, 40
    Y = sp.random(n, q, density=0.08, random_state=9, format="csr")
    Y.data[:] = 1
    Y = sp.csr_matrix(Y, dtype=np.int8)
    nb = rng.integers(0, n, (n, 5))
    E, phi, loss = (a.astype(dt) for a, dt in zip(
        (rng.random((n, q)), 0.5 * rng.random((n, q)), rng.exponential(1.0, (n, q))), dtypes))
    su, sh = d2ace_scores(E, phi, loss, Y, local_context(Y, nb), loss_transform=transform, chunk=16)
    PU, PH, _ = ref.d2ace_probabilities(E, phi, loss, Y, nb, pressure=8.0, beta=0.5, loss_transform=transform)
    for score, P in ((su, PU), (sh, PH)):
        w = quantized_min_max(score, 8.0)
        np.testing.assert_allclose(w / w.sum(), P, rtol=1e-9)


def test_vectorised_exp_is_within_one_ulp():
    from mlbs.signals.vector_math import vexp
    from numba import njit

    @njit
    def exp_all(x):
        e = np.empty(x.size)
        for i in range(x.size):
            e[i] = vexp(x[i])
        return e

    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.exponential(3.0, 200_000), rng.uniform(-708, 709.7, 50_000), -rng.random(1000) * 1e-9])
    e = exp_all(x)
    assert (np.abs(e - np.exp(x)) <= 1 * np.spacing(np.exp(x))).all()
    special = exp_all(np.array([np.nan, np.inf, -np.inf, 709.79, -800.0]))
    assert np.isnan(special[0]) and special[1] == np.inf and special[2] < 1e-307 and special[3] == np.inf
    assert 0 <= special[4] < 1e-307


def test_active_and_recency_bias_match_references():
    Y, _ = problem()
    n, q = Y.shape
    batches = stream(n, q, batches=50)
    hist = ref.replay_visits(Y, batches)
    for ddof in (0, 1):
        ab = ActiveBias(Y, ddof=ddof)
        feed(ab, batches)
        np.testing.assert_allclose(ab.scores(), ref.active_bias_scores(hist, q, ddof), rtol=1e-9, atol=1e-14)
        ab.start_selection()
        expected = ref.qmm_weights(ref.active_bias_scores(hist, q, ddof), d2ace_pressure()(4))
        np.testing.assert_allclose(ab.probabilities(), expected / expected.sum(), rtol=1e-9)
    prop = ActiveBias(Y, transform="proportional")
    feed(prop, batches)
    prop.start_selection()
    expected = ref.active_bias_scores(hist, q) + 0.02 * q
    np.testing.assert_allclose(prop.probabilities(), expected / expected.sum(), rtol=1e-9)
    for w in (3, 10):
        rb = RecencyBias(Y, window=w)
        feed(rb, batches)
        np.testing.assert_allclose(rb.scores(), ref.recency_bias_scores(hist, q, w), rtol=1e-9, atol=1e-14)
    rb.start_selection()
    expected = ref.qmm_weights(ref.recency_bias_scores(hist, q, 10), 100.0)
    np.testing.assert_allclose(rb.probabilities(), expected / expected.sum(), rtol=1e-9)


def test_active_bias_loss_weights():
    Y, _ = problem()
    batches = stream(*Y.shape, batches=50)
    ab = ActiveBias(Y, mode="weight", burn_in=3)
    assert ab.uniform
    feed(ab, batches[:20])
    assert np.array_equal(ab.loss_weights([0, 5, 9]), np.ones(3))  # burn-in
    feed(ab, batches[20:])
    idx = np.array([4, 8, 15, 16])
    u = ref.active_bias_scores(ref.replay_visits(Y, batches), Y.shape[1])[idx] + 0.02 * Y.shape[1]
    np.testing.assert_allclose(ab.loss_weights(idx), u / u.mean(), rtol=1e-9)


# -- draws --------------------------------------------------------------------------------------

def _two_pool_policy(mixture, n=6):
    Y = np.eye(n, 3, dtype=np.int8)
    policy = D2ACE(Y, neighbors=np.zeros((n, 1), dtype=np.int64), mixture=mixture, seed=3)
    wu, wh = np.arange(1.0, n + 1), np.arange(n, 0.0, -1) ** 2
    policy.beta, policy.pool_w = 0.3, (wu, wh)
    for pool, w in zip(policy.pools, policy.pool_w):
        pool.assign(w)
    return policy, wu / wu.sum(), wh / wh.sum()


@pytest.mark.parametrize("mixture", ["per_draw", "per_batch"])
def test_mixture_draws_follow_their_law(mixture):
    policy, pu, ph = _two_pool_policy(mixture)
    beta, trials = policy.beta, 20000
    law_u, law_h = sequential_law(pu, 2), sequential_law(ph, 2)
    if mixture == "per_batch":
        law = {t: beta * law_u[t] + (1 - beta) * law_h[t] for t in law_u}
    else:  # a fresh Bernoulli choice per slot, each pool renormalised over the unselected
        law = {(a, b): (beta * pu[a] + (1 - beta) * ph[a])
               * (beta * pu[b] / (1 - pu[a]) + (1 - beta) * ph[b] / (1 - ph[a])) for a, b in law_u}
    draws = [tuple(policy.draw(2)) for _ in range(trials)]
    assert chisquare_pvalue(count(draws), law, trials) > ALPHA
    wrong = sequential_law(beta * pu + (1 - beta) * ph, 2)  # the deterministic mixture's law
    if mixture == "per_batch":
        assert chisquare_pvalue(count(draws), wrong, trials) < ALPHA
    np.testing.assert_allclose(policy.pools[0].weights(), pu * 21)  # restored after every batch
    assert len(set(policy.draw(6))) == 6


def test_deterministic_mixture_draws_follow_P():
    Y, nb = problem(n=8, q=3)
    policy = D2ACE(Y, neighbors=nb[:, :0], seed=4)
    policy.index.assign(np.arange(1.0, 9.0))
    trials = 20000
    draws = [tuple(policy.draw(2)) for _ in range(trials)]
    assert chisquare_pvalue(count(draws), sequential_law(np.arange(1.0, 9.0), 2), trials) > ALPHA


# -- selector, checkpoints, real data, errors ----------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda Y, nb: D2ACE(Y, neighbors=nb, mixture="per_draw"),
    lambda Y, nb: D2ACE(Y, neighbors=nb),
    lambda Y, nb: Uncertain(Y),
    lambda Y, nb: ActiveBias(Y),
    lambda Y, nb: RecencyBias(Y)])
def test_state_dict_round_trip_through_the_selector(make):
    Y, nb = problem()

    def run(selector, epochs, stop=None):
        out = []
        for e in epochs:
            for t, batch in enumerate(selector.epoch(e)):
                if (e, t) == stop:
                    return out
                out.append(batch)
                selector.observe(batch, np.random.default_rng([e, t]).normal(0, 2, (batch.size, Y.shape[1])))
        return out

    first = BatchSelector(make(Y, nb), 32, warmup_epochs=2, seed=1)
    run(first, range(3), stop=(2, 2))
    assert first.policy.epochs_finished == 2 and first.policy.schedule_epoch == 1
    state = first.state_dict()
    rest = run(first, range(2, 5))
    second = BatchSelector(make(Y, nb), 32, warmup_epochs=2, seed=1)
    second.load_state_dict(state)
    again = run(second, range(2, 5))
    assert all(np.array_equal(a, b) for a, b in zip(rest, again)) and len(rest) == len(again)
    np.testing.assert_array_equal(first.policy.probabilities(), second.policy.probabilities())


def test_d2ace_on_yeast_prefers_uncertain_and_hard_samples():
    from test_data_realdata import real_data_dir

    from mlbs.data import load_dataset

    data = load_dataset("yeast", real_data_dir(), part="train")  # not bundled: skips without the MULAN folder
    X = np.asarray(data.X, dtype=np.float64)
    X = (X - X.min(0)) / np.maximum(X.max(0) - X.min(0), 1e-12)
    Y = sp.csr_matrix(data.Y)
    n, q = Y.shape
    policy = D2ACE(Y, X, **EXACT)
    rng = np.random.default_rng(0)
    confusing = rng.random(n) < 0.2           # a fifth of the samples get noisy, unstable outputs
    truth = 2.0 * (Y.toarray().astype(np.float64) * 2 - 1)
    selector = BatchSelector(policy, 128, warmup_epochs=3, seed=0)
    for e in range(4):
        for batch in selector.epoch(e):
            noise = np.where(confusing[batch, None], 3.0, 0.3)
            selector.observe(batch, truth[batch] * np.where(confusing[batch, None], 0.1, 1.0)
                             + rng.normal(0, 1, (batch.size, q)) * noise)
    policy.end_epoch()  # refresh from the tables of epoch 3 (s(3) = 8, beta(3) = 0.7)
    P = policy.probabilities()
    assert P[confusing].mean() > 2 * P[~confusing].mean()  # 2.36 with these seeds
    s = policy.signals
    from mlbs.statistics.neighbors import nearest_neighbors

    neigh = nearest_neighbors(X, 6).indices
    PU, PH, Pref = ref.d2ace_probabilities(s.E, s.phi, s.loss, Y, neigh, pressure=8.0, beta=0.7)
    np.testing.assert_allclose(P, Pref, rtol=1e-9)


def test_bad_input():
    Y, nb = problem(n=30, q=4)
    policy = D2ACE(Y, neighbors=nb)
    with pytest.raises(ValueError, match="outputs="):
        policy.observe([0, 1], losses=[0.1, 0.2])
    with pytest.raises(ValueError, match="shape"):
        policy.observe([0, 1], np.zeros((2, 5)))
    with pytest.raises(ValueError, match="not finite"):
        policy.observe([0, 1], np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]]))
    with pytest.raises(IndexError):
        policy.observe([0, 30], np.zeros((2, 4)))
    assert policy.signals.count.sum() == 0  # nothing changed
    for kwargs in ({"refresh": "batch"}, {"mixture": "bernoulli"}, {"loss_transform": "exp"}, {"window": 0},
                   {"alpha": 1.5}, {"window_dtype": "float16"}, {"pressure": 1.0}, {"k": 0}):
        with pytest.raises(ValueError):
            D2ACE(Y, neighbors=nb, **kwargs)
    with pytest.raises(ValueError, match="features"):
        D2ACE(Y)
    with pytest.raises(ValueError, match="neighbors"):
        D2ACE(Y, neighbors=nb[:5])
    with pytest.raises(ValueError, match="neighbors"):
        D2ACE(Y, neighbors=nb + 30)
    with pytest.raises(ValueError, match="beta"):
        D2ACE(Y, neighbors=nb, beta=1.5).start_selection()
    with pytest.raises(ValueError, match="correlation"):
        Uncertain(Y, correlation="mi")
    with pytest.raises(TypeError, match="pressure"):
        Uncertain(Y, pressure="8")
    for bad in ({"ddof": 2}, {"transform": "rank"}, {"mode": "both"}, {"epsilon": 0}):
        with pytest.raises(ValueError):
            ActiveBias(Y, **bad)
    with pytest.raises(ValueError, match="window"):
        RecencyBias(Y, window=17)
    with pytest.raises(ValueError, match="shape"):
        Uncertain(Y).load_state_dict({**Uncertain(Y).state_dict(), **Uncertain(Y[:7]).signals.tables()})


def test_d2ace_refresh_leaves_torch_threads_alone():
    """The refresh's parallel kernels must not change the OpenMP thread count that torch shares
    (numba's OpenMP layer sets it to the number of numba threads). Run in a fresh process, where
    the threading layer is chosen at the first parallel launch."""
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    code = """
import numpy as np, scipy.sparse as sp, torch, numba
torch.set_num_threads(1)
torch.ones(64, 64) @ torch.ones(64, 64), torch.get_num_threads()  # torch in use, as in training
from mlbs.signals.refresh import d2ace_scores
from mlbs.statistics.structure import local_context
rng = np.random.default_rng(0)
n, q = 500, 12
Y = sp.csr_matrix((rng.random((n, q)) < 0.2).astype(np.int8))
Z = local_context(Y, rng.integers(0, n, (n, 3)))
import mlbs.policies
assert numba.config.THREADING_LAYER == "default", "importing the policies changed numba's configuration"
d2ace_scores(rng.random((n, q)), rng.random((n, q)) * 0.5, rng.random((n, q)), Y, Z)
assert numba.config.THREADING_LAYER == "default", "the refresh left numba's configuration changed"
print(torch.get_num_threads(), numba.threading_layer())
"""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env = {**env, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    threads, layer = out.stdout.split()
    assert threads == "1", f"torch threads became {threads} after a refresh on the {layer} layer"
    assert layer == "workqueue"
