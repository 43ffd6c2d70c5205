"""The label structure that AdaC and D2ACE draw on, computed once per training set.

- :func:`related_labels`: for every label j, the labels most related to it by the symmetric
  conditional probability matrix A (Zhou et al. 2024, section 3.5 and appendix);
- :func:`seed_labels`: every sample's rarest label (largest IRLbl), where AdaC's chain starts;
- :func:`local_context`: D2ACE's context Z, the labels present among a sample and its k nearest
  neighbours (Liu et al. 2026).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["related_labels", "seed_labels", "local_context"]


def related_labels(A, K: int):
    """L_c(j): the K labels k != j with the largest A_jk > 0, ties to the smaller index.

    Returns (ptr, related) in CSR form: L_c(j) = related[ptr[j]:ptr[j+1]] (possibly fewer than K).
    """
    A = sp.csr_matrix(A)
    q = A.shape[0]
    ptr, out = [0], []
    for j in range(q):
        lo, hi = A.indptr[j], A.indptr[j + 1]
        cols, vals = A.indices[lo:hi], A.data[lo:hi]
        keep = (vals > 0) & (cols != j)
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:K]
        out.extend(cols[order].tolist())
        ptr.append(len(out))
    return np.asarray(ptr, dtype=np.int64), np.asarray(out, dtype=np.int64)


def seed_labels(Y: sp.csr_matrix, label_irlbl: np.ndarray) -> np.ndarray:
    """sigma(i) = argmax_{j in Y_i} IRLbl_j, ties to the smaller label; -1 for rows without labels."""
    sigma = np.full(Y.shape[0], -1, dtype=np.int64)
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    cols = Y.indices
    if rows.size:
        order = np.lexsort((cols, -label_irlbl[cols], rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        sigma[rows[first]] = cols[first]
    return sigma


def local_context(Y: sp.csr_matrix, neighbors: np.ndarray) -> sp.csr_matrix:
    """Z (CSR, 0/1): Z_ik = 1 iff label k is positive for some sample of {i} u kNN(i).

    ``neighbors`` (n, k) holds the neighbour ids without self; self is always added. Cost
    O(n (k + 1) card_max) through the sparse product A Y, A the (n, n) neighbourhood matrix.
    """
    n = Y.shape[0]
    nb = np.asarray(neighbors)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must have shape ({n}, k), got {nb.shape}")
    if nb.size and (nb.dtype.kind not in "iu" or nb.min() < 0 or nb.max() >= n):
        raise ValueError(f"neighbors must be integer sample ids in [0, {n})")
    cols = np.concatenate([np.arange(n)[:, None], nb.astype(np.int64)], axis=1)
    A = sp.csr_matrix((np.ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, cols.shape[1])),
                      shape=(n, n))
    Z = sp.csr_matrix(A @ Y.astype(np.float64))
    Z.sum_duplicates()
    Z.data[:] = 1.0
    Z.sort_indices()
    return Z
