"""Vectorisable float64 maths for the compiled (Numba) refresh kernels of :mod:`mlbs.signals.refresh`.

LLVM cannot vectorise calls to libm, so the per-entry passes of D2ACE's end-of-epoch refresh use
:func:`vexp`, a branch-free polynomial e^x: Cody-Waite reduction plus a degree-13 Taylor
polynomial (truncation < 4e-18 relative). Measured against libm on 2.5 x 10^5 arguments: within
1 ulp (tests/test_policies_uncertainty.py). The per-visit pass is C++, with its own vectorisable
exp and log1p (``cpp/mlbs/kernels/vector_math.hpp``).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def fsum(buf):  # pragma: no cover
    """Sum of a float64 vector, reassociated (vectorised); NaN and infinities propagate."""
    acc = 0.0
    for j in range(buf.size):
        acc += buf[j]
    return acc
