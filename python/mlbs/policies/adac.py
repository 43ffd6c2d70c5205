"""``AdaC``: Adaptive with a label-correlation chain (Zhou et al. 2024, section 3.5)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlbs.core import WeightedIndex
from mlbs.chain import ChainGraph, draw_chain
from mlbs.policies.adaptive import Adaptive
from mlbs.statistics.labels import cardinality, cooccurrence_matrix, csr_row_entries, irlbl
from mlbs.statistics.structure import related_labels, seed_labels
from mlbs.typing import MatrixLike


class AdaC(Adaptive):
    """Adaptive's distribution P, drawn as label-correlation chains.

    Each batch starts from a seed drawn from P; every next sample is drawn from P restricted to
    the instances having one of the ceil(Card) labels most related (matrix A, appendix of the
    seed paper) to the previous sample's rarest label, excluding samples already in the batch.
    The restricted draws are exact and never scan the N samples (see :mod:`mlbs.chain`):
    a second weighted index over the (label, instance) pairs of Y keeps each label's instances
    contiguous, so a restricted draw costs O(|L_c| log nnz(Y)) expected.

    Parameters are those of :class:`Adaptive`.

    Attributes
    ----------
    fallbacks : int
        Chain steps that fell back to the global P (no seed label, or D_c \\ Sel without mass).
    """

    def __init__(self, labels: MatrixLike, features: MatrixLike | None = None, **options: Any):
        super().__init__(labels, features, **options)
        Y = self.labels
        if Y.nnz == 0:
            raise ValueError("AdaC needs labels with at least one positive entry")
        label_irlbl = irlbl(Y)
        K = max(1, math.ceil(cardinality(Y)))
        related_ptr, related = related_labels(cooccurrence_matrix(Y), K)
        csc = Y.tocsc()
        csc.sort_indices()
        # Pair position of every (instance, label) entry, in CSR order of Y.
        pairs = sp.csc_matrix((np.arange(1, csc.nnz + 1, dtype=np.int64), csc.indices, csc.indptr),
                              shape=Y.shape).tocsr()
        pairs.sort_indices()
        self.graph = ChainGraph.of(seed_label=seed_labels(Y, label_irlbl), related_ptr=related_ptr, related=related,
                                   posting_ptr=csc.indptr, posting_item=csc.indices, label_ptr=pairs.indptr,
                                   label_of=pairs.indices)
        self.pair_of = pairs.data.astype(np.int64) - 1
        self.pairs = WeightedIndex(csc.nnz, seed=0)
        self._assign_weights(np.ones(self.n))
        self.fallbacks = 0

    def _set_weights(self, idx: np.ndarray, omega: np.ndarray) -> None:
        super()._set_weights(idx, omega)
        owner, position = csr_row_entries(self.graph.label_ptr, idx)
        self.pairs.update(self.pair_of[position], omega[owner])

    def _assign_weights(self, omega: np.ndarray) -> None:
        super()._assign_weights(omega)
        self.pairs.assign(omega[self.graph.posting_item])

    def draw(self, k: int) -> np.ndarray:
        batch, fallbacks = draw_chain(self.index, self.pairs, self.graph, k)
        self.fallbacks += fallbacks
        return batch
