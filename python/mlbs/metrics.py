"""Multi-label evaluation metrics: scikit-learn's conventions by default, the papers' on request.

Notation: ``n`` instances, ``q`` labels, ``Y`` in {0,1}^{n x q} (truth), ``F`` in R^{n x q}
(scores), ``P`` in {0,1}^{n x q} (predictions, usually ``P = [F > 0.5]``, see :func:`binarize`).
For label ``j``: ``n_j+ = sum_i y_ij``, ``n_j- = n - n_j+``; for instance ``i``:
``Y_i = {j : y_ij = 1}``.

Inputs may be dense arrays or scipy sparse matrices (densified: test sets are small). ``Y`` and
``P`` must be binary (0/1 or bool) and ``F`` finite; anything else raises ``ValueError`` naming the
first offending entry. Every function states how it treats labels with a single class in the
evaluated set and rows without positive labels.

Where published evaluations differ, a function takes ``convention=``. The default is
scikit-learn's value wherever scikit-learn has the metric (the tests compare each default with
it), with one choice of ours: Macro-AUC leaves a label with a single class out of the mean, with
a warning, where scikit-learn 1.9 returns NaN (``invalid="nan"``) and older releases raise. The
other conventions reproduce the code of the batch-selection papers ("cqupt": Zhou et al. 2024 and
2024b; "d2ace_test": Liu et al. 2026) or MULAN (Tsoumakas et al. 2011):

=================  ================  =====================================================
metric             default           other conventions
=================  ================  =====================================================
macro_f1           "sklearn"         "cqupt" (the same), "mulan" (empty label -> 1)
macro_auc          "sklearn"         "cqupt" (ties full credit, single-class label -> 0),
                                     "d2ace_test", "mulan"
ranking_loss       "sklearn"         "cqupt" (the same), "mulan" (strict ranking)
one_error          "cqupt"           "mulan" (ties -> highest label index); scikit-learn
                                     has no one-error
coverage           "sklearn"         "mulan" (strict ranking)
average_precision  "ranking"         "samples" (both scikit-learn's)
=================  ================  =====================================================

The ranking metrics cost O(q log q) per row (one sort of the row) or less.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from mlbs.typing import MatrixLike

__all__ = ["UndefinedMetricWarning", "binarize", "macro_f1", "micro_f1", "hamming_loss", "subset_accuracy",
           "AucResult", "macro_auc", "micro_auc", "ranking_loss", "one_error", "coverage",
           "average_precision"]

#: Rows per block of the row-sorting metrics: bounds their temporary arrays to about 2^20 entries.
_BLOCK_ENTRIES = 1 << 20


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on part of the input (a label with a single class) and skips it."""


# --------------------------------------------------------------------------- input checks
def _dense(A: MatrixLike, name: str) -> np.ndarray:
    A = A.toarray() if isinstance(A, (sp.spmatrix, sp.sparray)) else np.asarray(A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, q), got shape {A.shape}")
    return A


def _binary(A: MatrixLike, name: str) -> np.ndarray:
    """``A`` as a bool array; ``ValueError`` naming the first entry that is not 0, 1 or bool."""
    A = _dense(A, name)
    if A.dtype == bool:
        return A
    bad = (A != 0) & (A != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        hint = "; threshold scores with mlbs.metrics.binarize first" if name == "P" else ""
        raise ValueError(f"{name} must be binary (0/1 or bool): {name}[{i}, {j}] = {A[i, j].item()!r}{hint}")
    return A != 0


def _truth_and(Y: MatrixLike, A: MatrixLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(Y, A)``: ``A`` binary predictions (``name="P"``) or finite scores (``"F"``)."""
    Y = _binary(Y, "Y")
    if name == "P":
        A = _binary(A, "P")
    else:
        A = _dense(A, name).astype(np.float64)
        finite = np.isfinite(A)
        if not finite.all():
            i, j = np.argwhere(~finite)[0]
            raise ValueError(f"scores must be finite: {name}[{i}, {j}] = {A[i, j].item()!r}")
    if Y.shape != A.shape:
        raise ValueError(f"Y has shape {Y.shape}, {name} has shape {A.shape}")
    return Y, A


def _check_convention(convention: str, allowed: tuple[str, ...]) -> None:
    if convention not in allowed:
        raise ValueError(f"convention must be one of {allowed}, got {convention!r}")


def binarize(F: MatrixLike, threshold: float = 0.5) -> np.ndarray:
    """Predictions ``P = [F > threshold]`` (strict: a score equal to the threshold is negative)."""
    return _dense(F, "F").astype(np.float64) > threshold


# --------------------------------------------------------------------------- predictions
def macro_f1(Y: MatrixLike, P: MatrixLike, convention: str = "sklearn") -> float:
    """Macro-averaged F1: ``(1/q) sum_j 2TP_j / (2TP_j + FP_j + FN_j)``.

    Parameters
    ----------
    Y, P : (n, q) binary truth and predictions
    convention : {"sklearn", "cqupt", "mulan"}
        A label with ``TP_j + FP_j + FN_j = 0`` (absent and never predicted) scores 0 and counts in
        the mean under ``"sklearn"`` (``f1_score(average="macro", zero_division=0)``) and
        ``"cqupt"`` (the same), and 1 under ``"mulan"`` (MULAN's ``MacroFMeasure``).
    """
    _check_convention(convention, ("sklearn", "cqupt", "mulan"))
    Y, P = _truth_and(Y, P, "P")
    tp = (Y & P).sum(0).astype(np.float64)
    den = 2 * tp + (~Y & P).sum(0) + (Y & ~P).sum(0)
    empty = 1.0 if convention == "mulan" else 0.0
    return float(np.where(den > 0, 2 * tp / np.maximum(den, 1), empty).mean())


def micro_f1(Y: MatrixLike, P: MatrixLike) -> float:
    """Micro-averaged F1: ``2 sum TP / (2 sum TP + sum FP + sum FN)``; 0 when the denominator is 0."""
    Y, P = _truth_and(Y, P, "P")
    tp, fp, fn = (Y & P).sum(), (~Y & P).sum(), (Y & ~P).sum()
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den else 0.0


def hamming_loss(Y: MatrixLike, P: MatrixLike) -> float:
    """Hamming loss ``(1/(n q)) sum_ij [p_ij != y_ij]`` (no degenerate case)."""
    Y, P = _truth_and(Y, P, "P")
    return float(np.mean(Y != P))


def subset_accuracy(Y: MatrixLike, P: MatrixLike) -> float:
    """Subset accuracy (exact match): ``(1/n) sum_i [P_i = Y_i]``; an empty row predicted empty is a match."""
    Y, P = _truth_and(Y, P, "P")
    return float(np.mean(np.all(Y == P, axis=1)))


# --------------------------------------------------------------------------- AUC
def _auc_ties_half(y: np.ndarray, f: np.ndarray) -> float:
    """ROC area with ties worth 1/2 (Mann-Whitney U from mid-ranks)."""
    npos = int(y.sum())
    nneg = y.size - npos
    return float((rankdata(f)[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def _auc_ties_full(y: np.ndarray, f: np.ndarray) -> float:
    """``(1/(n+ n-)) sum_{pos i} |{neg k : f_k <= f_i}|``: a tie counts as a correctly ordered pair."""
    neg = np.sort(f[~y])
    return float(np.searchsorted(neg, f[y], side="right").sum() / (y.sum() * neg.size))


@dataclass(frozen=True)
class AucResult:
    """Macro-AUC with its bookkeeping.

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


@overload
def macro_auc(Y: MatrixLike, F: MatrixLike, convention: str = ..., invalid: str = ...,
              return_details: Literal[False] = ...) -> float: ...
@overload
def macro_auc(Y: MatrixLike, F: MatrixLike, convention: str = ..., invalid: str = ..., *,
              return_details: Literal[True]) -> AucResult: ...
@overload
def macro_auc(Y: MatrixLike, F: MatrixLike, convention: str = ..., invalid: str = ...,
              return_details: bool = ...) -> float | AucResult: ...
def macro_auc(Y: MatrixLike, F: MatrixLike, convention: str = "sklearn", invalid: str = "nan",
              return_details: bool = False) -> float | AucResult:
    """Macro-averaged ROC AUC.

    Parameters
    ----------
    Y : (n, q) binary truth
    F : (n, q) scores
    convention : {"sklearn", "cqupt", "d2ace_test", "mulan"}
        * ``"sklearn"``: per label the ROC area with ties worth 1/2 (constant scores give 0.5, as
          ``roc_auc_score``), averaged over the labels; labels with a single class are treated
          as ``invalid`` says.
        * ``"cqupt"`` (the validation score of all the papers' code, and the test score of Zhou
          et al. 2024 and 2024b): per label with both classes ``AUC_j = (1/(n_j+ n_j-))
          sum_{i: y_ij=1} |{k : y_kj = 0, F_kj <= F_ij}|`` (a tie is a correctly ordered pair, so
          constant scores give 1); a label with ``n_j+ = 0`` or ``n_j+ = n`` contributes 0 but
          counts in the denominator ``q``.
        * ``"d2ace_test"`` (the test report of Liu et al. 2026's code): ties worth 1/2, mean over
          the labels with both classes only; NaN if there is none. Equal to ``"sklearn"`` with
          ``invalid="skip"``.
        * ``"mulan"``: ties worth 1/2, plain mean over all labels; a single-class label is NaN,
          and so is the mean.
    invalid : {"nan", "warn", "skip", "raise"}
        Only for ``"sklearn"``: a label with a single class makes the result NaN with an
        :class:`UndefinedMetricWarning` (``"nan"``, the default: what ``roc_auc_score`` of
        scikit-learn 1.9 returns), is left out of the mean with that warning (``"warn"``) or
        silently (``"skip"``), or raises ``ValueError`` (``"raise"``, the behaviour of older
        scikit-learn releases). With no valid label at all the result is NaN.
    return_details : bool
        Return an :class:`AucResult` (value, per-label AUCs, number of valid labels, invalid
        label indices) instead of a float.
    """
    _check_convention(convention, ("sklearn", "cqupt", "d2ace_test", "mulan"))
    if invalid not in ("warn", "skip", "nan", "raise"):
        raise ValueError(f"invalid must be 'warn', 'skip', 'nan' or 'raise', got {invalid!r}")
    Y, F = _truth_and(Y, F, "F")
    n, q = Y.shape
    npos = Y.sum(0)
    valid = (npos > 0) & (npos < n)
    bad = np.flatnonzero(~valid)
    auc = _auc_ties_full if convention == "cqupt" else _auc_ties_half
    per = np.full(q, np.nan)
    for j in np.flatnonzero(valid):
        per[j] = auc(Y[:, j], F[:, j])
    if convention == "cqupt":
        value = float(np.nansum(per) / q) if q else float("nan")
    elif convention == "mulan":
        value = float(np.mean(per)) if q else float("nan")
    elif convention == "sklearn" and bad.size and invalid == "raise":
        raise ValueError(f"labels {bad.tolist()[:10]} have a single class in Y; Macro-AUC is undefined "
                         "on them (invalid='warn' or 'skip' leaves them out)")
    elif convention == "sklearn" and bad.size and invalid == "nan":
        warnings.warn(f"{bad.size} of {q} labels have a single class in Y, so Macro-AUC is undefined "
                      f"(NaN): {bad.tolist()[:10]}; invalid='warn' or 'skip' leaves them out",
                      UndefinedMetricWarning, stacklevel=2)
        value = float("nan")
    else:
        if convention == "sklearn" and bad.size and invalid == "warn":
            warnings.warn(f"{bad.size} of {q} labels have a single class in Y and are left out of "
                          f"Macro-AUC: {bad.tolist()[:10]}", UndefinedMetricWarning, stacklevel=2)
        value = float(np.mean(per[valid])) if valid.any() else float("nan")
    if return_details:
        return AucResult(value, per, int(valid.sum()), bad, convention)
    return value


def micro_auc(Y: MatrixLike, F: MatrixLike) -> float:
    """Micro-averaged AUC: ROC area (ties 1/2) of the flattened ``(y, F)`` pairs.

    NaN with an :class:`UndefinedMetricWarning` when ``Y`` holds a single class (scikit-learn's
    value).
    """
    Y, F = _truth_and(Y, F, "F")
    y, f = Y.ravel(), F.ravel()
    if y.all() or not y.any():
        warnings.warn("Y holds a single class; micro-AUC is undefined", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    return _auc_ties_half(y, f)


# --------------------------------------------------------------------------- ranking metrics
def _row_blocks(Y: np.ndarray, F: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(Y, F)`` in blocks of rows of about ``_BLOCK_ENTRIES`` entries."""
    rows = max(1, _BLOCK_ENTRIES // max(Y.shape[1], 1))
    for lo in range(0, Y.shape[0], rows):
        yield Y[lo:lo + rows], F[lo:lo + rows]


def _counts_at_or_above(Y: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by descending score, with the counts of the ties-pessimistic metrics.

    Returns ``(Ys, n_ge, pos_ge)``, each (m, q), in the order of each row sorted by descending
    ``F``: ``Ys`` the labels, ``n_ge[i, r] = |{l : F_il >= s}|`` and ``pos_ge[i, r] =
    |{l in Y_i : F_il >= s}|`` for the score ``s`` at sorted position ``r``. Equal scores form
    one block of the sorted row, and both counts are taken at its end: O(q log q) per row.
    """
    m, q = F.shape
    order = np.argsort(-F, axis=1)
    Fs = np.take_along_axis(F, order, axis=1)
    Ys = np.take_along_axis(Y, order, axis=1)
    position = np.broadcast_to(np.arange(q), (m, q))
    block_end = np.ones((m, q), dtype=bool)
    block_end[:, :-1] = Fs[:, 1:] != Fs[:, :-1]
    # last position of each entry's block of equal scores: the next block end at or after it
    last = np.minimum.accumulate(np.where(block_end, position, q)[:, ::-1], axis=1)[:, ::-1]
    pos_ge = np.take_along_axis(np.cumsum(Ys, axis=1), last, axis=1)
    return Ys, last + 1, pos_ge


def _strict_ranking(Y: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Labels of each row in MULAN's strict ranking: descending score, equal scores by descending index."""
    m, q = F.shape
    order = np.lexsort((np.broadcast_to(-np.arange(q), (m, q)), -F), axis=1)
    return np.take_along_axis(Y, order, axis=1)


def ranking_loss(Y: MatrixLike, F: MatrixLike, convention: str = "sklearn") -> float:
    """Ranking loss: mean over rows of the fraction of mis-ordered (relevant, irrelevant) pairs.

    ``RL_i = |{(j, k) : y_ij = 1, y_ik = 0, k ranked above or tied with j}| /
    (|Y_i| (q - |Y_i|))``; result ``(1/n) sum_i RL_i``. Rows with no or all labels contribute 0
    and count in ``n`` (all conventions).

    Parameters
    ----------
    convention : {"sklearn", "cqupt", "mulan"}
        ``"sklearn"`` (``label_ranking_loss``) and ``"cqupt"`` (the same): a tie
        ``F_ik = F_ij`` is an error. ``"mulan"``: strict ranking, among equal scores the higher
        label index ranks first, so a tie is an error iff ``k > j``.
    """
    _check_convention(convention, ("sklearn", "cqupt", "mulan"))
    Y, F = _truth_and(Y, F, "F")
    n, q = Y.shape
    total = 0.0
    for Yb, Fb in _row_blocks(Y, F):
        npos = Yb.sum(1)
        if convention == "mulan":
            Ys = _strict_ranking(Yb, Fb)
            # irrelevant labels ranked above each relevant one: its position minus the relevant above it
            neg_above = np.arange(q) - (np.cumsum(Ys, axis=1) - Ys)
        else:
            Ys, n_ge, pos_ge = _counts_at_or_above(Yb, Fb)
            neg_above = n_ge - pos_ge  # irrelevant labels scoring >= each relevant one
        bad = np.where(Ys, neg_above, 0).sum(1)
        pairs = npos * (q - npos)
        total += float(np.sum(bad[pairs > 0] / pairs[pairs > 0]))
    return total / n if n else float("nan")


def one_error(Y: MatrixLike, F: MatrixLike, convention: str = "cqupt") -> float:
    """One-error: fraction of rows whose top-ranked label is irrelevant.

    Rows without a positive label are always errors (all conventions). scikit-learn has no
    one-error; the default is the papers' code.

    Parameters
    ----------
    convention : {"cqupt", "mulan"}
        Tie among maximal scores: lowest label index (``"cqupt"``, numpy ``argmax``, the papers'
        code) or highest (``"mulan"``).
    """
    _check_convention(convention, ("cqupt", "mulan"))
    Y, F = _truth_and(Y, F, "F")
    if convention == "cqupt":
        top = np.argmax(F, axis=1)
    else:
        top = F.shape[1] - 1 - np.argmax(F[:, ::-1], axis=1)
    return float(np.mean(~Y[np.arange(Y.shape[0]), top])) if Y.shape[0] else float("nan")


def coverage(Y: MatrixLike, F: MatrixLike, convention: str = "sklearn") -> float:
    """Coverage: how deep the ranking must go to cover every relevant label.

    Rows without positive labels contribute 0 and count in the mean (all conventions).

    Parameters
    ----------
    convention : {"sklearn", "mulan"}
        * ``"sklearn"`` (``coverage_error``): per row, the number of labels scoring >= the
          lowest-scored relevant label (ties pessimistic).
        * ``"mulan"``: (rank of the deepest relevant label) - 1 in the strict ranking where equal
          scores put the higher label index first.
    """
    _check_convention(convention, ("sklearn", "mulan"))
    Y, F = _truth_and(Y, F, "F")
    n, q = Y.shape
    total = 0.0
    for Yb, Fb in _row_blocks(Y, F):
        if convention == "sklearn":
            lowest_relevant = np.where(Yb, Fb, np.inf).min(1, keepdims=True)
            total += float((Fb >= lowest_relevant).sum())   # a row without relevant labels adds 0
        else:
            Ys = _strict_ranking(Yb, Fb)
            deepest = q - 1 - np.argmax(Ys[:, ::-1], axis=1)  # 0-based position of the last relevant label
            total += float(np.where(Ys.any(1), deepest, 0).sum())
    return total / n if n else float("nan")


def average_precision(Y: MatrixLike, F: MatrixLike, convention: str = "ranking") -> float:
    """Average precision per row, averaged over the rows.

    ``AP_i = (1/|Y_i|) sum_{j in Y_i} |{l in Y_i : F_il >= F_ij}| / |{l : F_il >= F_ij}|``: the
    precision at each relevant label's score, ties pessimistic. This is at once the label-ranking
    average precision (MULAN's "Average Precision", scikit-learn's
    ``label_ranking_average_precision_score``) and the area under the row's precision-recall
    step curve ``sum_t (R_t - R_{t-1}) P_t`` over its distinct scores (scikit-learn's
    ``average_precision_score(average="samples")``): a relevant label's score is a threshold at
    which recall rises by ``1/|Y_i|`` per relevant label at that score. The two conventions
    differ on rows without a positive label only. Cost O(q log q) per row.

    Parameters
    ----------
    convention : {"ranking", "samples"}
        A row without positive labels scores 1 under ``"ranking"`` (scikit-learn's label-ranking
        value) and 0 under ``"samples"`` (``average_precision_score``'s, with a warning there; the
        test report of Liu et al. 2026's code); it counts in the mean in both. A row with all
        labels positive scores 1.
    """
    _check_convention(convention, ("ranking", "samples"))
    Y, F = _truth_and(Y, F, "F")
    n = Y.shape[0]
    empty_row = 1.0 if convention == "ranking" else 0.0
    total = 0.0
    for Yb, Fb in _row_blocks(Y, F):
        Ys, n_ge, pos_ge = _counts_at_or_above(Yb, Fb)
        npos = Yb.sum(1)
        precision_sum = np.where(Ys, pos_ge / n_ge, 0.0).sum(1)
        total += float(np.where(npos > 0, precision_sum / np.maximum(npos, 1), empty_row).sum())
    return total / n if n else float("nan")
