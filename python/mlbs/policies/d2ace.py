"""``D2ACE``: dual dynamics and adaptive correlation enhancement ([PD]; code [CD]; methods.md 8).

The end-of-epoch refresh (8.3) is written for sparse labels: with nnz(Y) = N Card positives,
the masked correlations cost O(N Card^2) (not O(N q^2)) and the correlation strengths, needed
only at the positives, O(sum_i card_i |Z_i|); the dense terms (label statistics, sum_j v_j E_ij)
are O(N q), computed in row chunks so that no N x q float64 temporary is built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from mlbs import WeightedIndex
from mlbs.policies.epochwise import EpochPolicy, resolve_options
from mlbs.policies.schedules import check_schedule, d2ace_beta, d2ace_pressure
from mlbs.policies.signals import PredictionWindow
from mlbs.policies.transforms import quantized_min_max

LOSS_TRANSFORMS = ("1-exp", "2-exp")
MIXTURES = ("deterministic", "per_draw", "per_batch")

#: compat preset ``"d2ace"`` (methods.md 8.5 D1, D4; 2.3 clip; 2.6 NaNs).
D2ACE_PRESETS = {"d2ace": {"loss_transform": "2-exp", "qmm_clip": True, "entropy_nan": True, "short_nan": True}}


def local_context(labels: sp.csr_matrix, neighbors: np.ndarray) -> sp.csr_matrix:
    """Z (CSR, 0/1): Z_ik = 1 iff label k is positive for some sample of {i} u kNN(i) (8.3 step 3).

    ``neighbors`` (n, k) holds the neighbour ids without self; self is always added. Cost
    O(n (k + 1) card_max) through the sparse product A Y, A the (n, n) neighbourhood matrix.
    """
    n = labels.shape[0]
    nb = np.asarray(neighbors)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must have shape ({n}, k), got {nb.shape}")
    if nb.size and (nb.dtype.kind not in "iu" or nb.min() < 0 or nb.max() >= n):
        raise ValueError(f"neighbors must be integer sample ids in [0, {n})")
    cols = np.concatenate([np.arange(n)[:, None], nb.astype(np.int64)], axis=1)
    A = sp.csr_matrix((np.ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, cols.shape[1])),
                      shape=(n, n))
    Z = sp.csr_matrix(A @ labels.astype(np.float64))
    Z.sum_duplicates()
    Z.data[:] = 1.0
    Z.sort_indices()
    return Z


def hardness(loss: np.ndarray, phi: np.ndarray, transform: str = "1-exp") -> np.ndarray:
    """h = g(l) (1 - phi), g(l) = 1 - e^(-l) (default) or 2 - e^(-l) (compat "2-exp", D1)."""
    if transform not in LOSS_TRANSFORMS:
        raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {transform!r}")
    g = -np.expm1(-np.asarray(loss, dtype=np.float64))
    if transform == "2-exp":
        g += 1.0
    return g * (1.0 - np.asarray(phi, dtype=np.float64))


def _column_moments(E, loss, phi, transform, chunk):
    """Population mean and std of every column of E and of h, merging row chunks (Chan et al.)."""
    q = E.shape[1]
    count, mean, m2 = 0, np.zeros((2, q)), np.zeros((2, q))
    for lo in range(0, E.shape[0], chunk):
        block = np.stack([E[lo:lo + chunk].astype(np.float64),
                          hardness(loss[lo:lo + chunk], phi[lo:lo + chunk], transform)])
        nb = block.shape[1]
        mb = block.mean(axis=1)
        m2b = ((block - mb[:, None, :]) ** 2).sum(axis=1)
        delta, total = mb - mean, count + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta ** 2 * (count * nb / total)
        count = total
    return mean, np.sqrt(m2 / count)


@njit(cache=True)
def _strength_at_positives(y_indptr, y_indices, z_indptr, z_indices, C):  # pragma: no cover
    """S_ij = sum_{k in supp Z_i} C_jk for every positive (i, j), in the CSR order of Y."""
    out = np.zeros(y_indices.size)
    for i in range(y_indptr.size - 1):
        for t in range(y_indptr[i], y_indptr[i + 1]):
            j = y_indices[t]
            acc = 0.0
            for u in range(z_indptr[i], z_indptr[i + 1]):
                acc += C[j, z_indices[u]]
            out[t] = acc
    return out


def masked_correlation(values: np.ndarray, labels: sp.csr_matrix, eps: float = 1e-8) -> np.ndarray:
    """C of M = X (.) Y from the values X_ij at the positives (CSR order of Y), dense (q, q).

    M_hat_{:,j} = M_{:,j} / (||M_{:,j}||_2 + eps); C = M_hat^T M_hat; C_jk /= sum_k' C_jk' + eps
    (8.3 step 4). The Gram matrix of a sparse matrix costs O(sum_i card_i^2).
    """
    q = labels.shape[1]
    norms = np.sqrt(np.bincount(labels.indices, weights=values * values, minlength=q))
    Mhat = sp.csr_matrix((values / (norms[labels.indices] + eps), labels.indices, labels.indptr),
                         shape=labels.shape)
    C = (Mhat.T @ Mhat).toarray()
    return C / (C.sum(axis=1, keepdims=True) + eps)


def d2ace_scores(E, phi, loss, labels: sp.csr_matrix, Z: sp.csr_matrix, *, loss_transform: str = "1-exp",
                 eps: float = 1e-8, chunk: int = 8192):
    """score^U and score^H of every sample (methods.md 8.3 steps 1-6).

    - h = g(l) (1 - phi) (:func:`hardness`);
    - v^U_j = exp(mu_j(E)/2 + sigma_j(E)/2), v^H_j likewise from h (population std, all N rows);
    - C^U, C^H from E (.) Y and h (.) Y (:func:`masked_correlation`);
    - S = Z C^T, needed only where y_ij = 1;
    - score^U_i = sum_j v^U_j E_ij (1 + y_ij S^U_ij), score^H_i = sum_j v^H_j h_ij (1 + y_ij S^H_ij).

    Parameters
    ----------
    E, phi, loss : ndarray, shape (N, q)
        The signal tables (any float dtype; computed in float64).
    labels, Z : csr_matrix, shape (N, q)
        0/1 labels and local context, canonical (sorted, no duplicates).
    """
    n, q = labels.shape
    if not (E.shape == phi.shape == loss.shape == (n, q)):
        raise ValueError(f"E, phi and loss must have shape {(n, q)}, got {E.shape}, {phi.shape}, {loss.shape}")
    mean, std = _column_moments(E, loss, phi, loss_transform, chunk)
    vU, vH = np.exp(0.5 * mean + 0.5 * std)
    rows = np.repeat(np.arange(n), np.diff(labels.indptr))
    cols = labels.indices
    E_pos = E[rows, cols].astype(np.float64)
    h_pos = hardness(loss[rows, cols], phi[rows, cols], loss_transform)
    CU = masked_correlation(E_pos, labels, eps)
    CH = masked_correlation(h_pos, labels, eps)
    zi, zptr = Z.indices.astype(np.int64), Z.indptr.astype(np.int64)
    yi, yptr = labels.indices.astype(np.int64), labels.indptr.astype(np.int64)
    SU = _strength_at_positives(yptr, yi, zptr, zi, CU)
    SH = _strength_at_positives(yptr, yi, zptr, zi, CH)
    score_u = np.bincount(rows, weights=vU[cols] * E_pos * SU, minlength=n)
    score_h = np.bincount(rows, weights=vH[cols] * h_pos * SH, minlength=n)
    for lo in range(0, n, chunk):
        score_u[lo:lo + chunk] += E[lo:lo + chunk].astype(np.float64) @ vU
        score_h[lo:lo + chunk] += hardness(loss[lo:lo + chunk], phi[lo:lo + chunk], loss_transform) @ vH
    return score_u, score_h


class D2ACE(EpochPolicy):
    """P = beta(e) P^U + (1 - beta(e)) P^H, each pool a normalised QMM of its score (methods.md 8).

    Per visit (:class:`PredictionWindow` with phi and the per-label loss, 8.2): the window of the
    last w probabilities, E, phi and l. End of epoch e (:func:`d2ace_scores`, 8.3): the label
    weights, the local context Z (static, built once from the kNN graph, 2.7: k neighbours and
    self), the masked correlations and the scores; P^U = QMM(score^U, s(e)), P^H =
    QMM(score^H, s(e)); s and beta read at the lagged epoch (D8).

    Mixture semantics (8.4, D2), all drawn from weighted indices:

    - ``"deterministic"`` ([CD]): one index holding beta P^U + (1 - beta) P^H;
    - ``"per_draw"`` (the paper's "Bernoulli mixture"): one index per pool; for each slot of a
      batch z ~ Bernoulli(beta) (the policy's seeded generator), the next sample is drawn from
      P^U (z = 1) or P^H renormalised over the samples not yet in the batch, in both pools;
    - ``"per_batch"``: one z per batch, the whole batch from that pool.

    :meth:`probabilities` is the law of a batch's first draw, beta P^U + (1 - beta) P^H, in
    every mode.

    Memory: per entry w b_w + 3 b_t bytes (window, E, phi, l; see :class:`PredictionWindow`);
    per sample 8 bytes of counts and 8.5 bytes per weighted index; Z: 12 bytes per nonzero
    (at most (k + 1) card_max per row); two dense q x q float64 correlation matrices per refresh.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    features : (n, d) array, optional
        Training features (scaled as for training) for the kNN graph.
    neighbors : (n, k) int array, optional
        Precomputed neighbour ids, self excluded (instead of ``features``).
    k : int
        Neighbours (default 6; self is added).
    window : int
        w (default 5).
    alpha : float
        EMA weight of phi (default 0.7).
    pressure, beta : float or callable epoch -> value
        Defaults ``ExpDecay(8, 1, 10, 100, floor=1)`` and ``Linear(0.7, 0.3, 10, 70)``.
    mixture : {"deterministic", "per_draw", "per_batch"}
    loss_transform : {"1-exp", "2-exp"}
        g(l) of the hardness; default 1 - e^(-l) (the paper's evident intent), "2-exp" the code (D1).
    qmm_clip : bool
        Clamp the QMM levels to [1, N] ([CD]; default False, 2.3).
    entropy_nan, short_nan : bool
        compat NaNs (2.6): a NaN score makes its pool uniform, as in [CD] (D4).
    eps : float
        epsilon of the normalisations (1e-8).
    window_dtype, table_dtype : str
        Storage of the window and of E, phi, l (see :class:`PredictionWindow`).
    schedule_eval : {"lagged", "current"}
    compat : {None, "d2ace"}
    seed : int
    knn_options : dict, optional
        Passed to :func:`mlbs.knn.nearest_neighbors`.
    """

    def __init__(self, labels, features=None, *, neighbors=None, k: int = 6, window: int = 5,
                 alpha: float = 0.7, pressure=None, beta=None, mixture: str = "deterministic",
                 loss_transform=None, qmm_clip=None, entropy_nan=None, short_nan=None, eps: float = 1e-8,
                 window_dtype: str = "float32", table_dtype: str = "float32", schedule_eval: str = "lagged",
                 compat=None, refresh: str = "epoch", seed: int = 0, knn_options=None):
        super().__init__(labels, refresh=refresh, schedule_eval=schedule_eval, seed=seed)
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {mixture!r}")
        opts = resolve_options(D2ACE_PRESETS, compat,
                               {"loss_transform": loss_transform, "qmm_clip": qmm_clip,
                                "entropy_nan": entropy_nan, "short_nan": short_nan},
                               {"loss_transform": "1-exp", "qmm_clip": False, "entropy_nan": False,
                                "short_nan": False})
        if opts["loss_transform"] not in LOSS_TRANSFORMS:
            raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {opts['loss_transform']!r}")
        if not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
        self.loss_transform, self.qmm_clip = opts["loss_transform"], bool(opts["qmm_clip"])
        self.nan_compat = bool(opts["entropy_nan"] or opts["short_nan"])
        self.pressure = check_schedule("pressure", d2ace_pressure() if pressure is None else pressure)
        self.beta_schedule = check_schedule("beta", d2ace_beta() if beta is None else beta)
        self.mixture, self.eps = mixture, float(eps)
        self.signals = PredictionWindow(self.n, self.q, window=window, window_dtype=window_dtype,
                                        table_dtype=table_dtype, track_phi=True, track_loss=True,
                                        alpha=alpha, entropy_nan=opts["entropy_nan"],
                                        short_nan=opts["short_nan"])
        self.Z = local_context(self.labels, self._neighbors(features, neighbors, k, knn_options or {}))
        self.beta = 0.5
        self.pools = None
        if mixture != "deterministic":
            self.pools = (WeightedIndex(self.n, seed=seed + 1), WeightedIndex(self.n, seed=seed + 2))
            self.pool_w = (np.ones(self.n), np.ones(self.n))
            for pool, w in zip(self.pools, self.pool_w):
                pool.assign(w)
            self.rng = np.random.default_rng([seed, 3])

    def _neighbors(self, features, neighbors, k, knn_options) -> np.ndarray:
        if neighbors is not None:
            return np.asarray(neighbors)
        if features is None:
            raise ValueError("D2ACE needs the training features (for the kNN local context) or neighbors=")
        from mlbs.knn import nearest_neighbors

        return nearest_neighbors(features, k, **knn_options).indices

    def _visit(self, idx, outputs, kind):
        return self.signals.visit(idx, outputs, kind, self.labels)

    def pool_weights(self, epoch: int):
        """(omega^U, omega^H, beta) at the given evaluation epoch."""
        beta = float(self.beta_schedule(epoch))
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta({epoch}) = {beta} is outside [0, 1]")
        s = self.signals
        with np.errstate(invalid="ignore" if self.nan_compat else "warn"):
            su, sh = d2ace_scores(s.E, s.phi, s.loss, self.labels, self.Z, loss_transform=self.loss_transform,
                                  eps=self.eps)
        nonfinite = "uniform" if self.nan_compat else "raise"
        pressure = self.pressure(epoch)
        wu = quantized_min_max(su, pressure, clip=self.qmm_clip, nonfinite=nonfinite)
        wh = quantized_min_max(sh, pressure, clip=self.qmm_clip, nonfinite=nonfinite)
        return wu, wh, beta

    def rebuild(self) -> None:
        wu, wh, self.beta = self.pool_weights(self.schedule_epoch)
        if self.pools is None:
            self.index.assign(self.beta * wu / wu.sum() + (1.0 - self.beta) * wh / wh.sum())
        else:
            self.pool_w = (wu, wh)
            self.pools[0].assign(wu)
            self.pools[1].assign(wh)

    def draw(self, k: int) -> np.ndarray:
        if self.pools is None:
            return self.index.draw_distinct(k)
        k = int(k)
        if not 0 <= k <= self.n:
            raise ValueError(f"cannot draw {k} distinct samples out of {self.n}")
        if self.mixture == "per_batch":
            return self.pools[0 if self.rng.random() < self.beta else 1].draw_distinct(k)
        return self._draw_per_slot(self.rng.random(k) < self.beta)

    def _draw_per_slot(self, from_u: np.ndarray) -> np.ndarray:
        """Runs of equal pool choices drawn with draw_distinct; drawn samples zeroed in both pools
        until the batch is complete, then restored from ``pool_w`` (O(k log N))."""
        out = []
        try:
            bounds = np.flatnonzero(np.diff(from_u.astype(np.int8))) + 1
            for run in np.split(np.arange(from_u.size), bounds):
                if run.size == 0:
                    continue
                got = self.pools[0 if from_u[run[0]] else 1].draw_distinct(run.size)
                for pool in self.pools:
                    pool.update(got, np.zeros(got.size))
                out.append(got)
        finally:
            drawn = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
            for pool, w in zip(self.pools, self.pool_w):
                pool.update(drawn, w[drawn])
        return drawn

    def probabilities(self) -> np.ndarray:
        if self.pools is None:
            return self.index.probabilities()
        return self.beta * self.pools[0].probabilities() + (1.0 - self.beta) * self.pools[1].probabilities()

    def state_dict(self) -> dict:
        state = {**super().state_dict(), "signals": self.signals.state_dict(), "beta": self.beta}
        if self.pools is not None:
            state["pools"] = [(p.weights(), p.rng_state) for p in self.pools]
            state["mixture_rng"] = self.rng.bit_generator.state
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.signals.load_state_dict(state["signals"])
        self.beta = float(state["beta"])
        if self.pools is not None:
            self.pool_w = tuple(np.asarray(w, dtype=np.float64).copy() for w, _ in state["pools"])
            for pool, w, (_, rng) in zip(self.pools, self.pool_w, state["pools"]):
                pool.assign(w)
                pool.rng_state = tuple(rng)
            self.rng.bit_generator.state = state["mixture_rng"]
