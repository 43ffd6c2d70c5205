"""Slow references: direct numpy transcriptions of the policies' formulas.

They recompute the whole distribution from the tables every time (O(N) or worse), exactly as
written in the papers, and exist so that the fast paths can be checked against them.
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
