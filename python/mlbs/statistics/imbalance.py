"""Instance weights of Adaptive from the local label imbalance (Zhou et al. 2024, eqs. 1, 2, 4).

* Local imbalance, eq. 2, for ``j`` in the minority labels ``L_m`` (IRLbl_j > MeanIR, Charte et
  al. 2015) and ``y_ij = 1``: ``B_ij = (1/k) |{m in K_i : y_mj = 0}|``, K_i the k nearest
  neighbours of sample i; all other entries are 0 and not stored (:func:`local_imbalance`, a
  sparse matrix whose stored entries are exactly the positives of minority labels, zeros
  included).
* Normalised imbalance, eq. 4 (:func:`normalized_imbalance`), with
  ``T_j = sum_i B_ij [B_ij included]`` and ``S_ij = B_ij / T_j`` for included entries, ``-1`` for
  excluded ones:

  - ``convention="code"`` (default; the code of Zhou et al. 2024): included iff ``0 < B_ij < 1``;
    B = 0 and B = 1 are excluded. ``T_j > 0`` whenever an entry is included.
  - ``convention="paper"`` (eq. 4 as printed): included iff ``B_ij < 1``; only B = 1
    ("outliers") is excluded. When ``T_j = 0`` the included entries are ``0/0 = NaN``.

  The two give the same weights except for labels with ``T_j = 0`` (NaN in the paper's reading,
  0 in the code's).
* ``epsilon_i = sum_{j in L_m} S_ij [S_ij != -1]`` and ``w_i = 1 + epsilon_i``
  (:func:`instance_weights`). Each minority label with ``T_j > 0`` distributes one unit of mass,
  so ``sum_i epsilon_i = |{j : T_j > 0}|``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from mlbs.statistics.labels import binary_csr, minority_labels
from mlbs.statistics.neighbors import Neighbors, nearest_neighbors

__all__ = ["local_imbalance", "normalized_imbalance", "instance_weights", "ImbalanceWeights", "imbalance_weights"]

def local_imbalance(Y, neighbors, label_ids=None) -> sp.csr_matrix:
    """Local imbalance ``B`` (Zhou et al. 2024, eq. 2), restricted to positives of ``label_ids``.

    ``B_ij = (1/k) |{m in K_i : y_mj = 0}| = 1 - (1/k) sum_{m in K_i} y_mj``
    for ``y_ij = 1`` and ``j`` in ``label_ids``; other entries are 0 and not
    stored. Cost O(k nnz log nnz) (sorted-key membership tests).

    Parameters
    ----------
    Y : array-like or sparse, shape (n, q)
    neighbors : ndarray of int, shape (n, k), or Neighbors
        Neighbour ids (self excluded).
    label_ids : array of int, optional
        Labels to compute (default: the minority labels of ``Y``).

    Returns
    -------
    csr_matrix of float64, shape (n, q)
        Stored entries are exactly the positives ``(i, j)``, ``j`` in
        ``label_ids`` (explicit zeros kept: B = 0 is information).
    """
    nb = np.asarray(neighbors.indices if isinstance(neighbors, Neighbors) else neighbors, dtype=np.int64)
    Y = binary_csr(Y)
    n, q = Y.shape
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must have shape (n={n}, k), got {nb.shape}")
    k = nb.shape[1]
    label_ids = minority_labels(Y) if label_ids is None else np.unique(np.asarray(label_ids, dtype=np.int64))
    mask = np.zeros(q, dtype=bool)
    mask[label_ids] = True
    coo = Y.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    keys_all = rows * q + cols  # sorted (CSR order, sorted indices)
    sel = mask[cols]
    r, c = rows[sel], cols[sel]
    hits = np.zeros(r.size, dtype=np.int64)
    for t in range(k if r.size else 0):
        probe = nb[r, t] * q + c
        pos = np.searchsorted(keys_all, probe).clip(max=keys_all.size - 1)
        hits += keys_all[pos] == probe
    vals = 1.0 - hits / k
    return sp.csr_matrix((vals, c, np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])), shape=(n, q))


def normalized_imbalance(B: sp.csr_matrix, convention: str = "code") -> sp.csr_matrix:
    """Normalised local imbalance ``S`` (Zhou et al. 2024, eq. 4; see the module docstring).

    Parameters
    ----------
    B : csr_matrix, shape (n, q)
        Output of :func:`local_imbalance` (pattern = positives of the
        minority labels).
    convention : {"code", "paper"}
        ``"code"``: entries with 0 < B < 1 are included (default, the code of Zhou et al. 2024);
        ``"paper"``: entries with B < 1 are included (0/0 -> NaN when
        ``T_j = 0``).

    Returns
    -------
    csr_matrix of float64
        Same pattern as ``B``; ``S_ij = B_ij / T_j`` on included entries,
        ``-1`` on excluded ones.
    """
    if convention not in ("code", "paper"):
        raise ValueError("convention must be 'code' or 'paper'")
    B = sp.csr_matrix(B)
    b = B.data
    inc = (b > 0) & (b < 1) if convention == "code" else (b < 1)
    T = np.bincount(B.indices[inc], weights=b[inc], minlength=B.shape[1])
    s = np.full(b.shape, -1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s[inc] = b[inc] / T[B.indices[inc]]
    return sp.csr_matrix((s, B.indices.copy(), B.indptr.copy()), shape=B.shape)


def instance_weights(S: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``epsilon_i = sum_j S_ij [S_ij != -1]`` and ``w = 1 + epsilon``.

    Returns
    -------
    (w, epsilon) : ndarrays of float64, shape (n,)
    """
    S = sp.csr_matrix(S)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    eps = np.bincount(rows, weights=np.where(S.data == -1.0, 0.0, S.data), minlength=S.shape[0])
    return 1.0 + eps, eps


@dataclass
class ImbalanceWeights:
    """Result of :func:`imbalance_weights`.

    ``recall`` and ``knn_method`` are those of the neighbour search (:class:`Neighbors`): recall@k
    1.0 for exact search, estimated on a query sample for an approximate one; both are None when
    the neighbours were passed in as a plain id array.
    """

    w: np.ndarray
    epsilon: np.ndarray
    B: sp.csr_matrix
    S: sp.csr_matrix
    minority: np.ndarray
    neighbors: Neighbors | None
    convention: str

    @property
    def recall(self) -> float | None:
        return None if self.neighbors is None else self.neighbors.recall

    @property
    def knn_method(self) -> str | None:
        return None if self.neighbors is None else self.neighbors.method


def imbalance_weights(X, Y, k: int = 5, *, neighbors=None, convention: str = "code", irlbl_eps: float = 0.0,
                      **knn_options) -> ImbalanceWeights:
    """Instance weights ``w = 1 + epsilon`` of Adaptive (Zhou et al. 2024, eqs. 1, 2, 4).

    Parameters
    ----------
    X : array-like or sparse, shape (n, d)
        Training features (the same scaled matrix used for training).
    Y : array-like or sparse, shape (n, q)
        Training labels.
    k : int
        Neighbours (default 5, as in the code of Zhou et al. 2024).
    neighbors : ndarray (n, k) or Neighbors, optional
        Precomputed neighbour ids; skips the search.
    convention : {"code", "paper"}
        Exclusion convention of eq. 4 (:func:`normalized_imbalance`).
    irlbl_eps : float
        0: labels without positives are ignored; 1e-6 reproduces the code of Zhou et al. 2024.
    **knn_options
        Passed to :func:`nearest_neighbors` (which warns with
        :class:`~mlbs.statistics.neighbors.LowRecallWarning` when an approximate search's estimated
        recall is below its threshold).

    Returns
    -------
    ImbalanceWeights
    """
    Y = binary_csr(Y)
    minority = minority_labels(Y, eps=irlbl_eps)
    nb = None
    if neighbors is None:
        nb = nearest_neighbors(X, k, **knn_options)
        ids = nb.indices
    else:
        nb = neighbors if isinstance(neighbors, Neighbors) else None
        ids = np.asarray(neighbors.indices if isinstance(neighbors, Neighbors) else neighbors)
    if ids.shape[0] != Y.shape[0]:
        raise ValueError(f"X/neighbors have {ids.shape[0]} rows, Y has {Y.shape[0]}")
    B = local_imbalance(Y, ids, minority)
    S = normalized_imbalance(B, convention)
    w, eps = instance_weights(S)
    return ImbalanceWeights(w, eps, B, S, minority, nb, convention)
