"""Score -> unnormalised sampling weight transforms (methods.md 2.3), fp64 throughout."""

from __future__ import annotations

import numpy as np


def quantized_by_max(scores: np.ndarray, score_max: float, n: int, pressure: float) -> np.ndarray:
    """Quantization index of the seed paper (eqs. 6-7): omega_i = s^(Q_i / N).

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
    levels = np.clip(np.ceil(n * scores / score_max), 0.0, n)
    return np.exp(levels * (np.log(pressure) / n))
