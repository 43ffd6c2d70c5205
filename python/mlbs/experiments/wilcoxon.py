"""Wilcoxon signed-rank test across datasets, per metric (Zhou et al. 2024, Table 3).

For one model and one metric, the pairs are the 5-fold means of a baseline (Random) and a method
on each dataset. The test is ``scipy.stats.wilcoxon`` (two-sided, ``zero_method="wilcox"``: zero
differences dropped); the decision is "win" when p < alpha and the method is better (the sign of
the sum of signed ranks, oriented by the metric's direction), "loss" when p < alpha and the
baseline is better, "tie" otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .evaluate import LOWER_IS_BETTER

__all__ = ["WilcoxonResult", "signed_rank_test"]


@dataclass(frozen=True)
class WilcoxonResult:
    """Outcome of one test.

    Attributes
    ----------
    n_pairs, n_used : int
        Datasets compared, and those with a non-zero difference.
    r_plus, r_minus : float
        Sums of the ranks of the differences in favour of the method / of the baseline.
    statistic : float
        ``min(r_plus, r_minus)`` (scipy's two-sided statistic).
    p : float
        Two-sided p-value (NaN when no difference is non-zero).
    method : str
        scipy's computation ("exact" or "asymptotic"), or "none".
    ties : bool
        Some absolute differences are equal (the "exact" null distribution is then only
        approximate, see scipy's notes).
    decision : {"win", "tie", "loss"}
    """

    n_pairs: int
    n_used: int
    r_plus: float
    r_minus: float
    statistic: float
    p: float
    method: str
    decision: str
    ties: bool = False


def signed_rank_test(method_values, baseline_values, metric: str, alpha: float = 0.05,
                     mode: str = "auto") -> WilcoxonResult:
    """Wilcoxon signed-rank test of a method against the baseline over paired datasets.

    Parameters
    ----------
    method_values, baseline_values : sequence of float
        Per-dataset values (fold means), paired by position.
    metric : str
        Metric name; those in :data:`~mlbs.experiments.evaluate.LOWER_IS_BETTER` are oriented so
        that a smaller value is better.
    alpha : float
        Level of the decision.
    mode : {"auto", "exact", "asymptotic"}
        scipy's ``method``; "auto" is exact for at most 50 non-zero differences.

    Returns
    -------
    WilcoxonResult
    """
    a = np.asarray(method_values, dtype=np.float64)
    b = np.asarray(baseline_values, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"the paired values must be two 1-D sequences of equal length, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("the paired values must be finite")
    diff = (a - b) * (-1.0 if metric in LOWER_IS_BETTER else 1.0)  # > 0: the method is better
    nz = diff[diff != 0]
    if mode not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"mode must be 'auto', 'exact' or 'asymptotic', got {mode!r}")
    if nz.size == 0:
        return WilcoxonResult(a.size, 0, 0.0, 0.0, float("nan"), float("nan"), "none", "tie")
    ranks = stats.rankdata(np.abs(nz))
    r_plus, r_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    res = stats.wilcoxon(nz, zero_method="wilcox", alternative="two-sided", method=mode)
    used = mode if mode != "auto" else ("exact" if nz.size <= 50 else "asymptotic")
    ties = bool(np.unique(np.abs(nz)).size < nz.size)
    p = float(res.pvalue)
    decision = "tie"
    if p < alpha and r_plus != r_minus:
        decision = "win" if r_plus > r_minus else "loss"
    return WilcoxonResult(a.size, int(nz.size), r_plus, r_minus, float(res.statistic), p, used, decision, ties)
