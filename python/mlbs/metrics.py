"""Multi-label evaluation metrics with explicit conventions (protocol.md section 9).

Notation: ``n`` instances, ``q`` labels, ``Y`` in {0,1}^{n x q} (truth),
``F`` in R^{n x q} (scores), ``P`` in {0,1}^{n x q} (predictions; the protocol
uses ``P = [F > 0.5]``, see :func:`binarize`). For label ``j``:
``n_j+ = sum_i y_ij``, ``n_j- = n - n_j+``; for instance ``i``:
``Y_i = {j : y_ij = 1}``.

Inputs may be dense arrays or scipy sparse matrices (densified: test sets are
small). Every function documents how it treats

* labels without positives or without negatives in the evaluated set, and
* rows without positive labels (kept by the ``zhou2024`` and ``mlbs`` presets).

Functions with several published variants take an explicit ``convention=``:

=================  ==========================================================
metric             conventions
=================  ==========================================================
macro_f1           "cqupt" (= scikit-learn, empty label -> 0), "mulan" (-> 1)
macro_auc          "cqupt", "d2ace_test", "sklearn" (+ invalid=), "mulan"
ranking_loss       "cqupt" (= scikit-learn, ties are errors), "mulan"
one_error          "cqupt" (argmax, ties -> lowest index), "mulan" (ties -> highest)
coverage           "sklearn" (ties pessimistic), "mulan" (strict ranking)
average_precision  "ranking" (label-ranking AP), "samples" ([CD]'s per-row AP)
=================  ==========================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["binarize", "macro_f1", "micro_f1", "AucResult", "macro_auc", "micro_auc", "ranking_loss",
           "hamming_loss", "one_error", "coverage", "average_precision", "subset_accuracy"]


def _dense(A, name: str, dtype=None) -> np.ndarray:
    A = A.toarray() if sp.issparse(A) else np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, q), got shape {A.shape}")
    return A.astype(dtype) if dtype is not None else A


def _pair(Y, F, fname="F"):
    Y = _dense(Y, "Y") != 0
    F = _dense(F, fname, np.float64)
    if Y.shape != F.shape:
        raise ValueError(f"Y has shape {Y.shape}, {fname} has shape {F.shape}")
    if fname == "F" and not np.isfinite(F).all():
        raise ValueError("scores contain NaN or infinite values")
    return Y, F


def binarize(F, threshold: float = 0.5) -> np.ndarray:
    """Predictions ``P = [F > threshold]`` (protocol.md 8: a score of exactly 0.5 is negative)."""
    return _dense(F, "F", np.float64) > threshold


# --------------------------------------------------------------------------- F1
def macro_f1(Y, P, convention: str = "cqupt") -> float:
    """Macro-averaged F1: ``(1/q) sum_j 2TP_j / (2TP_j + FP_j + FN_j)``.

    Parameters
    ----------
    Y, P : (n, q) binary truth and predictions
    convention : {"cqupt", "mulan"}
        A label with ``TP_j + FP_j + FN_j = 0`` (absent and never predicted)
        scores 0 and counts in the mean under ``"cqupt"`` (the published code;
        scikit-learn ``f1_score(average="macro")`` with ``zero_division=0``),
        and 1 under ``"mulan"`` (MULAN ``MacroFMeasure``).
    """
    Y, P = _pair(Y, P, "P")
    P = P != 0
    tp = (Y & P).sum(0).astype(np.float64)
    fp = (~Y & P).sum(0)
    fn = (Y & ~P).sum(0)
    den = 2 * tp + fp + fn
    empty = 1.0 if convention == "mulan" else 0.0
    if convention not in ("cqupt", "mulan"):
        raise ValueError("convention must be 'cqupt' or 'mulan'")
    f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), empty)
    return float(f1.mean())


def micro_f1(Y, P) -> float:
    """Micro-averaged F1: ``2 sum TP / (2 sum TP + sum FP + sum FN)``; 0 when the denominator is 0."""
    Y, P = _pair(Y, P, "P")
    P = P != 0
    tp, fp, fn = (Y & P).sum(), (~Y & P).sum(), (Y & ~P).sum()
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den else 0.0


def hamming_loss(Y, P) -> float:
    """Hamming loss ``(1/(n q)) sum_ij [p_ij != y_ij]`` (no degenerate case)."""
    Y, P = _pair(Y, P, "P")
    return float(np.mean(Y != (P != 0)))


def subset_accuracy(Y, P) -> float:
    """Subset accuracy (exact match): ``(1/n) sum_i [P_i = Y_i]``; an empty row predicted empty is a match."""
    Y, P = _pair(Y, P, "P")
    return float(np.mean(np.all(Y == (P != 0), axis=1)))


# --------------------------------------------------------------------------- AUC
def _auc_ties_half(y: np.ndarray, f: np.ndarray) -> float:
    """ROC area with ties worth 1/2 (Mann-Whitney: mid-ranks)."""
    from scipy.stats import rankdata

    npos = int(y.sum())
    nneg = y.size - npos
    ranks = rankdata(f)  # average ranks
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def _auc_ties_full(y: np.ndarray, f: np.ndarray) -> float:
    """CQUPT AUC: ``(1/(n+ n-)) sum_{pos i} |{neg k : f_k <= f_i}|`` (ties = full credit)."""
    neg = np.sort(f[~y])
    return float(np.searchsorted(neg, f[y], side="right").sum() / (y.sum() * neg.size))


@dataclass(frozen=True)
class AucResult:
    """Macro-AUC with the bookkeeping protocol.md 9.3 asks for.

    Attributes
    ----------
    value : float
    per_label : ndarray
        AUC of each label (NaN where undefined).
    n_valid : int
        Labels with both classes present.
    invalid_labels : ndarray
        Indices of labels with ``n_j+ = 0`` or ``n_j+ = n``.
    convention : str
    """

    value: float
    per_label: np.ndarray
    n_valid: int
    invalid_labels: np.ndarray
    convention: str

    def __float__(self) -> float:
        return self.value


def macro_auc(Y, F, convention: str = "cqupt", invalid: str = "skip", return_details: bool = False):
    """Macro-averaged ROC AUC under one of the published conventions.

    Parameters
    ----------
    Y : (n, q) binary truth
    F : (n, q) scores
    convention : {"cqupt", "d2ace_test", "sklearn", "mulan"}
        * ``"cqupt"`` (validation in all published code, test in [C24]/[CU]):
          per valid label ``AUC_j = (1/(n_j+ n_j-)) sum_{i: y_ij=1}
          |{k : y_kj = 0, F_kj <= F_ij}|`` (a tie is a correctly ordered
          pair); labels with ``n_j+ = 0`` or ``n_j+ = n`` contribute 0 but
          count in the denominator ``q``.
        * ``"d2ace_test"`` ([CD] test report): ties worth 1/2, mean over the
          valid labels only; NaN if none is valid.
        * ``"sklearn"``: ties worth 1/2, over all labels, with the ``invalid``
          policy for single-class labels.
        * ``"mulan"``: ties worth 1/2, plain mean over all labels; a
          single-class label is NaN, and so is the mean.
    invalid : {"raise", "nan", "skip"}
        Only for ``"sklearn"``: raise ``ValueError``, return NaN, or skip the
        invalid labels (then like ``"d2ace_test"``).
    return_details : bool
        Return an :class:`AucResult` (value, per-label AUCs, number of valid
        labels, invalid label indices) instead of a float.
    """
    Y, F = _pair(Y, F)
    n, q = Y.shape
    npos = Y.sum(0)
    valid = (npos > 0) & (npos < n)
    tie_full = convention == "cqupt"
    if convention not in ("cqupt", "d2ace_test", "sklearn", "mulan"):
        raise ValueError("convention must be 'cqupt', 'd2ace_test', 'sklearn' or 'mulan'")
    if invalid not in ("raise", "nan", "skip"):
        raise ValueError("invalid must be 'raise', 'nan' or 'skip'")
    per = np.full(q, np.nan)
    for j in np.flatnonzero(valid):
        per[j] = (_auc_ties_full if tie_full else _auc_ties_half)(Y[:, j], F[:, j])
    bad = np.flatnonzero(~valid)
    if convention == "cqupt":
        value = float(np.nansum(per) / q) if q else float("nan")
    elif convention == "mulan":
        value = float(np.mean(per)) if q else float("nan")
    elif convention == "sklearn" and bad.size and invalid != "skip":
        if invalid == "raise":
            raise ValueError(f"labels {bad.tolist()[:10]} have a single class; Macro-AUC is undefined "
                             "(use invalid='skip' or 'nan')")
        value = float("nan")
    else:
        value = float(np.mean(per[valid])) if valid.any() else float("nan")
    if return_details:
        return AucResult(value, per, int(valid.sum()), bad, convention)
    return value


def micro_auc(Y, F) -> float:
    """Micro-averaged AUC: ROC area (ties 1/2) of the flattened ``(y, F)`` pairs; NaN if one class only."""
    Y, F = _pair(Y, F)
    y, f = Y.ravel(), F.ravel()
    if y.all() or not y.any():
        return float("nan")
    return _auc_ties_half(y, f)


# --------------------------------------------------------------------------- ranking metrics
def ranking_loss(Y, F, convention: str = "cqupt") -> float:
    """Ranking loss: mean over rows of the fraction of mis-ordered (relevant, irrelevant) pairs.

    ``RL_i = |{(j, k) : y_ij = 1, y_ik = 0, k ranked above or tied with j}| /
    (|Y_i| (q - |Y_i|))``; result ``(1/n) sum_i RL_i``. Rows with no or all
    labels contribute 0 **and count in n** (all conventions).

    Parameters
    ----------
    convention : {"cqupt", "mulan"}
        ``"cqupt"`` (published code = scikit-learn ``label_ranking_loss``): a
        tie ``F_ik = F_ij`` is an error. ``"mulan"``: strict ranking, among
        equal scores the higher label index ranks first, so a tie is an error
        iff ``k > j``.
    """
    Y, F = _pair(Y, F)
    if convention not in ("cqupt", "mulan"):
        raise ValueError("convention must be 'cqupt' or 'mulan'")
    n, q = Y.shape
    total = 0.0
    idx = np.arange(q)
    for i in range(n):
        y, f = Y[i], F[i]
        npos = int(y.sum())
        if npos == 0 or npos == q:
            continue
        fp, fn = f[y], f[~y]
        if convention == "cqupt":
            neg_sorted = np.sort(fn)
            bad = (fn.size - np.searchsorted(neg_sorted, fp, side="left")).sum()  # f_k >= f_j
        else:
            jp, jn = idx[y], idx[~y]
            above = (fn[None, :] > fp[:, None]) | ((fn[None, :] == fp[:, None]) & (jn[None, :] > jp[:, None]))
            bad = above.sum()
        total += bad / (npos * (q - npos))
    return total / n if n else float("nan")


def one_error(Y, F, convention: str = "cqupt") -> float:
    """One-error: fraction of rows whose top-ranked label is irrelevant.

    Rows without a positive label are **always errors** (all conventions).

    Parameters
    ----------
    convention : {"cqupt", "mulan"}
        Tie among maximal scores: lowest label index (``"cqupt"``, numpy
        argmax, the published code) or highest (``"mulan"``).
    """
    Y, F = _pair(Y, F)
    if convention == "cqupt":
        top = np.argmax(F, axis=1)
    elif convention == "mulan":
        top = F.shape[1] - 1 - np.argmax(F[:, ::-1], axis=1)
    else:
        raise ValueError("convention must be 'cqupt' or 'mulan'")
    return float(np.mean(~Y[np.arange(Y.shape[0]), top])) if Y.shape[0] else float("nan")


def coverage(Y, F, convention: str = "sklearn") -> float:
    """Coverage: how deep the ranking must go to cover every relevant label.

    Parameters
    ----------
    convention : {"sklearn", "mulan"}
        * ``"sklearn"`` (= ``sklearn.metrics.coverage_error``; also [CD]'s
          value when there are no ties): per row, the number of labels scoring
          >= the lowest-scored relevant label (ties pessimistic).
        * ``"mulan"``: (rank of the deepest relevant label) - 1 in the strict
          ranking where equal scores put the higher label index first.
        Rows without positive labels contribute 0 and count in the mean.
    """
    Y, F = _pair(Y, F)
    n, q = Y.shape
    if convention not in ("sklearn", "mulan"):
        raise ValueError("convention must be 'sklearn' or 'mulan'")
    total = 0.0
    idx = np.arange(q)
    for i in range(n):
        y, f = Y[i], F[i]
        if not y.any():
            continue
        if convention == "sklearn":
            total += np.sum(f >= f[y].min())
        else:
            # strict rank of label j: 1 + |{l : f_l > f_j or (f_l == f_j and l > j)}|
            ranks = [1 + np.sum((f > f[j]) | ((f == f[j]) & (idx > j))) for j in idx[y]]
            total += max(ranks) - 1
    return total / n if n else float("nan")


def average_precision(Y, F, convention: str = "ranking") -> float:
    """Average precision.

    Parameters
    ----------
    convention : {"ranking", "samples"}
        * ``"ranking"``: label-ranking average precision (the multi-label
          "Average Precision" of MULAN and ``sklearn.metrics.
          label_ranking_average_precision_score``):
          ``(1/n) sum_i (1/|Y_i|) sum_{j in Y_i} |{l in Y_i : F_il >= F_ij}| /
          |{l : F_il >= F_ij}|`` (ties pessimistic). Rows with no or all
          labels score 1 (scikit-learn's convention) and count in the mean.
        * ``"samples"``: [CD]'s ``average_precision_score(average="samples")``,
          per-row area under the precision-recall step curve (thresholds at
          the distinct scores): ``sum_t (R_t - R_{t-1}) P_t``. A row without
          positives scores 0 (scikit-learn's value, with a warning there) and
          counts in the mean.
    """
    Y, F = _pair(Y, F)
    n, q = Y.shape
    if convention not in ("ranking", "samples"):
        raise ValueError("convention must be 'ranking' or 'samples'")
    total = 0.0
    for i in range(n):
        y, f = Y[i], F[i]
        npos = int(y.sum())
        if convention == "ranking":
            if npos == 0 or npos == q:
                total += 1.0
                continue
            fp = f[y]
            all_sorted, pos_sorted = np.sort(f), np.sort(fp)
            n_all = q - np.searchsorted(all_sorted, fp, side="left")
            n_pos = npos - np.searchsorted(pos_sorted, fp, side="left")
            total += float(np.mean(n_pos / n_all))
        else:
            if npos == 0:
                continue
            thresholds = np.unique(f)[::-1]
            tp = np.array([np.sum(y & (f >= t)) for t in thresholds], dtype=np.float64)
            pp = np.array([np.sum(f >= t) for t in thresholds], dtype=np.float64)
            recall = tp / npos
            precision = tp / pp
            total += float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    return total / n if n else float("nan")
