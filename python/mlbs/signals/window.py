"""The prediction window of Uncertain and D2ACE: per (sample, label), the last w probabilities,
the uncertainty E, the EMA phi of the prediction change and the latest per-label BCE.

Updated for the visited rows only, in one compiled pass per batch (:func:`mlbs.core.window_visit`,
``cpp/mlbs/kernels/prediction_window.hpp``), O(B q w); an entry keeps its value from the sample's latest
visit.
"""

from __future__ import annotations

import numpy as np

from mlbs import core
from mlbs.signals.bce import OUTPUT_KINDS
from mlbs.signals.tables import SignalTables

#: Window storage: name -> (numpy dtype, quantisation scale; 0 means stored as is).
WINDOW_DTYPES = {"float64": (np.float64, 0.0), "float32": (np.float32, 0.0),
                 "uint16": (np.uint16, 65535.0), "uint8": (np.uint8, 255.0)}
TABLE_DTYPES = {"float64": np.float64, "float32": np.float32}


class PredictionWindow(SignalTables):
    """Window of the last w probabilities per (sample, label), with E, phi and the latest BCE.

    At a visit of sample i with probabilities p_i (Zhou et al. 2024b; Liu et al. 2026):

    - p_i is appended to the window W_i (the oldest entry leaves once w are stored);
    - E_ij = 1/2 (1 / (|W_i| - 1)) sum_{t=2}^{|W_i|} |p_ij^(t) - p_ij^(t-1)| + 1/2 H_2(p_ij),
      the window's mean absolute change being 0 when |W_i| < 2 (NaN with ``short_nan``) and the
      entropy using 0 log 0 = 0 (NaN where float32(p) is 0 or 1 with ``entropy_nan``);
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
        The NaNs of the authors' code: the entropy of a saturated probability (log 0), and the
        mean change of a window holding fewer than 2 predictions (an empty mean).
    """

    PREFIX, TABLES = "window", ("window", "count", "E", "phi", "loss")

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
        self.length, self.alpha = int(window), float(alpha)
        self.entropy_nan, self.short_nan = bool(entropy_nan), bool(short_nan)
        self.window = np.zeros((n, self.length, q), dtype=dtype)
        self.count = np.zeros(n, dtype=np.int64)
        self.E = np.zeros((n, q), dtype=tdt)
        self.phi = np.zeros((n, q), dtype=tdt) if track_phi else np.zeros((0, 0), dtype=tdt)
        self.loss = np.zeros((n, q), dtype=tdt) if track_loss else np.zeros((0, 0), dtype=tdt)
        self.track_phi, self.track_loss = bool(track_phi), bool(track_loss)

    def visit(self, rows: np.ndarray, outputs: np.ndarray, kind: str, labels: core.LabelsCSR) -> np.ndarray:
        """Record the (validated, distinct) rows' outputs; returns their mean BCE over labels."""
        if kind not in OUTPUT_KINDS:
            raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
        out = np.asarray(outputs)
        out = np.ascontiguousarray(out, dtype=out.dtype if out.dtype in (np.float32, np.float64) else np.float64)
        tables = {name: getattr(self, name) for name in self.TABLES}
        return core.window_visit(rows, out, labels, tables=tables, logits=kind == "logits", alpha=self.alpha,
                                 entropy_nan=self.entropy_nan, short_nan=self.short_nan)

    def memory_bytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.TABLES)

    def settings(self) -> dict:
        """What shapes the tables: window length, storage, tracked tables, NaN conventions."""
        return {"window_length": self.length, "window_dtype": str(self.window.dtype), "table_dtype": str(self.E.dtype),
                "track_phi": self.track_phi, "track_loss": self.track_loss, "alpha": self.alpha,
                "entropy_nan": self.entropy_nan, "short_nan": self.short_nan}
