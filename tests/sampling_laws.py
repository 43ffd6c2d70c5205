"""Exact laws and goodness-of-fit helpers shared by the tests of the sampling core.

These are the slow, obviously correct references: direct transcriptions of the definitions.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

#: Significance level of every goodness-of-fit test. The seeds are fixed, so a test either always
#: passes or always fails; the level says how unlikely a failure of a correct sampler would be.
ALPHA = 1e-3


def sequential_law(weights: np.ndarray, k: int) -> dict[tuple[int, ...], float]:
    """Probability of every ordered k-tuple under sampling without replacement.

    P(i_1, ..., i_k) = prod_t w_{i_t} / (W - w_{i_1} - ... - w_{i_{t-1}}), the law of
    ``numpy.random.Generator.choice(n, k, replace=False, p=w / W)``.
    """
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    law = {}
    for tup in itertools.permutations(range(len(w)), k):
        p, left = 1.0, total
        for i in tup:
            p *= w[i] / left
            left -= w[i]
        if p > 0:
            law[tup] = p
    return law


def chisquare_pvalue(observed: dict, expected_prob: dict, n_trials: int, min_expected: float = 5.0) -> float:
    """Pearson chi-square p-value of observed counts against cell probabilities.

    Cells whose expected count is below ``min_expected`` are pooled into one cell (the usual
    validity rule of the chi-square approximation). Observations outside the support make the
    p-value 0.
    """
    if any(cell not in expected_prob for cell in observed):
        return 0.0
    big = [c for c, p in expected_prob.items() if p * n_trials >= min_expected]
    small = [c for c, p in expected_prob.items() if p * n_trials < min_expected]
    f_obs = [observed.get(c, 0) for c in big]
    f_exp = [expected_prob[c] * n_trials for c in big]
    pooled_exp = sum(expected_prob[c] for c in small) * n_trials
    if pooled_exp > 0:
        f_obs.append(sum(observed.get(c, 0) for c in small))
        f_exp.append(pooled_exp)
    f_exp = np.asarray(f_exp)
    f_exp *= sum(f_obs) / f_exp.sum()  # remove rounding of the probabilities' sum
    return float(stats.chisquare(f_obs, f_exp).pvalue)


def count(rows) -> dict:
    """Histogram of hashable rows (tuples or ints)."""
    out: dict = {}
    for r in rows:
        out[r] = out.get(r, 0) + 1
    return out
