"""The preprocessing of the papers' code, each step optional and recorded.

Order (it matters): feature retention -> label filter -> empty rows -> min-max
scaling. Retention and the label filter use all ``n`` rows in every preset;
they are part of the dataset definition, not of a fold.

Min-max scaling maps each column to ``(x - min_j) / (max_j - min_j)`` with the
statistics fitted on some rows: all rows (``scale_fit="all"``, the papers'
code, which leaks test statistics) or the training part of each fold
(``scale_fit="train"``, the ``mlbs`` default; use :class:`MinMaxScaler` per
fold). A constant column (``max_j = min_j``) maps to 0. Values of rows not
used in the fit may fall outside ``[0, 1]`` and are not clipped.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .arff import MultiLabelData

__all__ = ["top_features_by_sum", "frequent_labels", "nonempty_rows", "MinMaxScaler", "preprocess"]


def top_features_by_sum(X, fraction: float) -> np.ndarray:
    """Indices of the ``floor(fraction * d)`` columns with the largest column sum.

    Ties are broken by the lower column index (stable sort); the returned
    indices are in increasing (original) order. ``fraction >= 1`` keeps all.

    Parameters
    ----------
    X : ndarray or sparse matrix, shape (n, d)
    fraction : float in (0, 1]

    Returns
    -------
    ndarray of int64
    """
    d = X.shape[1]
    if not 0 < fraction:
        raise ValueError(f"fraction must be > 0, got {fraction}")
    if fraction >= 1:
        return np.arange(d)
    m = int(np.floor(fraction * d))
    if m < 1:
        raise ValueError(f"fraction {fraction} keeps no feature of {d}")
    sums = np.asarray(X.sum(axis=0), dtype=np.float64).ravel()
    order = np.argsort(-sums, kind="stable")
    return np.sort(order[:m])


def frequent_labels(Y, max_positives_dropped: int = 20) -> np.ndarray:
    """Indices of the labels with more than ``max_positives_dropped`` positives.

    The papers drop every label with at most 20 positives over all rows.
    """
    counts = np.asarray((Y != 0).sum(axis=0)).ravel()
    return np.flatnonzero(counts > max_positives_dropped)


def nonempty_rows(Y) -> np.ndarray:
    """Indices of the rows with at least one positive label."""
    return np.flatnonzero(np.asarray((Y != 0).sum(axis=1)).ravel() > 0)


@dataclass
class MinMaxScaler:
    """Column-wise min-max scaling to [0, 1], dense or sparse.

    ``x' = (x - min_j) * scale_j`` with ``scale_j = 1 / (max_j - min_j)``, and
    ``scale_j = 0`` for a constant column (which therefore maps to 0).
    For sparse input, implicit zeros take part in ``min_j``/``max_j``; the
    output stays sparse when every ``min_j`` is 0 (non-negative data with
    zeros, e.g. bag-of-words), and is dense otherwise (shifting would fill the
    zeros).
    """

    min_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    def fit(self, X) -> "MinMaxScaler":
        """Fit the column minima and scales on ``X``."""
        if sp.issparse(X):
            X = sp.csc_matrix(X)
            lo = np.asarray(X.min(axis=0).todense()).ravel().astype(np.float64)
            hi = np.asarray(X.max(axis=0).todense()).ravel().astype(np.float64)
        else:
            X = np.asarray(X)
            lo, hi = np.nanmin(X, axis=0).astype(np.float64), np.nanmax(X, axis=0).astype(np.float64)
        rng = hi - lo
        self.min_ = lo
        self.scale_ = np.where(rng > 0, 1.0 / np.where(rng > 0, rng, 1.0), 0.0)
        return self

    def transform(self, X):
        """Apply the fitted scaling; keeps ``float32``."""
        if self.min_ is None:
            raise RuntimeError("MinMaxScaler is not fitted")
        if X.shape[1] != self.min_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} columns, the scaler was fitted on {self.min_.shape[0]}")
        if sp.issparse(X) and not np.any(self.min_):
            out = sp.csr_matrix(X, dtype=np.float32, copy=True)
            out.data *= self.scale_[out.indices].astype(np.float32)
            out.eliminate_zeros()
            return out
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        return ((dense - self.min_) * self.scale_).astype(np.float32)

    def fit_transform(self, X):
        """``fit(X).transform(X)``."""
        return self.fit(X).transform(X)


def preprocess(data: MultiLabelData, *, feature_fraction: float = 1.0, max_positives_dropped: int | None = 20,
               drop_empty_rows: bool = False, scale_fit: str | None = "train") -> MultiLabelData:
    """Apply the papers' preprocessing to a dataset; record every step.

    Parameters
    ----------
    data : MultiLabelData
    feature_fraction : float
        Keep ``floor(p * d)`` features with the largest column sums
        (:func:`top_features_by_sum`); 1 keeps all. Papers: 0.02 for rcv1,
        0.05 (code) or 0.10 (Table 1) for yahoo.
    max_positives_dropped : int or None
        Drop labels with at most this many positives (papers: 20); None keeps
        all labels.
    drop_empty_rows : bool
        Drop rows without a positive label after the label filter (``d2ace``
        preset).
    scale_fit : {"train", "all", None}
        ``"all"`` scales here with statistics of all rows (papers' code);
        ``"train"`` (default) leaves scaling to each fold (fit a
        :class:`MinMaxScaler` on the training rows); None: no scaling.

    Returns
    -------
    MultiLabelData
        A new object; ``info["preprocess"]`` lists the steps with the kept
        feature, label and row indices (relative to the input).
    """
    if scale_fit not in ("train", "all", None):
        raise ValueError("scale_fit must be 'train', 'all' or None")
    X, Y = data.X, data.Y.tocsr()
    record = {"feature_fraction": feature_fraction, "max_positives_dropped": max_positives_dropped,
              "drop_empty_rows": drop_empty_rows, "scale_fit": scale_fit}
    feats = top_features_by_sum(X, feature_fraction)
    labels = frequent_labels(Y, max_positives_dropped) if max_positives_dropped is not None else np.arange(Y.shape[1])
    X = X[:, feats]
    Y = Y[:, labels]
    rows = nonempty_rows(Y) if drop_empty_rows else np.arange(Y.shape[0])
    X, Y = X[rows], Y[rows]
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    if scale_fit == "all":
        X = MinMaxScaler().fit_transform(X)
    record.update(kept_features=feats, kept_labels=labels, kept_rows=rows,
                  n_empty_rows=int(Y.shape[0] - nonempty_rows(Y).size))
    info = dict(data.info)
    info["preprocess"] = record
    return dataclasses.replace(
        data, X=X, Y=sp.csr_matrix(Y), feature_names=[data.feature_names[i] for i in feats],
        label_names=[data.label_names[j] for j in labels], info=info,
        nominal_features={k: v for k, v in data.nominal_features.items()
                          if k in {data.feature_names[i] for i in feats}})
