"""Score -> unnormalised sampling weight transforms, fp64 throughout.

- :func:`quantized_by_max` (Zhou et al. 2024, eqs. 6-7): Adaptive's levels relative to the
  maximum score, with a selection pressure s > 1;
- :func:`quantized_min_max` (Song et al. 2020b; the uncertainty-based methods): levels relative
  to the score range, with the value s(e) > 0 of a schedule, which may reach 1 (uniform) or, in
  one code base, go below 1.
"""

from __future__ import annotations

import numpy as np


def quantized_by_max(scores: np.ndarray, score_max: float, n: int, pressure: float) -> np.ndarray:
    """Quantization index of Zhou et al. 2024 (eqs. 6-7): omega_i = s^(Q_i / N).

    Q_i = ceil(N * score_i / score_max), clamped to [0, N], with Delta = score_max / N the level
    width. An instance with score 0 gets 1, the maximum gets s. score_max = 0 (before any
    visit) gives the uniform weights 1.

    Parameters
    ----------
    scores : ndarray
        The scores to transform (all samples, or the visited ones of a batch).
    score_max : float
        The maximum score over *all* N samples (not only ``scores``).
    n : int
        N, the number of samples.
    pressure : float
        s > 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if score_max <= 0.0:
        return np.ones_like(scores)
    levels = n * scores
    levels /= score_max
    np.ceil(levels, out=levels)
    np.clip(levels, 0.0, n, out=levels)
    levels *= np.log(pressure) / n
    return np.exp(levels, out=levels)


def quantized_min_max(scores: np.ndarray, ratio: float, *, clip: bool = False,
                      nonfinite: str = "raise") -> np.ndarray:
    """Quantized min-max transform (QMM): omega_i = s^(-k_i / N).

    s_hat_i = (score_i - min) / (max - min), k_i = ceil((1 - s_hat_i) N), so the highest score
    gets omega = 1 and the lowest 1/s (a linear quantisation of the score value, not a rank).
    ``clip=True`` clamps k_i to [1, N] (the code of Liu et al. 2026; only the top weight changes,
    by s^(-1/N)). Constant scores (max = min) give uniform weights. A ratio s < 1 (the increasing
    schedule of the code of Zhou et al. 2024b before epoch 10) favours low scores; s = 1 is
    uniform.

    Parameters
    ----------
    scores : ndarray, shape (N,)
    ratio : float
        s > 0, the value of the pressure schedule.
    clip : bool
    nonfinite : {"raise", "uniform"}
        What a NaN or infinite score does: raise (default), or make the weights uniform, as in
        the code of Liu et al. 2026, where a NaN makes ``max - min > 0`` false.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    scores = np.asarray(scores, dtype=np.float64)
    s = float(ratio)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"the schedule's ratio s must be a finite number > 0, got {ratio!r}")
    if nonfinite not in ("raise", "uniform"):
        raise ValueError(f"nonfinite must be 'raise' or 'uniform', got {nonfinite!r}")
    n = scores.size
    finite = np.isfinite(scores)
    if not finite.all():
        if nonfinite == "uniform":
            return np.ones(n)
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"score of sample {bad} is {scores[bad]}: scores must be finite")
    lo, hi = (scores.min(), scores.max()) if n else (0.0, 0.0)
    if not hi - lo > 0:
        return np.ones(n)
    levels = np.ceil((1.0 - (scores - lo) / (hi - lo)) * n)
    levels = np.clip(levels, 1.0 if clip else 0.0, n)
    return np.exp(levels * (-np.log(s) / n))
