"""The interface every batch-selection policy implements.

A policy is built from the training labels (and features where it needs them). It receives the
observations of every trained batch (sample indices and the model's outputs, or per-sample
losses) and maintains the sampling distribution P over the n training samples, which it draws
from. Data flows one way: labels/features -> statistics -> policy tables -> weighted index ->
batch -> model -> observation -> policy tables.

Refresh modes (methods.md 2.2):

- ``"batch"``: P changes after every observed batch, as the seed paper's text describes; the
  O(log n) index makes that affordable at any n.
- ``"epoch"``: observations only update the tables; P is rebuilt once per epoch (``end_epoch``),
  as the authors' code does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from mlbs.losses import check_losses, last_occurrence, observed_bce

REFRESH_MODES = ("batch", "epoch")


def binary_label_matrix(labels) -> sp.csr_matrix:
    """Labels as a CSR matrix of 0/1 (int8), rejecting any other value with its position."""
    Y = sp.csr_matrix(labels)
    if Y.ndim != 2 or Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"labels must be a non-empty (n, q) matrix, got shape {Y.shape}")
    Y.sum_duplicates()
    bad = np.flatnonzero((Y.data != 0) & (Y.data != 1))
    if bad.size:
        row = int(np.searchsorted(Y.indptr, bad[0], side="right") - 1)
        raise ValueError(f"labels must be 0 or 1: sample {row}, label {Y.indices[bad[0]]} has value "
                         f"{Y.data[bad[0]]}")
    Y.eliminate_zeros()
    return sp.csr_matrix((np.ones(Y.nnz, dtype=np.int8), Y.indices, Y.indptr), shape=Y.shape)


def check_pressure(pressure: float) -> float:
    """Selection pressure s > 1 (the ratio of the largest to the smallest weight)."""
    s = float(pressure)
    if not np.isfinite(s) or s <= 1.0:
        raise ValueError(f"selection pressure must be a finite number > 1, got {pressure!r}")
    return s


class Policy(ABC):
    """Base class: validated observations, the per-sample loss table, refresh bookkeeping.

    Parameters
    ----------
    labels : array-like or sparse matrix, shape (n, q)
        Training labels, 0/1.
    refresh : {"batch", "epoch"}
        When P follows the observations (see module docstring).
    seed : int
        Seed of the policy's generator (all its draws).

    Attributes
    ----------
    loss : ndarray, shape (n,)
        Per-sample BCE at the latest visit (0 before any visit).
    """

    #: True for policies whose epochs are plain permutations (Random).
    uniform = False

    def __init__(self, labels, *, refresh: str = "batch", seed: int = 0):
        if refresh not in REFRESH_MODES:
            raise ValueError(f"refresh must be one of {REFRESH_MODES}, got {refresh!r}")
        self.labels = binary_label_matrix(labels)
        self.n, self.q = self.labels.shape
        self.refresh = refresh
        self.seed = int(seed)
        self.loss = np.zeros(self.n)
        self.selecting = False  # False during warm-up: observations only fill the tables

    # -- observations --------------------------------------------------------------------------
    def observe(self, indices, outputs=None, *, kind: str = "logits", losses=None) -> None:
        """Record the batch just trained.

        Parameters
        ----------
        indices : array of int, shape (m,)
            The samples of the batch, in the order of ``outputs``.
        outputs : array, shape (m, q), optional
            The model's logits (``kind="logits"``) or probabilities for these samples; the
            per-sample BCE is computed against the stored labels.
        losses : array, shape (m,), optional
            Per-sample losses computed by the caller, instead of ``outputs``.

        Nothing changes when the input is invalid (the error names the offending sample).
        """
        if (outputs is None) == (losses is None):
            raise ValueError("give exactly one of outputs= and losses=")
        if losses is None:
            idx, loss, repeats = observed_bce(indices, outputs, self.labels, kind=kind)
        else:
            idx, loss, repeats = check_losses(indices, losses, self.n)
        if repeats is not False:
            idx, loss = last_occurrence(idx, loss)
        self.loss[idx] = loss
        self._observed(idx, loss)

    def _observed(self, idx: np.ndarray, loss: np.ndarray) -> None:
        """Hook: update the policy's tables (and P when refresh="batch" while selecting)."""

    # -- the distribution ------------------------------------------------------------------------
    def start_selection(self) -> None:
        """End of warm-up: build P from the tables filled so far."""
        self.selecting = True
        self.rebuild()

    def end_epoch(self) -> None:
        """Called once after the last batch of every epoch."""
        if self.selecting and self.refresh == "epoch":
            self.rebuild()

    @abstractmethod
    def rebuild(self) -> None:
        """Recompute P for all samples from the current tables."""

    @abstractmethod
    def draw(self, k: int) -> np.ndarray:
        """k distinct samples, drawn one after another from P (without replacement)."""

    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """P over the n samples (sums to 1)."""

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"loss": self.loss.copy(), "selecting": self.selecting}

    def load_state_dict(self, state: dict) -> None:
        loss = np.asarray(state["loss"], dtype=np.float64)
        if loss.shape != (self.n,):
            raise ValueError(f"state holds {loss.shape[0]} samples, this policy {self.n}")
        self.loss = loss.copy()
        self.selecting = bool(state["selecting"])
