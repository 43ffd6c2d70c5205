"""Type aliases of the public API (for annotations; nothing here runs at training time)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Union

import numpy.typing as npt
import scipy.sparse as sp

__all__ = ["MatrixLike", "Schedule"]

#: An (n, q) matrix: anything ``numpy.asarray`` takes, or a scipy sparse matrix or array.
MatrixLike = Union[npt.ArrayLike, sp.spmatrix, sp.sparray]

#: A value over epochs: a number (constant) or a callable epoch -> value.
Schedule = Union[float, Callable[[int], float]]
