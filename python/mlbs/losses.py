"""Per-sample losses of a multi-label model's outputs, and the checks of observations.

The selection policies take what the model produced on a trained batch (logits or probabilities
of every label) and reduce it to the per-sample signal they keep.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mlbs._core import _observe_bce, _scan_losses

OUTPUT_KINDS = ("logits", "probabilities")


def per_sample_bce(outputs: np.ndarray, targets: np.ndarray, *, kind: str = "logits") -> np.ndarray:
    """Mean binary cross-entropy over the labels of each sample.

    l_i = (1/q) sum_j BCE(z_ij, y_ij), with, for logits z (stable form)
    BCE = max(z, 0) - z y + log(1 + exp(-|z|)), and for probabilities p
    BCE = -y log p - (1 - y) log(1 - p), with p clipped to [c, 1 - c] (c = 1e-12 in float64,
    1e-7 in float32: see :func:`probability_clip`).

    Parameters
    ----------
    outputs : ndarray, shape (m, q)
        Logits or probabilities of the m samples.
    targets : ndarray or sparse matrix, shape (m, q)
        Their 0/1 labels.
    kind : {"logits", "probabilities"}

    Returns
    -------
    ndarray of float64, shape (m,)
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    z = np.asarray(outputs, dtype=np.float64)
    y = targets.toarray() if sp.issparse(targets) else np.asarray(targets, dtype=np.float64)
    if z.shape != y.shape:
        raise ValueError(f"outputs have shape {z.shape}, targets {y.shape}")
    if kind == "logits":
        bce = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    else:
        c = probability_clip(z.dtype)
        p = np.clip(z, c, 1.0 - c)
        bce = -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
    return bce.mean(axis=1)


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


def per_sample_bce_csr(outputs: np.ndarray, rows: np.ndarray, labels, *, kind: str = "logits") -> np.ndarray:
    """:func:`per_sample_bce` against rows of a 0/1 CSR label matrix, without densifying it.

    With softplus(z) = log(1 + e^z): BCE(z, y) = softplus(z) - y z, so
    l_i = (1/q) [sum_j softplus(z_ij) - sum_{j in Y_i} z_ij]; for probabilities,
    l_i = (1/q) [-sum_j log(1 - p_ij) - sum_{j in Y_i} (log p_ij - log(1 - p_ij))].
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    z = as_real_array(outputs)
    owner, position = csr_row_entries(labels.indptr, rows)
    cols = labels.indices[position]
    if kind == "logits":
        base, gain = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))), z[owner, cols]
    else:
        c = probability_clip(z.dtype)
        p = np.clip(z, c, 1.0 - c)
        log_not = np.log1p(-p)
        base = -log_not
        gain = np.log(p[owner, cols]) - log_not[owner, cols]
    total = base.sum(axis=1, dtype=np.float64) - np.bincount(owner, weights=gain, minlength=rows.size)
    return total / z.shape[1]


def probability_clip(dtype) -> float:
    """Margin c keeping log(p) and log(1 - p) finite: 1e-12 in float64, 1e-7 in float32."""
    return 1e-7 if np.dtype(dtype) == np.float32 else 1e-12


def as_real_array(outputs) -> np.ndarray:
    """float32 or float64 outputs as they are (a model's float32 logits stay float32, which
    halves the cost of the transcendental functions); anything else as float64."""
    out = np.asarray(outputs)
    return out if out.dtype in (np.float32, np.float64) else out.astype(np.float64)


def check_indices(indices, n: int) -> np.ndarray:
    """Sample indices as int64, refusing non-integers and naming the first out-of-range one."""
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
    if not idx.size:
        return idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.min() < 0 or idx.max() >= n:  # cheap test first, details only on failure
        bad = int(np.flatnonzero((idx < 0) | (idx >= n))[0])
        raise IndexError(f"sample index {idx[bad]} (position {bad}) is out of range for {n} samples")
    return idx


def _first_bad_row(ok_rows: np.ndarray) -> int:
    return int(np.flatnonzero(~ok_rows)[0])


def check_observation(indices, outputs, n: int, q: int, *, kind: str = "logits"):
    """Validate one batch's observation; returns (indices as int64, outputs as float32/64).

    Raises a ValueError/IndexError/TypeError naming the offending sample for: non-integer or
    out-of-range indices, outputs of the wrong shape, NaN or infinite outputs, and probabilities
    outside [0, 1].
    """
    idx = check_indices(indices, n)
    out = as_real_array(outputs)
    if out.shape != (idx.size, q):
        raise ValueError(f"outputs must have shape ({idx.size}, {q}) for {idx.size} samples and {q} labels, "
                         f"got {out.shape}")
    if not np.isfinite(out).all():
        r = _first_bad_row(np.isfinite(out).all(axis=1))
        raise ValueError(f"outputs of sample {idx[r]} (position {r}) are not finite")
    if kind == "probabilities" and out.size and (out.min() < 0.0 or out.max() > 1.0):
        r = _first_bad_row(((out >= 0.0) & (out <= 1.0)).all(axis=1))
        raise ValueError(f"probabilities of sample {idx[r]} (position {r}) are outside [0, 1]")
    return idx, out


def observed_bce(indices, outputs, labels, *, kind: str = "logits"):
    """Check one batch's observation and compute its per-sample BCE against the stored labels.

    The per-sample BCE of :func:`per_sample_bce_csr` (its formulas; entries computed in the
    outputs' precision, sums in float64), with the checks of :func:`check_observation`.

    Parameters
    ----------
    indices : array of int, shape (m,)
        Rows of ``labels`` observed, in the order of ``outputs``.
    outputs : array, shape (m, q)
        Logits or probabilities.
    labels : scipy.sparse.csr_matrix, shape (n, q)
        0/1 labels without explicit zeros.
    kind : {"logits", "probabilities"}

    Returns
    -------
    (indices as int64, losses as float64, repeats): ``repeats`` tells whether an index occurs
    twice (None when unknown). Valid input takes one compiled pass (``cpp/mlbs/bce.hpp``);
    otherwise the numpy path below runs, and names the offending sample if there is one.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    n, q = labels.shape
    try:
        fast = _observe_bce(indices, outputs, labels.indptr, labels.indices, q, kind == "probabilities")
    except (TypeError, ValueError):
        fast = None
    if fast is not None:
        return fast
    idx, out = check_observation(indices, outputs, n, q, kind=kind)
    return idx, per_sample_bce_csr(out, idx, labels, kind=kind), None


def check_losses(indices, losses, n: int):
    """Validate per-sample losses given directly.

    Returns (indices as int64, losses as float64, repeats): ``repeats`` tells whether an index
    occurs twice (None when unknown). Raises naming the offending sample for out-of-range or
    non-integer indices, a wrong length, and NaN, infinite or negative losses. Valid input takes
    one compiled pass; the checks below only run to name a problem.
    """
    try:
        scanned = _scan_losses(indices, losses, n)
    except (TypeError, ValueError):
        scanned = None
    if scanned is not None:
        return scanned
    idx = check_indices(indices, n)
    loss = np.asarray(losses, dtype=np.float64)
    if loss.shape != idx.shape:
        raise ValueError(f"losses must have shape ({idx.size},) for {idx.size} samples, got {loss.shape}")
    if loss.size and not (np.isfinite(loss).all() and loss.min() >= 0.0):
        r = _first_bad_row(np.isfinite(loss) & (loss >= 0.0))
        raise ValueError(f"loss of sample {idx[r]} (position {r}) is {loss[r]}: losses must be finite and >= 0")
    return idx, loss, None


def last_occurrence(indices: np.ndarray, values: np.ndarray):
    """Keep, for a repeated index, only its last value (the "last write wins" rule)."""
    if indices.size < 2:
        return indices, values
    ordered = np.sort(indices)
    if (ordered[1:] != ordered[:-1]).all():  # the usual case: a batch of distinct samples
        return indices, values
    rev_unique, rev_pos = np.unique(indices[::-1], return_index=True)
    keep = np.sort(indices.size - 1 - rev_pos)
    return indices[keep], values[keep]
