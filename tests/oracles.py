"""Test oracles: slow, direct numpy transcriptions of the formulas the package computes fast.

They recompute everything from the definitions every time (O(N) or worse), exactly as written
in the papers (Zhou et al. 2024; Zhou et al. 2024b; Liu et al. 2026; Chang et al. 2017; Song et
al. 2020), and exist so that the fast paths can be checked against them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hard_probabilities(loss: np.ndarray, pressure: float) -> np.ndarray:
    """Eq. 3: P_i = s^(r_i/N) / sum_j s^(r_j/N), r ascending ranks, ties by index."""
    n = len(loss)
    order = np.argsort(loss, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1)
    w = pressure ** (ranks / n)
    return w / w.sum()


def adaptive_probabilities(table: np.ndarray, pressure: float) -> np.ndarray:
    """Eqs. 6-7: Q_i = ceil(N L_i / L_max) in [0, N], P_i proportional to s^(Q_i/N)."""
    n = len(table)
    top = table.max()
    if top <= 0:
        return np.full(n, 1.0 / n)
    q = np.clip(np.ceil(n * table / top), 0, n)
    w = pressure ** (q / n)
    return w / w.sum()


def related_sets(Y, K: int) -> list[list[int]]:
    """L_c(j) for every label j: the K labels with the largest A_jk > 0 (ties: smaller k)."""
    Yd = np.asarray(sp.csr_matrix(Y).toarray(), dtype=float)
    c = Yd.T @ Yd
    n1 = np.diag(c).copy()
    q = Yd.shape[1]
    out = []
    for j in range(q):
        scores = []
        for k in range(q):
            if k != j and n1[j] > 0 and n1[k] > 0 and c[j, k] > 0:
                scores.append((-(c[j, k] / n1[j] + c[j, k] / n1[k]) / 2, k))
        out.append([k for _, k in sorted(scores)[:K]])
    return out


def chain_step_probabilities(P: np.ndarray, Y, seed_label: np.ndarray, related: list[list[int]],
                             previous: int, selected: set) -> np.ndarray:
    """Law of the next chain sample of AdaC given the previous one and the batch so far.

    P restricted to D_c \\ Sel with D_c the samples having a label in L_c(sigma(previous)),
    renormalised; the global P over the unselected samples when that set has no mass.
    """
    Yd = sp.csr_matrix(Y).toarray() > 0
    free = np.ones(len(P), bool)
    free[list(selected)] = False
    j = seed_label[previous]
    mask = free.copy()
    if j >= 0 and related[j]:
        mask &= Yd[:, related[j]].any(axis=1)
    else:
        mask[:] = False
    if not (P * mask).sum() > 0:
        mask = free
    p = P * mask
    return p / p.sum()


# -- history-based methods (Zhou et al. 2024b; Liu et al. 2026; Chang et al. 2017; Song et al. 2020) --

def qmm_weights(scores, pressure: float, clip: bool = False) -> np.ndarray:
    """QMM, one sample at a time: k_i = ceil((1 - (x_i - min)/(max - min)) N), s^(-k_i/N).

    The scores may be fractions.Fraction, which makes the levels exact.
    """
    import math

    x = list(scores)  # floats, or exact fractions
    n, lo, hi = len(x), min(x), max(x)
    if not hi - lo > 0:
        return np.ones(n)
    out = []
    for v in x:
        k = math.ceil((1.0 - (v - lo) / (hi - lo)) * n)
        k = min(max(k, 1 if clip else 0), n)
        out.append(math.exp(-(math.log(pressure) / n) * k))
    return np.array(out)


def replay_visits(Y, stream, kind: str = "logits") -> list[list[np.ndarray]]:
    """The probability vectors of every visit of every sample, in order (last write wins in a batch)."""
    from scipy.special import expit

    hist: list[list[np.ndarray]] = [[] for _ in range(Y.shape[0])]
    for idx, out in stream:
        last = {int(i): r for r, i in enumerate(idx)}
        for i, r in sorted(last.items(), key=lambda item: item[1]):
            hist[i].append(expit(out[r]) if kind == "logits" else np.asarray(out[r], dtype=float))
    return hist


def entropy_bits(p: np.ndarray) -> np.ndarray:
    """H_2(p) in bits, with 0 log 0 = 0, by scipy.special.xlogy."""
    from scipy.special import xlogy

    return -(xlogy(p, p) + xlogy(1 - p, 1 - p)) / np.log(2)


def window_signals(hist, q: int, w: int = 5, alpha: float = 0.7):
    """E and phi (Zhou et al. 2024b; Liu et al. 2026) from the visit histories, by their definitions.

    E_ij = 1/2 mean_{t} |p^(t) - p^(t-1)| over the last w visits (0 with fewer than 2) +
    1/2 H_2(p^(last)); phi <- alpha |p^(t) - p^(t-1)| + (1 - alpha) phi over all visits.
    """
    n = len(hist)
    E, phi = np.zeros((n, q)), np.zeros((n, q))
    for i, visits in enumerate(hist):
        for t in range(1, len(visits)):
            phi[i] = alpha * np.abs(visits[t] - visits[t - 1]) + (1 - alpha) * phi[i]
        if visits:
            win = visits[-w:]
            changes = [np.abs(win[t] - win[t - 1]) for t in range(1, len(win))]
            mean_change = np.mean(changes, axis=0) if changes else np.zeros(q)
            E[i] = 0.5 * mean_change + 0.5 * entropy_bits(win[-1])
    return E, phi


def last_bce(Y, hist) -> np.ndarray:
    """l_ij = -y log p - (1 - y) log(1 - p) at the latest visit (0 before any)."""
    Yd = np.asarray(sp.csr_matrix(Y).toarray(), dtype=float)
    out = np.zeros(Yd.shape)
    for i, visits in enumerate(hist):
        if visits:
            p = visits[-1]
            out[i] = -(Yd[i] * np.log(p) + (1 - Yd[i]) * np.log(1 - p))
    return out


def uncertain_probabilities(E, epoch: int, pressure: float, bin_from_epoch: int = 5, clip: bool = False):
    """Uncertain at the end of an epoch: min(E, 1), the bins when epoch >= 5, row sums, QMM."""
    E = np.minimum(np.asarray(E, dtype=float), 1.0)
    if epoch >= bin_from_epoch:
        binned = np.empty_like(E)
        for idx, v in np.ndenumerate(E):
            if np.isnan(v) or v >= 0.8:
                binned[idx] = 0.9
            elif v >= 0.6:
                binned[idx] = 0.7
            elif v >= 0.4:
                binned[idx] = 0.5
            elif v >= 0.2:
                binned[idx] = 0.3
            else:
                binned[idx] = 0.1
        E = binned
        # exact rational bin values, so that the levels of the (exact) sums are exact
        from fractions import Fraction

        E = [sum((Fraction(round(10 * v), 10) for v in row), Fraction(0)) for row in E]
        w = qmm_weights(E, pressure, clip)
    else:
        w = qmm_weights(E @ np.ones(E.shape[1]), pressure, clip)
    return w / w.sum()


def dense_context(Y, neighbors) -> np.ndarray:
    """Z_i = max over {i} u neighbors[i] of the label rows (dense, 0/1)."""
    Yd = np.asarray(sp.csr_matrix(Y).toarray(), dtype=float)
    Z = np.zeros(Yd.shape)
    for i in range(Yd.shape[0]):
        for m in [i, *neighbors[i]]:
            Z[i] = np.maximum(Z[i], Yd[m])
    return Z


def d2ace_probabilities(E, phi, loss, Y, neighbors, *, pressure: float, beta: float,
                        loss_transform: str = "1-exp", eps: float = 1e-8, clip: bool = False, Z=None):
    """Dense transcription of the D2ACE refresh (Liu et al. 2026): returns (P^U, P^H, P), O(N q^2).

    ``neighbors`` (n, k) excludes self; Z (:func:`dense_context`, built unless given) includes it.
    """
    E, phi, loss = (np.asarray(a, dtype=float) for a in (E, phi, loss))
    Yd = np.asarray(sp.csr_matrix(Y).toarray(), dtype=float)
    n, q = Yd.shape
    g = 1 - np.exp(-loss) if loss_transform == "1-exp" else 2 - np.exp(-loss)
    h = g * (1 - phi)
    Z = dense_context(Yd, neighbors) if Z is None else np.asarray(Z, dtype=float)
    pools = []
    for X in (E, h):
        v = np.exp(0.5 * X.mean(axis=0) + 0.5 * X.std(axis=0))
        M = X * Yd
        Mhat = M / (np.linalg.norm(M, axis=0) + eps)
        C = Mhat.T @ Mhat
        C = C / (C.sum(axis=1, keepdims=True) + eps)
        S = Z @ C.T
        score = (v * X * (1 + Yd * S)).sum(axis=1)
        w = qmm_weights(score, pressure, clip)
        pools.append(w / w.sum())
    return pools[0], pools[1], beta * pools[0] + (1 - beta) * pools[1]


def active_bias_scores(hist, q: int, ddof: int = 1) -> np.ndarray:
    """U_i = sum_j sqrt(var_j + var_j^2 / (n_i - 1)) over all visits (0 when n_i < 2)."""
    out = np.zeros(len(hist))
    for i, visits in enumerate(hist):
        if len(visits) >= 2:
            var = np.var(np.array(visits), axis=0, ddof=ddof)
            out[i] = np.sqrt(var + var ** 2 / (len(visits) - 1)).sum()
    return out


def recency_bias_scores(hist, q: int, w: int = 10) -> np.ndarray:
    """U_i = sum_j H_2(share of p > 0.5 among the last w visits) (0 with fewer than 2 visits)."""
    out = np.zeros(len(hist))
    for i, visits in enumerate(hist):
        recent = visits[-w:]
        if len(recent) >= 2:
            out[i] = entropy_bits((np.array(recent) > 0.5).mean(axis=0)).sum()
    return out


# -- neighbours and imbalance weights (Zhou et al. 2024, eqs. 2, 4) ------------------------------

def knn_reference(X, k: int, self_exclusion: str = "id") -> np.ndarray:
    """Slow exact reference for :func:`nearest_neighbors` (O(n^2 d) memory; small n only).

    Distances are ``sum((x_i - x_m)^2)`` in float64; order by (distance, id).
    """
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    n = X.shape[0]
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        order = sorted(range(n), key=lambda m: (D[i, m], m))
        if self_exclusion == "id":
            order = [m for m in order if m != i]
        elif self_exclusion == "position":
            order = order[1:]
        out[i] = order[:k]
    return out


def local_imbalance_reference(Y, neighbors, labels) -> np.ndarray:
    """Dense loop reference for eq. 2 (small inputs)."""
    Y = np.asarray(Y.toarray() if sp.issparse(Y) else Y) != 0
    nb = np.asarray(neighbors)
    n, q = Y.shape
    B = np.zeros((n, q))
    for i in range(n):
        for j in labels:
            if Y[i, j]:
                B[i, j] = sum(1 for m in nb[i] if not Y[m, j]) / len(nb[i])
    return B


def normalized_imbalance_reference(B: np.ndarray, labels, convention: str = "code") -> np.ndarray:
    """Dense loop reference for eq. 4 over the positives given by ``B``'s pattern.

    ``B`` is dense with ``NaN`` marking entries that are not positives of
    minority labels; returns the same with ``S`` values (``-1`` excluded).
    """
    n, q = B.shape
    S = np.full((n, q), np.nan)
    for j in labels:
        entries = [i for i in range(n) if not np.isnan(B[i, j])]
        included = [i for i in entries if (0 < B[i, j] < 1 if convention == "code" else B[i, j] < 1)]
        T = sum(B[i, j] for i in included)
        for i in entries:
            S[i, j] = (B[i, j] / T if T != 0 else np.nan) if i in included else -1.0
    return S
