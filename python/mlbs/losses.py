"""Per-sample losses of a multi-label model's outputs, and the checks of observations.

The selection policies take what the model produced on a trained batch (logits or probabilities
of every label) and reduce it to the per-sample signal they keep.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

OUTPUT_KINDS = ("logits", "probabilities")


def per_sample_bce(outputs: np.ndarray, targets: np.ndarray, *, kind: str = "logits") -> np.ndarray:
    """Mean binary cross-entropy over the labels of each sample.

    l_i = (1/q) sum_j BCE(z_ij, y_ij), with, for logits z (stable form)
    BCE = max(z, 0) - z y + log(1 + exp(-|z|)), and for probabilities p
    BCE = -y log p - (1 - y) log(1 - p), with p clipped to [1e-12, 1 - 1e-12].

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
        p = np.clip(z, 1e-12, 1.0 - 1e-12)
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
    z = np.asarray(outputs, dtype=np.float64)
    owner, position = csr_row_entries(labels.indptr, rows)
    cols = labels.indices[position]
    if kind == "logits":
        base, gain = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))), z[owner, cols]
    else:
        p = np.clip(z, 1e-12, 1.0 - 1e-12)
        log_not = np.log1p(-p)
        base = -log_not
        gain = np.log(p[owner, cols]) - log_not[owner, cols]
    return (base.sum(axis=1) - np.bincount(owner, weights=gain, minlength=rows.size)) / z.shape[1]


def check_observation(indices, outputs, n: int, q: int, *, kind: str = "logits"):
    """Validate one batch's observation; returns (indices as int64, outputs as float64).

    Raises a ValueError/IndexError/TypeError naming the offending sample for: non-integer or
    out-of-range indices, outputs of the wrong shape, NaN or infinite outputs, and probabilities
    outside [0, 1].
    """
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    bad = np.flatnonzero((idx < 0) | (idx >= n))
    if bad.size:
        raise IndexError(f"sample index {idx[bad[0]]} (position {bad[0]}) is out of range for {n} samples")
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim == 1 and q == 1:
        out = out[:, None]
    if out.shape != (idx.size, q):
        raise ValueError(f"outputs must have shape ({idx.size}, {q}) for {idx.size} samples and {q} labels, "
                         f"got {out.shape}")
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        r = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"outputs of sample {idx[r]} (position {r}) are not finite")
    if kind == "probabilities":
        inside = ((out >= 0.0) & (out <= 1.0)).all(axis=1)
        if not inside.all():
            r = int(np.flatnonzero(~inside)[0])
            raise ValueError(f"probabilities of sample {idx[r]} (position {r}) are outside [0, 1]")
    return idx, out


def check_losses(indices, losses, n: int):
    """Validate per-sample losses given directly; returns (indices, losses) as int64, float64."""
    idx, out = check_observation(indices, np.asarray(losses, dtype=np.float64)[:, None]
                                 if np.ndim(losses) == 1 else losses, n, 1)
    loss = out[:, 0]
    neg = np.flatnonzero(loss < 0)
    if neg.size:
        raise ValueError(f"loss of sample {idx[neg[0]]} (position {neg[0]}) is negative")
    return idx, loss


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
