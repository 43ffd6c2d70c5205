"""The one door to the compiled core (``mlbs._core``, C++17 sources in ``cpp/``).

No other module imports the extension. It holds two kinds of things:

- the sampling structures :class:`WeightedIndex` and :class:`RankIndex`, which check their own
  arguments (a bad index or weight raises and leaves them unchanged);
- the per-batch kernels of the policies, which trust their arguments for speed. Each has a
  wrapper here that checks every index, length, dtype and layout the kernel relies on, so that
  bad input raises ``IndexError``, ``ValueError`` or ``TypeError`` naming the offending value
  instead of reading or writing outside an array. The checks cost O(batch); what depends only on
  the training set (the label matrix) is checked once, when :class:`LabelsCSR` is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from mlbs import _core

__all__ = ["WeightedIndex", "RankIndex", "LabelsCSR", "checked_indices", "observe_bce", "scan_losses", "outputs_valid",
           "window_visit", "observe_quantized"]

WeightedIndex = _core.WeightedIndex
RankIndex = _core.RankIndex

_WINDOW_CODES = (np.float64, np.float32, np.uint16, np.uint8)
_TABLE_DTYPES = (np.float64, np.float32)


@dataclass(frozen=True)
class LabelsCSR:
    """A 0/1 label matrix in canonical CSR form, checked once, with read-only arrays.

    ``indptr`` (n + 1,) starts at 0, never decreases and ends at ``indices.size``; the label ids
    of each row are strictly increasing and in [0, q). The kernels read these arrays without
    checking them, so they are frozen (``writeable=False``) once checked.
    """

    indptr: np.ndarray
    indices: np.ndarray
    n: int
    q: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.n, self.q

    @classmethod
    def of(cls, Y: sp.csr_matrix) -> "LabelsCSR":
        """Check ``Y``'s structure (O(n + nnz)) and freeze its index arrays in place."""
        if not sp.issparse(Y) or Y.format != "csr":
            raise TypeError(f"labels must be a scipy CSR matrix, got {type(Y).__name__}")
        n, q = Y.shape
        indptr, indices = Y.indptr, Y.indices
        if indptr.dtype not in (np.int32, np.int64) or indices.dtype != indptr.dtype:
            raise TypeError(f"label index arrays must both be int32 or int64, got {indptr.dtype} and {indices.dtype}")
        if indptr.shape != (n + 1,) or indptr[0] != 0 or indptr[-1] != indices.size:
            raise ValueError(f"labels' indptr must have {n + 1} entries from 0 to {indices.size}")
        lengths = np.diff(indptr)
        if lengths.size and lengths.min() < 0:
            raise ValueError(f"labels' indptr decreases at row {int(np.flatnonzero(lengths < 0)[0])}")
        if indices.size and (indices.min() < 0 or indices.max() >= q):
            bad = int(np.flatnonzero((indices < 0) | (indices >= q))[0])
            raise ValueError(f"label id {indices[bad]} (entry {bad}) is out of range for {q} labels")
        steps = np.diff(indices.astype(np.int64))
        row_start = np.zeros(indices.size, dtype=bool)
        row_start[indptr[:-1][lengths > 0]] = True
        if steps.size and ((steps <= 0) & ~row_start[1:]).any():
            bad = int(np.flatnonzero((steps <= 0) & ~row_start[1:])[0]) + 1
            raise ValueError(f"label ids of a row must be strictly increasing (entry {bad})")
        for a in (indptr, indices):
            a.flags.writeable = False
        return cls(indptr, indices, int(n), int(q))


@njit(cache=True)
def _first_outside(values, n):  # pragma: no cover (compiled)
    """Position of the first value outside [0, n), -1 when there is none."""
    for t in range(values.size):
        if values[t] < 0 or values[t] >= n:
            return t
    return -1


def checked_indices(indices, n: int) -> np.ndarray:
    """Sample indices as 1-d int64 in [0, n), refusing non-integers and naming the first
    out-of-range one."""
    if (isinstance(indices, np.ndarray) and indices.dtype == np.int64 and indices.ndim == 1
            and indices.flags.c_contiguous):  # the usual case: one compiled pass
        if _first_outside(indices, n) < 0:
            return indices
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(np.flatnonzero((idx < 0) | (idx >= n))[0])
        raise IndexError(f"sample index {idx[bad]} (position {bad}) is out of range for {n} samples")
    return idx


def _float_vector(a, name: str, n: int | None = None, *, writable: bool = False) -> int:
    """Length of ``a``, a C-contiguous float64 vector (writable if asked) of length ``n`` if given."""
    if not (isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype == np.float64 and a.flags.c_contiguous):
        raise TypeError(f"{name} must be a C-contiguous float64 vector, got {type(a).__name__} "
                        f"{getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writable")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {a.shape[0]}")
    return a.shape[0]


def _checked_table(a, name: str, shape: tuple, dtypes) -> np.ndarray:
    """A writable C-contiguous array of the given shape and one of the given dtypes."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if a.dtype not in dtypes:
        raise TypeError(f"{name} must have dtype {' or '.join(str(np.dtype(d)) for d in dtypes)}, got {a.dtype}")
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{name} must be writable and C-contiguous")
    return a


def observe_bce(indices, outputs, labels: LabelsCSR, *, probabilities: bool = False):
    """Compiled per-sample mean BCE of one batch against the checked labels.

    Raises for indices that are not integers in [0, n) (:func:`checked_indices`). Returns
    (indices as int64, losses as float64, whether an index repeats), or None when the outputs are
    not the plain valid case (not a C-contiguous float32/float64 (m, q) array, a non-finite
    output, a probability outside [0, 1]); the caller then checks them in numpy and names the
    problem (:func:`mlbs.signals.observation.observed_bce`).
    """
    if not isinstance(labels, LabelsCSR):
        raise TypeError(f"labels must be a LabelsCSR, got {type(labels).__name__}")
    idx = checked_indices(indices, labels.n)
    if not (isinstance(outputs, np.ndarray) and outputs.shape == (idx.size, labels.q)
            and outputs.dtype in _TABLE_DTYPES and outputs.flags.c_contiguous):
        return None
    return _core._observe_bce(idx, outputs, labels.indptr, labels.indices, labels.q, bool(probabilities))


def scan_losses(indices, losses, n: int):
    """(indices as int64, losses as float64, whether an index repeats) when the losses are
    finite and >= 0, in one compiled pass; None otherwise (the caller names the problem).
    Raises for indices that are not integers in [0, n) (:func:`checked_indices`)."""
    idx = checked_indices(indices, n)
    loss = np.asarray(losses)
    if loss.shape != idx.shape or loss.dtype.kind not in "fiu":
        return None
    return _core._scan_losses(idx, loss, int(n))


def outputs_valid(outputs, *, probabilities: bool = False):
    """Whether every entry of a contiguous float32/float64 array is finite (and in [0, 1] for
    probabilities); None for other arrays."""
    if not isinstance(outputs, np.ndarray):
        return None
    return _core._outputs_valid(outputs, bool(probabilities))


def window_visit(rows, outputs, labels: LabelsCSR, *, tables: dict, logits: bool, alpha: float,
                 entropy_nan: bool = False, short_nan: bool = False) -> np.ndarray:
    """One batch of visits of the prediction window (``cpp/mlbs/kernels/prediction_window.hpp``).

    Parameters
    ----------
    rows : (m,) int array
        Distinct sample ids in [0, n), in the order of ``outputs``.
    outputs : (m, q) float32 or float64 array
        Logits (``logits=True``) or probabilities.
    labels : LabelsCSR
    tables : dict
        ``window`` (n, w, q), ``count`` (n,) int64, ``E`` (n, q), and ``phi``, ``loss`` (n, q)
        or empty (0, 0) arrays when not tracked; updated in place.
    alpha : float
        EMA weight of phi, in [0, 1].

    Returns
    -------
    ndarray of float64, shape (m,): the per-sample mean BCE.
    """
    if not isinstance(labels, LabelsCSR):
        raise TypeError(f"labels must be a LabelsCSR, got {type(labels).__name__}")
    n, q = labels.n, labels.q
    window = tables["window"]
    if not isinstance(window, np.ndarray) or window.ndim != 3 or window.shape[1] < 1:
        raise ValueError("window must be an (n, w, q) array with w >= 1")
    _checked_table(window, "window", (n, window.shape[1], q), _WINDOW_CODES)
    _checked_table(tables["count"], "count", (n,), (np.int64,))
    E = _checked_table(tables["E"], "E", (n, q), _TABLE_DTYPES)
    tracked = {}
    for name in ("phi", "loss"):
        a = tables[name]
        tracked[name] = a.size > 0
        if tracked[name]:
            _checked_table(a, name, (n, q), (E.dtype,))
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    idx = checked_indices(rows, n)
    if not isinstance(outputs, np.ndarray) or outputs.dtype not in _TABLE_DTYPES:
        raise TypeError("outputs must be a float32 or float64 array")
    if outputs.shape != (idx.size, q):
        raise ValueError(f"outputs must have shape ({idx.size}, {q}), got {outputs.shape}")
    out = np.ascontiguousarray(outputs)
    return _core._window_visit(idx, out, bool(logits), labels.indptr, labels.indices, window, tables["count"], E,
                               tables["phi"], tables["loss"], float(alpha), tracked["phi"], tracked["loss"],
                               bool(entropy_nan), bool(short_nan))


def observe_quantized(table: np.ndarray, weights: np.ndarray, indices, losses, *, table_max: float, argmax: int,
                      pressure: float):
    """One batch of Adaptive observations (``cpp/mlbs/kernels/quantized.hpp``).

    Sets ``table[i] = weights[i] * losses`` for the batch and returns the new sampling weights
    s^(Q_i/N) of the visited samples under ``table_max``, or None when the batch moved the maximum
    (a new maximum, or a lower value at ``argmax``): the caller then rebuilds all N weights.

    Parameters
    ----------
    table, weights : (n,) C-contiguous float64 arrays; ``table`` is updated in place.
    indices : (m,) int array in [0, n).
    losses : (m,) C-contiguous float64 array, finite and >= 0 (checked by the caller: a NaN would
        give a NaN weight, which the index refuses).
    table_max : float
        max(table) before the batch, >= 0.
    argmax : int
        The entry holding it, in [0, n).
    pressure : float
        s > 1.
    """
    n = _float_vector(table, "table", writable=True)
    _float_vector(weights, "weights", n)
    idx = checked_indices(indices, n)
    _float_vector(losses, "losses", idx.size)
    if not 0 <= int(argmax) < n:
        raise IndexError(f"argmax {argmax} is out of range for {n}")
    if not (math.isfinite(table_max) and table_max >= 0.0):
        raise ValueError(f"table_max must be finite and >= 0, got {table_max!r}")
    if not (math.isfinite(pressure) and pressure > 1.0):
        raise ValueError(f"selection pressure must be a finite number > 1, got {pressure!r}")
    return _core._observe_quantized(table, weights, idx, losses, float(table_max), int(argmax), float(pressure))
