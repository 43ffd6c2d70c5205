"""Per-sample binary cross-entropy of a multi-label model's outputs (the loss maths).

The checks of an observation and its compiled fast path are in :mod:`mlbs.signals.observation`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mlbs.statistics.labels import csr_row_entries

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
