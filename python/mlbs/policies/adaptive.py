"""``Adaptive``: imbalance-weighted, quantized loss selection (Zhou et al. 2024, sections 3.2-3.4)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from mlbs import core
from mlbs.core import WeightedIndex
from mlbs.policies.base import Policy, check_pressure, check_rng_state, check_weights, fingerprint
from mlbs.policies.transforms import quantized_by_max
from mlbs.typing import MatrixLike

#: The maxima Adaptive can quantize against (``max_reference``).
MAX_REFERENCES = ("exact", "geometric")
#: g of ``max_reference="geometric"``: the reference R is a power of g.
REFERENCE_GROWTH = 2.0 ** 0.125


class Adaptive(Policy):
    """Samples in proportion to s^(Q_i/N), Q_i the quantization level of w_i * l_i.

    - w_i = 1 + epsilon_i, the instance imbalance weight (eqs. 1, 2, 4; computed by
      :func:`mlbs.statistics.imbalance.imbalance_weights` from the k nearest neighbours, unless
      given).
    - L_i = w_i * l_i, l_i the per-sample BCE at the latest visit (eq. 5); the table starts at 0.
    - Q_i = ceil(N L_i / L_max) (eqs. 6-7, Delta = L_max / N), omega_i = s^(Q_i / N), P_i
      proportional to omega_i. The weights shape selection only, never the gradient.

    Change of the maximum. Every level depends on L_max, so when L_max changes all N weights
    change. With ``refresh="batch"`` the policy keeps the exact distribution: a batch whose
    losses leave L_max unchanged costs O(m log N) (only the visited weights change); a batch
    that raises L_max, or lowers the loss of the sample holding it, triggers a rebuild of all N
    weights (O(N), counted in ``rebuilds``). The maximum is rarely touched: the sample holding it
    is drawn with probability about m s / (N mean(omega)) per batch, so the expected rebuild cost
    per batch is O(m s), independent of N, plus the rare increases of the maximum (losses fall as
    training proceeds).

    Drifting losses. When losses rise from batch to batch, the samples drawn (those of high loss)
    keep raising L_max, and many batches rebuild (4 in 10 in the drift trace of
    docs/benchmarks.md): O(N) per batch. ``max_reference="geometric"`` bounds that cost by
    quantizing against a reference R instead of L_max,

        R = g^k, k = min{k integer : g^k >= L_max},  Q_i = ceil(N L_i / R) in [0, N],

    g = ``REFERENCE_GROWTH`` = 2^(1/8). L_max is still followed exactly (O(m) per batch; an O(N)
    scan when the sample holding it falls), but the N weights are rebuilt only when R changes,
    i.e. when L_max crosses a power of g: at most log_g(L_end / L_start) + 1 rebuilds while L_max
    grows from L_start to L_end, and on the same observations never more than the exact mode's.
    The cost is a change of the distribution: with L_max / R in (1/g, 1], the largest level is
    N L_max / R instead of N (the top weight s^(L_max/R) instead of s, an effective pressure down
    to s^(1/g)), and each Q_i moves by at most N (1 - L_max/R) + 1: every P_i is within a factor
    M = s^(1 - 1/g + 1/N) of the exact one (M = 1.19 at s = 8) and the total variation distance
    is at most (sqrt(M) - 1) / (sqrt(M) + 1) (0.043 at s = 8); measured values are in
    docs/benchmarks.md. The default ``"exact"`` is the definition of Zhou et al. 2024
    (R = L_max), which the experiments use.

    Parameters
    ----------
    labels : (n, q) 0/1 labels of the training set.
    features : (n, d) array, optional
        Training features (scaled as for training), for the kNN imbalance weights.
    weights : (n,) array, optional
        Precomputed instance weights w (instead of ``features``).
    k : int
        Neighbours of the imbalance weights (default 5).
    pressure : float
        s > 1 (default 8).
    weighted : bool
        False uses w = 1 (the committed training script of Zhou et al. 2024).
    refresh : {"batch", "epoch"}, optional
    max_reference : {"exact", "geometric"}
        What the levels are quantized against: L_max (default, eqs. 6-7), or the smallest power of
        g above it (see "Drifting losses"; it saves work with ``refresh="batch"`` only).
    seed : int
        Seed of the draws.
    knn_options : dict, optional
        Passed to :func:`mlbs.statistics.imbalance.imbalance_weights`.

    Attributes
    ----------
    imbalance_weights : ndarray, shape (n,)
        w.
    knn_recall : float or None
        Recall@k of the kNN search behind w (1.0 for exact search, estimated for an approximate
        one); None when w was given or the weighting is off.
    reference : float
        R, what the levels are quantized against: L_max, or its geometric reference.
    rebuilds : int
        Rebuilds of all N weights so far.
    """

    def __init__(self, labels: MatrixLike, features: MatrixLike | None = None, *, weights: npt.ArrayLike | None = None,
                 k: int = 5, pressure: float = 8.0, weighted: bool = True, refresh: str | None = None,
                 max_reference: str = "exact", seed: int = 0, knn_options: dict[str, Any] | None = None):
        if max_reference not in MAX_REFERENCES:
            raise ValueError(f"max_reference must be one of {MAX_REFERENCES}, got {max_reference!r}")
        super().__init__(labels, refresh=refresh)
        self.max_reference = max_reference
        self.pressure = check_pressure(pressure, self.n)
        self.weighted = bool(weighted)
        self.imbalance_weights = self._instance_weights(features, weights, k, knn_options or {})
        self.table = np.zeros(self.n)  # L_i = w_i l_i
        self.table_max = 0.0           # L_max of the current P
        self.reference = 0.0           # R of the current P: L_max or its geometric reference
        self.argmax = 0
        self.rebuilds = 0
        self.index = WeightedIndex(self.n, seed=seed)
        self.index.assign(np.ones(self.n))

    def _instance_weights(self, features, weights, k, knn_options) -> np.ndarray:
        self.knn_recall = None  # recall@k of the kNN behind the weights (Neighbors.recall); None if not searched
        if not self.weighted:
            return np.ones(self.n)
        if weights is None:
            if features is None:
                raise ValueError("Adaptive needs the training features (for the kNN imbalance weights) "
                                 "or precomputed weights=")
            from mlbs.statistics.imbalance import imbalance_weights

            result = imbalance_weights(features, self.labels, k, **knn_options)
            if len(result.minority) == 0:
                warnings.warn("no minority labels (IRLbl > MeanIR): all imbalance weights are 1, "
                              "so Adaptive reduces to quantized loss (Hard-like) selection",
                              stacklevel=3)
            weights, self.knn_recall = result.w, result.recall
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n,):
            raise ValueError(f"weights must have shape ({self.n},), got {w.shape}")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise ValueError(f"weight of sample {bad[0]} is {w[bad[0]]}: weights must be finite and >= 0")
        return w

    def omega(self, scores: np.ndarray) -> np.ndarray:
        """Sampling weights of the given table entries under the current reference R."""
        return quantized_by_max(scores, self.reference, self.n, self.pressure)

    def _check_losses(self, idx: np.ndarray, loss: np.ndarray) -> None:
        """Refuse losses whose products w_i l_i overflow, before any table changes."""
        r = _first_overflow(self.imbalance_weights, idx, loss)
        if r >= 0:
            raise OverflowError(f"loss {loss[r]} of sample {idx[r]} times its imbalance weight "
                                f"{self.imbalance_weights[idx[r]]} overflows")

    def _observed(self, idx: np.ndarray, loss: np.ndarray) -> None:
        if not (self.selecting and self.refresh == "batch"):
            self.table[idx] = self.imbalance_weights[idx] * loss
            return
        # One compiled pass: table update, test against R, and the visited samples' new weights
        # (the arithmetic of quantized_by_max); None when an entry exceeded R or the sample
        # holding L_max ended below R.
        omega = core.observe_quantized(self.table, self.imbalance_weights, idx, loss, table_max=self.reference,
                                       argmax=self.argmax, pressure=self.pressure)
        if self.max_reference == "exact":  # R = L_max: None means L_max moved
            if omega is None:
                self.rebuild()
            else:
                self._set_weights(idx, omega)
            return
        if self.table[self.argmax] < self.table_max:  # the sample holding L_max fell: O(N) scan
            self._find_maximum()
        else:
            j = int(np.argmax(self.table[idx]))
            if self.table[idx[j]] > self.table_max:
                self.argmax, self.table_max = int(idx[j]), float(self.table[idx[j]])
        if self._reference_of(self.table_max) != self.reference:
            self._requantize()
        else:
            self._set_weights(idx, self.omega(self.table[idx]) if omega is None else omega)

    def rebuild(self) -> None:
        self._find_maximum()
        self._requantize()

    def _find_maximum(self) -> None:
        self.argmax = int(np.argmax(self.table))
        self.table_max = float(self.table[self.argmax])

    def _requantize(self) -> None:
        """R from L_max, and all N weights under it."""
        self.reference = self._reference_of(self.table_max)
        self._assign_weights(self.omega(self.table))
        self.rebuilds += 1

    def _reference_of(self, top: float) -> float:
        return top if self.max_reference == "exact" else geometric_reference(top)

    def _set_weights(self, idx: np.ndarray, omega: np.ndarray) -> None:
        self.index.update(idx, omega)

    def _assign_weights(self, omega: np.ndarray) -> None:
        self.index.assign(omega)

    def draw(self, k: int) -> np.ndarray:
        return self.index.draw_distinct(k)

    def probabilities(self) -> np.ndarray:
        return self.index.probabilities()

    # -- checkpoints -----------------------------------------------------------------------------
    def _settings(self) -> dict:
        return {**super()._settings(), "pressure": self.pressure, "weighted": self.weighted,
                "max_reference": self.max_reference, "imbalance_weights": fingerprint(self.imbalance_weights)}

    def _tables(self) -> dict:
        return {**super()._tables(), "table": self.table.copy(), "index": self.index.weights()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "table_max": self.table_max, "argmax": self.argmax,
                "rng": self.index.rng_state}

    def _check_state(self, state: dict) -> None:
        check_weights(state, "index")
        check_weights(state, "table")
        argmax, table_max = state.get("argmax"), state.get("table_max")
        if not (isinstance(argmax, (int, np.integer)) and 0 <= argmax < self.n):
            raise ValueError(f"state's 'argmax' must be a sample index in [0, {self.n}), got {argmax!r}")
        if not (isinstance(table_max, (float, int, np.floating)) and np.isfinite(table_max) and table_max >= 0):
            raise ValueError(f"state's 'table_max' must be finite and >= 0, got {table_max!r}")
        check_rng_state(state, "rng")

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.table[...] = state["table"]  # in place: the kernels want numpy's own float64 dtype object
        self.table_max = float(state["table_max"])
        self.argmax = int(state["argmax"])
        self.reference = self._reference_of(self.table_max)
        self._assign_weights(np.asarray(state["index"], dtype=np.float64))
        self.index.rng_state = check_rng_state(state, "rng")


def geometric_reference(top: float, growth: float = REFERENCE_GROWTH) -> float:
    """The smallest integer power g^k of g = ``growth`` with g^k >= ``top``; 0 for ``top`` = 0,
    ``top`` itself when that power is not a finite float."""
    if top <= 0.0:
        return 0.0
    k = math.ceil(math.log(top) / math.log(growth))
    try:
        while growth ** k < top:  # the logarithms' rounding, corrected
            k += 1
        while growth ** (k - 1) >= top:
            k -= 1
        return growth ** k
    except OverflowError:
        return top


@njit(cache=True)
def _first_overflow(w, idx, loss):  # pragma: no cover (compiled)
    """Position t of the first infinite product w[idx[t]] * loss[t], -1 when all are finite
    (indices and losses already checked; one pass, no temporary)."""
    for t in range(idx.size):
        if math.isinf(w[idx[t]] * loss[t]):
            return t
    return -1
