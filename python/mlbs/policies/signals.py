"""Per-sample, per-label signals kept incrementally from the observation of every batch.

Signals are updated for the visited rows only (methods.md 2.2); an entry keeps its value from
the sample's latest visit. Three tables:

- :class:`PredictionWindow` (``uncertain``, ``d2ace``; methods.md 7, 8.2): the ring buffer of the
  last w probabilities, the uncertainty E, the EMA phi of the prediction change, the latest
  per-label BCE. One compiled pass per batch (C++, cpp/mlbs/prediction_window.hpp), O(B q w).
- :class:`RunningMoments` (``active_bias``; methods.md 9): Welford count, mean and M2 of p_ij.
- :class:`RecentBits` (``recency_bias``; methods.md 10): the last w binarised predictions as a bit
  field with the count of ones.

Every table's memory per sample and per (sample, label) entry is given in its docstring.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from mlbs._core import _window_visit
from mlbs.losses import OUTPUT_KINDS

LN2 = math.log(2.0)

# -- vectorisable float64 exp ----------------------------------------------------------------------
# LLVM cannot vectorise calls to libm, so the compiled per-entry passes of the end-of-epoch refresh
# (mlbs.policies.d2ace) use this branch-free polynomial version instead: Cody-Waite reduction plus a
# degree-13 Taylor polynomial (truncation < 4e-18 relative). Measured against libm on 2.5 x 10^5
# arguments: within 1 ulp (tests/test_policies_uncertainty.py). The per-visit pass is C++, with its
# own vectorisable exp and log1p (cpp/mlbs/vector_math.hpp).

_LN2_HI = 6.93147180369123816490e-01   # 32 significant bits: k * _LN2_HI is exact for |k| < 2^21
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00


@intrinsic
def _bits_to_float(typingctx, bits):  # pragma: no cover (compiled)
    """The float64 whose IEEE bit pattern is the int64 ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def vexp(x):  # pragma: no cover
    """e^x for float64 x, vectorisable; NaN -> NaN, x > 709.78 -> inf, x < -708 -> ~3e-308 (not 0).

    The flush above 0 for x < -708 is the only departure from libm beyond rounding (absolute
    error < 3.1e-308).
    """
    xc = x if x > -708.0 else -708.0
    xc = xc if xc < 709.79 else 709.79
    k = math.floor(xc * _INV_LN2 + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = (p * _bits_to_float((np.int64(k) + 1022) << 52)) * 2.0   # k in [-1021, 1024]
    y = y if x <= 709.782712893384 else np.inf
    return y if x == x else x


#: Window storage: name -> (numpy dtype, quantisation scale; 0 means stored as is).
WINDOW_DTYPES = {"float64": (np.float64, 0.0), "float32": (np.float32, 0.0),
                 "uint16": (np.uint16, 65535.0), "uint8": (np.uint8, 255.0)}
TABLE_DTYPES = {"float64": np.float64, "float32": np.float32}


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
    """H_2(p) = -p log2 p - (1 - p) log2(1 - p), with 0 log 0 = 0 (methods.md 1, 2.6)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
              + np.where(p < 1, (1 - p) * np.log1p(-np.where(p < 1, p, 0.0)), 0.0))
    return h / LN2


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def fsum(buf):  # pragma: no cover
    """Sum of a float64 vector, reassociated (vectorised); NaN and infinities propagate."""
    acc = 0.0
    for j in range(buf.size):
        acc += buf[j]
    return acc


class PredictionWindow:
    """Window of the last w probabilities per (sample, label), with E, phi and the latest BCE.

    At a visit of sample i with probabilities p_i (methods.md 7 "Per visit", 8.2):

    - p_i is appended to the window W_i (the oldest entry leaves once w are stored);
    - E_ij = 1/2 (1 / (|W_i| - 1)) sum_{t=2}^{|W_i|} |p_ij^(t) - p_ij^(t-1)| + 1/2 H_2(p_ij),
      the window's mean absolute change being 0 when |W_i| < 2 (NaN with ``short_nan``) and the
      entropy using 0 log 0 = 0 (NaN where float32(p) is 0 or 1 with ``entropy_nan``, 2.6);
    - phi_ij <- alpha |p_ij^(last) - p_ij^(previous)| + (1 - alpha) phi_ij, the change being 0 at
      the first visit (``track_phi``);
    - l_ij = BCE(z_ij, y_ij), the latest per-label loss (``track_loss``).

    The changes are those of the *stored* window values, so a compact window (``uint8``:
    p rounded to multiples of 1/255; ``uint16``: of 1/65535) perturbs each change by at most one
    quantisation step and E, phi accordingly; the entropy uses the exact p.

    Memory: per sample 8 bytes (visit count); per entry w * b_w (window; b_w = 8, 4, 2, 1 for
    float64, float32, uint16, uint8) + b_t for E, + b_t for phi, + b_t for the loss, b_t = 8 or 4
    (``table_dtype``). Example: delicious (16,105 x 983), w = 5, uint8 window, float32 tables with
    phi and loss: 17 bytes per entry, 269 MB.

    Parameters
    ----------
    n, q : int
    window : int
        w >= 1 (default 5).
    window_dtype : {"float64", "float32", "uint16", "uint8"}
    table_dtype : {"float64", "float32"}
    track_phi, track_loss : bool
    alpha : float
        EMA weight in [0, 1] (default 0.7).
    entropy_nan, short_nan : bool
        compat NaNs of methods.md 2.6.
    """

    def __init__(self, n: int, q: int, *, window: int = 5, window_dtype: str = "float32",
                 table_dtype: str = "float32", track_phi: bool = False, track_loss: bool = False,
                 alpha: float = 0.7, entropy_nan: bool = False, short_nan: bool = False):
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if window_dtype not in WINDOW_DTYPES:
            raise ValueError(f"window_dtype must be one of {sorted(WINDOW_DTYPES)}, got {window_dtype!r}")
        if table_dtype not in TABLE_DTYPES:
            raise ValueError(f"table_dtype must be one of {sorted(TABLE_DTYPES)}, got {table_dtype!r}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        dtype, self.scale = WINDOW_DTYPES[window_dtype]
        tdt = TABLE_DTYPES[table_dtype]
        self.w, self.alpha = int(window), float(alpha)
        self.entropy_nan, self.short_nan = bool(entropy_nan), bool(short_nan)
        self.window = np.zeros((n, self.w, q), dtype=dtype)
        self.count = np.zeros(n, dtype=np.int64)
        self.E = np.zeros((n, q), dtype=tdt)
        self.phi = np.zeros((n, q), dtype=tdt) if track_phi else np.zeros((0, 0), dtype=tdt)
        self.loss = np.zeros((n, q), dtype=tdt) if track_loss else np.zeros((0, 0), dtype=tdt)
        self.track_phi, self.track_loss = bool(track_phi), bool(track_loss)

    def visit(self, rows: np.ndarray, outputs: np.ndarray, kind: str, labels) -> np.ndarray:
        """Record the (validated, distinct) rows' outputs; returns their mean BCE over labels."""
        if kind not in OUTPUT_KINDS:
            raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
        out = np.asarray(outputs)
        out = np.ascontiguousarray(out, dtype=out.dtype if out.dtype in (np.float32, np.float64) else np.float64)
        return _window_visit(rows.astype(np.int64, copy=False), out, kind == "logits", labels.indptr,
                             labels.indices, self.window, self.count, self.E, self.phi, self.loss,
                             self.alpha, self.track_phi, self.track_loss, self.entropy_nan,
                             self.short_nan)

    def memory_bytes(self) -> int:
        return sum(a.nbytes for a in (self.window, self.count, self.E, self.phi, self.loss))

    def state_dict(self) -> dict:
        return {"window": self.window.copy(), "count": self.count.copy(), "E": self.E.copy(),
                "phi": self.phi.copy(), "loss": self.loss.copy()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("window", "count", "E", "phi", "loss"):
            value = np.asarray(state[name])
            if value.shape != getattr(self, name).shape:
                raise ValueError(f"state's {name} has shape {value.shape}, expected {getattr(self, name).shape}")
            getattr(self, name)[...] = value


class RunningMoments:
    """Welford running mean and M2 of p_ij over all visits of sample i (methods.md 9).

    At a visit: n_i <- n_i + 1, d = p_ij - mean_ij, mean_ij += d / n_i, M2_ij += d (p_ij - mean_ij).
    The variance is M2 / (n_i - ddof). The variance of the true-label probability equals that
    of p_ij (p~ = 1 - p for negatives), so the labels are not needed.

    Memory: per sample 8 bytes (count); per entry 16 bytes (mean and M2, float64).
    """

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
        """sigma_ij = sqrt(var + var^2 / (n_i - 1)) for n_i >= 2, else 0 ([AB]; methods.md 9).

        All samples, or only ``rows``.
        """
        rows = slice(None) if rows is None else rows
        c = self.count[rows][:, None].astype(np.float64)
        ok = c >= 2
        var = np.where(ok, self.m2[rows] / np.where(ok, c - ddof, 1.0), 0.0)
        return np.where(ok, np.sqrt(var + var * var / np.where(ok, c - 1.0, 1.0)), 0.0)

    def state_dict(self) -> dict:
        return {"count": self.count.copy(), "mean": self.mean.copy(), "m2": self.m2.copy()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("count", "mean", "m2"):
            getattr(self, name)[...] = np.asarray(state[name])


class RecentBits:
    """The last w binarised predictions b = [p_ij > 0.5] per entry, as a bit field (methods.md 10).

    Bit (v mod w) of ``bits[i, j]`` holds visit v of sample i; ``ones`` counts the set bits of the
    stored visits, updated in O(1): the leaving bit is subtracted, the new one added.
    u_ij = H_2(ones_ij / fill_i), fill_i = min(visits_i, w) (not w: the [K] quirk of counting
    unfilled slots as class 0 is not reproduced), and u = 0 when fill_i < 2.

    Memory: per sample 8 bytes (count); per entry 2 bytes (bits, w <= 16) + 1 byte (ones).
    """

    def __init__(self, n: int, q: int, window: int = 10):
        if not 1 <= int(window) <= 16:
            raise ValueError(f"window must be between 1 and 16, got {window}")
        self.w = int(window)
        self.count = np.zeros(n, dtype=np.int64)
        self.bits = np.zeros((n, q), dtype=np.uint16)
        self.ones = np.zeros((n, q), dtype=np.uint8)

    def visit(self, rows: np.ndarray, p: np.ndarray) -> None:
        new = (p > 0.5).astype(np.uint16)
        slot = (self.count[rows] % self.w).astype(np.uint16)[:, None]
        bits = self.bits[rows]
        leaving = np.where(self.count[rows][:, None] >= self.w, (bits >> slot) & 1, 0).astype(np.uint8)
        self.ones[rows] = self.ones[rows] - leaving + new.astype(np.uint8)
        self.bits[rows] = (bits & ~(np.uint16(1) << slot)) | (new << slot)
        self.count[rows] += 1

    def uncertainty(self) -> np.ndarray:
        fill = np.minimum(self.count, self.w)[:, None].astype(np.float64)
        u = binary_entropy_bits(self.ones / np.maximum(fill, 1.0))
        return np.where(fill >= 2, u, 0.0)

    def state_dict(self) -> dict:
        return {"count": self.count.copy(), "bits": self.bits.copy(), "ones": self.ones.copy()}

    def load_state_dict(self, state: dict) -> None:
        for name in ("count", "bits", "ones"):
            getattr(self, name)[...] = np.asarray(state[name])
