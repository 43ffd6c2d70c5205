"""``AdaC``: Adaptive with a label-correlation chain (seed paper 3.5; methods.md 6)."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from mlbs import WeightedIndex
from mlbs._core import _draw_chain
from mlbs.losses import csr_row_entries
from mlbs.policies.adaptive import Adaptive
from mlbs.stats import cardinality, cooccurrence_matrix, irlbl


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


class AdaC(Adaptive):
    """Adaptive's distribution P, drawn as label-correlation chains.

    Each batch starts from a seed drawn from P; every next sample is drawn from P restricted to
    the instances having one of the ceil(Card) labels most related (matrix A, appendix of the
    seed paper) to the previous sample's rarest label, excluding samples already in the batch.
    The restricted draws are exact and never scan the N samples (see ``cpp/mlbs/chain.hpp``):
    a second weighted index over the (label, instance) pairs of Y keeps each label's instances
    contiguous, so a restricted draw costs O(|L_c| log nnz(Y)) expected.

    Parameters are those of :class:`Adaptive`.

    Attributes
    ----------
    fallbacks : int
        Chain steps that fell back to the global P (no seed label, or D_c \\ Sel without mass).
    """

    def __init__(self, labels, features=None, **options):
        super().__init__(labels, features, **options)
        Y = self.labels
        if Y.nnz == 0:
            raise ValueError("AdaC needs labels with at least one positive entry")
        label_irlbl = irlbl(Y)
        K = max(1, math.ceil(cardinality(Y)))
        self.related_ptr, self.related = related_labels(cooccurrence_matrix(Y), K)
        self.seed_label = seed_labels(Y, label_irlbl)
        csc = Y.tocsc()
        csc.sort_indices()
        self.posting_ptr = csc.indptr.astype(np.int64)
        self.posting_item = csc.indices.astype(np.int64)
        # Pair position of every (instance, label) entry, in CSR order of Y.
        pairs = sp.csc_matrix((np.arange(1, csc.nnz + 1, dtype=np.int64), csc.indices, csc.indptr),
                              shape=Y.shape).tocsr()
        pairs.sort_indices()
        self.label_ptr = pairs.indptr.astype(np.int64)
        self.label_of = pairs.indices.astype(np.int64)
        self.pair_of = pairs.data.astype(np.int64) - 1
        self.pairs = WeightedIndex(csc.nnz, seed=0)
        self._assign_weights(np.ones(self.n))
        self.fallbacks = 0

    def _set_weights(self, idx: np.ndarray, omega: np.ndarray) -> None:
        super()._set_weights(idx, omega)
        owner, position = csr_row_entries(self.label_ptr, idx)
        self.pairs.update(self.pair_of[position], omega[owner])

    def _assign_weights(self, omega: np.ndarray) -> None:
        super()._assign_weights(omega)
        self.pairs.assign(omega[self.posting_item])

    def draw(self, k: int) -> np.ndarray:
        batch, fallbacks = _draw_chain(self.index, self.pairs, self.seed_label, self.related_ptr, self.related,
                                       self.posting_ptr, self.posting_item, self.label_ptr, self.label_of, k)
        self.fallbacks += fallbacks
        return batch
