"""The history tables of Active Bias and Recency Bias, updated from every observed batch.

- :class:`RunningMoments` (``ActiveBias``): Welford count, mean and M2 of p_ij (Welford 1962);
- :class:`RecentBits` (``RecencyBias``): the last w binarised predictions as a bit field with the
  count of ones.

Tables are updated for the visited rows only; an entry keeps its value from the sample's latest
visit. Every table's memory per sample and per (sample, label) entry is given in its docstring.
"""

from __future__ import annotations

import math

import numpy as np

from mlbs.signals.bce import OUTPUT_KINDS
from mlbs.signals.tables import SignalTables

LN2 = math.log(2.0)


def probabilities_of(outputs: np.ndarray, kind: str) -> np.ndarray:
    """p = sigma(z) for logits (computed stably), the outputs themselves for probabilities."""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    out = np.asarray(outputs, dtype=np.float64)
    if kind == "probabilities":
        return out
    t = np.exp(-np.abs(out))
    return np.where(out >= 0, 1.0 / (1.0 + t), t / (1.0 + t))


def binary_entropy_bits(p: np.ndarray) -> np.ndarray:
    """H_2(p) = -p log2 p - (1 - p) log2(1 - p), with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
              + np.where(p < 1, (1 - p) * np.log1p(-np.where(p < 1, p, 0.0)), 0.0))
    return h / LN2


class RunningMoments(SignalTables):
    """Welford running mean and M2 of p_ij over all visits of sample i (Welford 1962).

    At a visit: n_i <- n_i + 1, d = p_ij - mean_ij, mean_ij += d / n_i, M2_ij += d (p_ij - mean_ij).
    The variance is M2 / (n_i - ddof). The variance of the true-label probability equals that
    of p_ij (p~ = 1 - p for negatives), so the labels are not needed.

    Memory: per sample 8 bytes (count); per entry 16 bytes (mean and M2, float64).
    """

    PREFIX, TABLES = "moments", ("count", "mean", "m2")

    def __init__(self, n: int, q: int):
        self.count = np.zeros(n, dtype=np.int64)
        self.mean = np.zeros((n, q))
        self.m2 = np.zeros((n, q))

    def visit(self, rows: np.ndarray, p: np.ndarray) -> None:
        self.count[rows] += 1
        delta = p - self.mean[rows]
        mean = self.mean[rows] + delta / self.count[rows][:, None]
        self.mean[rows] = mean
        self.m2[rows] += delta * (p - mean)

    def sigma_hat(self, ddof: int = 1, rows=None) -> np.ndarray:
        """sigma_ij = sqrt(var + var^2 / (n_i - 1)) for n_i >= 2, else 0 (Chang et al. 2017).

        All samples, or only ``rows``.
        """
        rows = slice(None) if rows is None else rows
        c = self.count[rows][:, None].astype(np.float64)
        ok = c >= 2
        var = np.where(ok, self.m2[rows] / np.where(ok, c - ddof, 1.0), 0.0)
        return np.where(ok, np.sqrt(var + var * var / np.where(ok, c - 1.0, 1.0)), 0.0)



class RecentBits(SignalTables):
    """The last w binarised predictions b = [p_ij > 0.5] per entry, as a bit field (Song et al. 2020).

    Bit (v mod w) of ``bits[i, j]`` holds visit v of sample i; ``ones`` counts the set bits of the
    stored visits, updated in O(1): the leaving bit is subtracted, the new one added.
    u_ij = H_2(ones_ij / fill_i), fill_i = min(visits_i, w), and u = 0 when fill_i < 2 (the
    reference code of Song et al. 2020 divides by w, counting unfilled slots as class 0; that
    is not reproduced).

    Memory: per sample 8 bytes (count); per entry 2 bytes (bits, w <= 16) + 1 byte (ones).
    """

    PREFIX, TABLES = "bits", ("count", "bits", "ones")

    def __init__(self, n: int, q: int, window: int = 10):
        if not 1 <= int(window) <= 16:
            raise ValueError(f"window must be between 1 and 16, got {window}")
        self.length = int(window)
        self.count = np.zeros(n, dtype=np.int64)
        self.bits = np.zeros((n, q), dtype=np.uint16)
        self.ones = np.zeros((n, q), dtype=np.uint8)

    def visit(self, rows: np.ndarray, p: np.ndarray) -> None:
        new = (p > 0.5).astype(np.uint16)
        slot = (self.count[rows] % self.length).astype(np.uint16)[:, None]
        bits = self.bits[rows]
        leaving = np.where(self.count[rows][:, None] >= self.length, (bits >> slot) & 1, 0).astype(np.uint8)
        self.ones[rows] = self.ones[rows] - leaving + new.astype(np.uint8)
        self.bits[rows] = (bits & ~(np.uint16(1) << slot)) | (new << slot)
        self.count[rows] += 1

    def uncertainty(self) -> np.ndarray:
        fill = np.minimum(self.count, self.length)[:, None].astype(np.float64)
        u = binary_entropy_bits(self.ones / np.maximum(fill, 1.0))
        return np.where(fill >= 2, u, 0.0)

    def settings(self) -> dict:
        return {"window_length": self.length}
