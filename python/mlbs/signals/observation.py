"""A batch's observation, checked: sample indices and the model's outputs (or per-sample losses).

Every policy receives what the model produced on a trained batch and reduces it to the signals it
keeps. The usual batch (valid, float32/float64 outputs) is checked and reduced in one compiled
pass (:mod:`mlbs.core`); anything else goes through the numpy checks below, which name the
offending sample. A refused observation changes nothing.
"""

from __future__ import annotations

import numpy as np

from mlbs import core
from mlbs.core import checked_indices as check_indices
from mlbs.signals.bce import OUTPUT_KINDS, as_real_array, per_sample_bce_csr


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
    labels : mlbs.core.LabelsCSR
        The checked 0/1 labels, shape (n, q).
    kind : {"logits", "probabilities"}

    Returns
    -------
    (indices as int64, losses as float64, repeats): ``repeats`` tells whether an index occurs
    twice (None when unknown). Valid input takes one compiled pass (:func:`mlbs.core.observe_bce`);
    otherwise the numpy path below runs, and names the offending sample if there is one.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    n, q = labels.shape
    fast = core.observe_bce(indices, outputs, labels, probabilities=kind == "probabilities")
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
    scanned = core.scan_losses(indices, losses, n)
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


def checked_observation(indices, outputs, n: int, q: int, kind: str):
    """:func:`check_observation` with a compiled fast path for the usual batch.

    A C-contiguous float32/float64 (B, q) array whose entries are all finite (in [0, 1] for
    probabilities) is accepted after one compiled pass; anything else, and every failure, goes
    through :func:`check_observation`, so the errors and their messages are the same.
    """
    if (isinstance(outputs, np.ndarray) and outputs.dtype in (np.float32, np.float64) and outputs.ndim == 2
            and outputs.flags.c_contiguous and kind in OUTPUT_KINDS):
        idx = check_indices(indices, n)
        if outputs.shape == (idx.size, q) and core.outputs_valid(outputs, probabilities=kind == "probabilities"):
            return idx, outputs
    return check_observation(indices, outputs, n, q, kind=kind)
