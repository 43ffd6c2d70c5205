"""Label statistics of multi-label data (sparse-aware, q up to ~1e4).

Notation: ``Y`` in {0,1}^{n x q}, ``C1_j = sum_i y_ij`` (positives of label
``j``), ``|Y_i| = sum_j y_ij``.

* Card = (1/n) sum_i |Y_i|  (label cardinality; empty rows count);
* Dens = Card / q  (label density);
* IRLbl_j = max_l C1_l / C1_j  (Charte et al. 2015; Zhou et al. 2024, eq. 1);
* MeanIR = mean of IRLbl_j over the labels it is defined for;
* minority labels L_m = {j : IRLbl_j > MeanIR} (strict);
* A = symmetric conditional probability matrix (Zhou et al. 2024, appendix):
  A_jk = (c_jk / C1_j + c_jk / C1_k) / 2 for j != k with C1_j, C1_k > 0, where
  c_jk = |{i : y_ij = y_ik = 1}|; A_jj = 0; A_jk = 0 when C1_j or C1_k is 0.

Labels without positives (``C1_j = 0``) are excluded from IRLbl, MeanIR and
L_m by default (IRLbl_j = NaN). ``eps > 0`` reproduces the code of Zhou et
al. 2024, which divides by ``C1_j + eps`` instead (``irlbl_eps = 1e-6`` there).

Every function accepts a dense array or any scipy sparse matrix; nonzero
entries are positives. The co-occurrence matrix is computed as the sparse
product ``Y^T Y`` (cost O(sum_i |Y_i|^2)), so q = 1e4 is fine when rows have
few labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["binary_csr", "label_counts", "cardinality", "density", "irlbl", "mean_ir", "minority_labels",
           "cooccurrence_matrix", "LabelStats", "label_stats", "csr_row_entries"]


def binary_csr(Y) -> sp.csr_matrix:
    """CSR copy of ``Y`` with int64 ones at the positives (no overflow in products), canonical
    (sorted indices, no duplicates)."""
    Y = sp.csr_matrix(Y, copy=True)
    Y.sum_duplicates()
    Y.eliminate_zeros()
    return sp.csr_matrix((np.ones(Y.nnz, dtype=np.int64), Y.indices, Y.indptr), shape=Y.shape)


def label_counts(Y) -> np.ndarray:
    """``C1_j``: number of positives of each label, int64 array of shape (q,)."""
    Y = binary_csr(Y)
    return np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.int64)


def cardinality(Y) -> float:
    """Label cardinality ``Card = (1/n) sum_i |Y_i|`` (0 for n = 0)."""
    Y = binary_csr(Y)
    return Y.nnz / Y.shape[0] if Y.shape[0] else 0.0


def density(Y) -> float:
    """Label density ``Dens = Card / q``."""
    return cardinality(Y) / Y.shape[1] if Y.shape[1] else 0.0


def irlbl(Y, eps: float = 0.0) -> np.ndarray:
    """Imbalance ratio per label (Zhou et al. 2024, eq. 1): ``IRLbl_j = max_l C1_l / C1_j``.

    Parameters
    ----------
    Y : array-like or sparse, shape (n, q)
    eps : float
        0 (default): labels with ``C1_j = 0`` get NaN and are excluded
        downstream. ``eps > 0``: ``max_l C1_l / (C1_j + eps)`` for every label
        (the code of Zhou et al. 2024).

    Returns
    -------
    ndarray of float64, shape (q,)
    """
    c = label_counts(Y).astype(np.float64)
    top = c.max() if c.size else 0.0
    if eps > 0:
        return top / (c + eps)
    out = np.full(c.shape, np.nan)
    np.divide(top, c, out=out, where=c > 0)
    return out


def mean_ir(Y, eps: float = 0.0) -> float:
    """MeanIR: mean of IRLbl over the labels where it is defined (NaN if none)."""
    r = irlbl(Y, eps)
    r = r[np.isfinite(r)]
    return float(r.mean()) if r.size else float("nan")


def minority_labels(Y, eps: float = 0.0) -> np.ndarray:
    """Minority labels ``L_m = {j : IRLbl_j > MeanIR}`` (strict), sorted indices."""
    r = irlbl(Y, eps)
    m = mean_ir(Y, eps)
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(np.isfinite(r) & (r > m))


def cooccurrence_matrix(Y, dense: bool | None = None):
    """Symmetric conditional probability matrix ``A`` (Zhou et al. 2024, appendix).

    ``A_jk = (c_jk / C1_j + c_jk / C1_k) / 2`` for ``j != k`` (both labels with
    positives), ``A_jj = 0``; ``c_jk`` is the number of rows where both labels
    are positive.

    Parameters
    ----------
    Y : array-like or sparse, shape (n, q)
    dense : bool, optional
        Return a dense ndarray (True) or a CSR matrix (False). Default: dense
        when ``q <= 2048``.

    Returns
    -------
    ndarray or csr_matrix of float64, shape (q, q)
        Symmetric; stored entries only where labels co-occur.
    """
    Yb = binary_csr(Y)
    q = Yb.shape[1]
    C = sp.csr_matrix(Yb.T @ Yb)  # c_jk, int64
    C.setdiag(0)
    C.eliminate_zeros()
    C = C.tocoo()
    n1 = label_counts(Yb).astype(np.float64)
    vals = 0.5 * (C.data / n1[C.row] + C.data / n1[C.col])  # c_jk > 0 implies both counts > 0
    A = sp.csr_matrix((vals, (C.row, C.col)), shape=(q, q))
    if dense is None:
        dense = q <= 2048
    return A.toarray() if dense else A


@dataclass(frozen=True)
class LabelStats:
    """Summary statistics of a label matrix (see the module docstring)."""

    n: int
    q: int
    card: float
    dens: float
    counts: np.ndarray
    irlbl: np.ndarray
    mean_ir: float
    minority: np.ndarray
    n_empty_rows: int
    n_labels_without_positives: int


def label_stats(Y, eps: float = 0.0) -> LabelStats:
    """All the statistics of the module docstring at once."""
    Yb = binary_csr(Y)
    counts = label_counts(Yb)
    return LabelStats(
        n=Yb.shape[0], q=Yb.shape[1], card=cardinality(Yb), dens=density(Yb), counts=counts,
        irlbl=irlbl(Yb, eps), mean_ir=mean_ir(Yb, eps), minority=minority_labels(Yb, eps),
        n_empty_rows=int(np.sum(np.diff(Yb.indptr) == 0)),
        n_labels_without_positives=int(np.sum(counts == 0)),
    )


def csr_row_entries(indptr: np.ndarray, rows: np.ndarray):
    """Entries of the given rows of a CSR structure, without building a submatrix.

    Returns (owner, position): for every stored entry of ``rows[r]`` (in order), ``owner`` is r
    and ``position`` its index into the CSR ``indices``/``data`` arrays.
    """
    lengths = indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(rows.size), lengths)
    offsets = np.cumsum(lengths) - lengths
    position = np.repeat(indptr[rows] - offsets, lengths) + np.arange(lengths.sum())
    return owner, position
