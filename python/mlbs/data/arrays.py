"""Multi-label data from in-memory arrays: checks shared by every loader.

:func:`from_arrays` turns a feature matrix ``X`` and a label matrix ``Y``
(dense or sparse) into a :class:`~mlbs.data.arff.MultiLabelData` after checking
what the experiments rely on:

* ``X`` is two-dimensional and numeric, ``Y`` two-dimensional with the same
  number of rows;
* every label is 0 or 1 (booleans accepted);
* every feature is finite and within the float32 range; NaN is accepted only
  with ``allow_missing=True`` (infinities never);
* the name lists, when given, have one distinct name per column.

Features are stored as float32 (dense ``ndarray`` or ``csr_matrix``), labels
as a ``uint8`` CSR matrix, as the ARFF reader does.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .arff import MultiLabelData

__all__ = ["from_arrays", "check_arrays"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _values(M):
    """The stored values of a dense or sparse matrix (zeros of a sparse one are implicit)."""
    return M.data if sp.issparse(M) else np.asarray(M)


def _first_position(M, bad_mask_of_values) -> tuple[int, int]:
    """(row, column) of the first stored value flagged by ``bad_mask_of_values``."""
    if sp.issparse(M):
        C = sp.coo_matrix(M)
        k = int(np.flatnonzero(bad_mask_of_values(C.data))[0])
        return int(C.row[k]), int(C.col[k])
    r, c = np.argwhere(bad_mask_of_values(np.asarray(M)))[0]
    return int(r), int(c)


def check_arrays(X, Y, *, allow_missing: bool = False) -> None:
    """Raise ``ValueError`` (naming the first offending row and column) unless ``X``, ``Y`` are valid.

    Parameters
    ----------
    X : array-like or sparse matrix, shape (n, d)
    Y : array-like or sparse matrix, shape (n, q)
    allow_missing : bool
        Accept NaN features.
    """
    for name, M in (("X", X), ("Y", Y)):
        if M.ndim != 2:
            raise ValueError(f"{name} must be two-dimensional, got shape {M.shape}")
        kind = M.dtype.kind
        if kind not in "biuf":
            raise ValueError(f"{name} must be numeric or boolean, got dtype {M.dtype}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if X.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"empty data: X has shape {X.shape}, Y has shape {Y.shape}")
    y = _values(Y)
    if y.dtype.kind != "b" and not np.isin(y, (0, 1)).all():
        r, c = _first_position(Y, lambda v: ~np.isin(v, (0, 1)))
        raise ValueError(f"label Y[{r}, {c}] = {Y[r, c].item():g}; labels must be 0 or 1")
    x = _values(X)
    if x.dtype.kind == "f":
        if not allow_missing and np.isnan(x).any():
            r, c = _first_position(X, np.isnan)
            raise ValueError(f"feature X[{r}, {c}] is missing (NaN); pass allow_missing=True to keep it")
        with np.errstate(invalid="ignore"):
            too_big = np.abs(x) > _FLOAT32_MAX
        if too_big.any():
            r, c = _first_position(X, lambda v: np.abs(v) > _FLOAT32_MAX)
            raise ValueError(f"feature X[{r}, {c}] = {X[r, c].item():g} is infinite or beyond the float32 range")
    elif x.size and np.abs(x.astype(np.float64)).max() > _FLOAT32_MAX:
        raise ValueError("an integer feature is beyond the float32 range")


def _names(names, count: int, what: str, default_prefix: str) -> list[str]:
    if names is None:
        return [f"{default_prefix}{j}" for j in range(count)]
    names = [str(v) for v in names]
    if len(names) != count:
        raise ValueError(f"{len(names)} {what} names for {count} columns")
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} name {name!r} is given twice")
        seen.add(name)
    return names


def from_arrays(X, Y, *, feature_names: Sequence[str] | None = None, label_names: Sequence[str] | None = None,
                source: str = "arrays", allow_missing: bool = False) -> MultiLabelData:
    """Check ``X`` and ``Y`` and wrap them as a :class:`MultiLabelData`.

    Parameters
    ----------
    X : array-like or sparse matrix, shape (n, d)
        Features; a sparse matrix stays sparse (CSR).
    Y : array-like or sparse matrix, shape (n, q)
        Binary labels (0/1 or bool).
    feature_names, label_names : sequence of str, optional
        Column names (default ``x0, x1, ...`` and ``y0, y1, ...``).
    source : str
        Where the arrays came from (recorded in ``MultiLabelData.source``).
    allow_missing : bool
        Accept NaN features.

    Returns
    -------
    MultiLabelData

    Raises
    ------
    ValueError
        Naming the first offending value (see the module docstring).
    """
    X = X if sp.issparse(X) else np.asarray(X)
    Y = Y if sp.issparse(Y) else np.asarray(Y)
    check_arrays(X, Y, allow_missing=allow_missing)
    Xs = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
    if sp.issparse(Xs):
        Xs.sort_indices()
    Ys = sp.csr_matrix(Y, dtype=np.uint8)
    Ys.eliminate_zeros()
    Ys.sort_indices()
    return MultiLabelData(X=Xs, Y=Ys, feature_names=_names(feature_names, Xs.shape[1], "feature", "x"),
                          label_names=_names(label_names, Ys.shape[1], "label", "y"), source=str(source))
