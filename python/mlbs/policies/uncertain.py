"""``Uncertain``: uncertainty-guided selection (Zhou et al. 2024b; formulas as in its code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlbs.policies.base import configured
from mlbs.policies.epochwise import EpochPolicy
from mlbs.policies.schedules import check_schedule, d2ace_pressure
from mlbs.policies.transforms import quantized_min_max
from mlbs.signals.window import PredictionWindow
from mlbs.typing import MatrixLike, Schedule

#: Upper edges of the uncertainty bins [0, .2), [.2, .4), ..., [.8, 1] and their values.
BIN_EDGES = np.array([0.2, 0.4, 0.6, 0.8])
BIN_VALUES = np.array([0.1, 0.3, 0.5, 0.7, 0.9])

def bin_index(E: np.ndarray) -> np.ndarray:
    """b_ij in {0..4}: [0, .2) -> 0, [.2, .4) -> 1, ..., [.8, 1] -> 4; NaN -> 4."""
    E = np.asarray(E, dtype=np.float64)
    return np.where(np.isnan(E), BIN_VALUES.size - 1, np.digitize(E, BIN_EDGES))


def bin_uncertainty(E: np.ndarray) -> np.ndarray:
    """E_bar = 0.1 + 0.2 b: [0, .2) -> .1, [.2, .4) -> .3, ..., [.8, 1] -> .9; NaN -> .9."""
    return BIN_VALUES[bin_index(E)]


@dataclass(frozen=True)
class UncertainConfig:
    """The settings of :class:`Uncertain`.

    Parameters
    ----------
    window : int
        w, predictions kept per entry (default 5).
    pressure : float > 1 or callable epoch -> s, optional
        Default ``ExpDecay(8, 1, 10, 100, floor=1)`` (decaying, as the paper says).
    bin_from_epoch : int
        First epoch whose refresh bins E (5).
    qmm_clip : bool
        Clamp the QMM levels to [1, N] (default False, as the authors' code).
    entropy_nan, short_nan : bool
        The NaNs of the authors' code (see the prediction window), binned to 0.9 as there.
    correlation : {"ones"}
        The mutual-information reading of the label correlation is not implemented.
    window_dtype, table_dtype : str
        Storage of the window and of E (see :class:`~mlbs.signals.window.PredictionWindow`).
    schedule_eval : {"lagged", "current"}

    The settings of the authors' code are in :mod:`mlbs.experiments.presets`.
    """

    window: int = 5
    pressure: Schedule | None = None
    bin_from_epoch: int = 5
    qmm_clip: bool = False
    entropy_nan: bool = False
    short_nan: bool = False
    correlation: str = "ones"
    window_dtype: str = "float32"
    table_dtype: str = "float32"
    schedule_eval: str = "lagged"

    def __post_init__(self):
        if self.correlation != "ones":
            raise ValueError(f"correlation must be 'ones' (the 'mi' option is not implemented), got {self.correlation!r}")


class Uncertain(EpochPolicy):
    """P = QMM(score, s(e)) with score_i = sum_j E_bar_ij.

    Per visit (:class:`~mlbs.signals.window.PredictionWindow`): E_ij = 1/2 mean |change of p_ij
    over the last w predictions| + 1/2 H_2(p_ij). End of epoch e: E <- min(E, 1); E_bar = bin(E)
    when e >= ``bin_from_epoch`` (5), else E; score_i = sum_j (E_bar I)_ij with I = all-ones (the
    only correlation the code fully specifies; it equals q sum_j E_bar_ij, and QMM is invariant
    to the factor q); P_i proportional to QMM(score)_i with s(e) read at the lagged epoch.

    Memory: that of the prediction window without phi and loss, e.g. 5 b_w + 4 bytes per entry.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    config : UncertainConfig, optional
        The settings (defaults: ``UncertainConfig()``).
    refresh : {"epoch"}, optional
    seed : int
        Seed of the draws.
    **settings
        Fields of :class:`UncertainConfig`, overriding ``config``'s.
    """

    Config = UncertainConfig

    def __init__(self, labels: MatrixLike, config: UncertainConfig | None = None, *, refresh: str | None = None,
                 seed: int = 0, **settings: Any):
        cfg = configured(UncertainConfig, config, settings)
        super().__init__(labels, refresh=refresh, schedule_eval=cfg.schedule_eval, seed=seed)
        self.config = cfg
        self.pressure = check_schedule("pressure", d2ace_pressure() if cfg.pressure is None else cfg.pressure,
                                       number_above=1)
        self.signals = PredictionWindow(self.n, self.q, window=cfg.window, window_dtype=cfg.window_dtype,
                                        table_dtype=cfg.table_dtype, entropy_nan=cfg.entropy_nan,
                                        short_nan=cfg.short_nan)

    def _visit(self, idx, outputs, kind):
        return self.signals.visit(idx, outputs, kind, self.label_csr)

    def scores(self, epoch: int) -> np.ndarray:
        """score_i = sum_j E_bar_ij at the given (evaluation) epoch."""
        E = np.minimum(self.signals.E.astype(np.float64), 1.0)
        return (bin_uncertainty(E) if epoch >= self.config.bin_from_epoch else E).sum(axis=1)

    def _weights(self, epoch: int) -> np.ndarray:
        if epoch >= self.config.bin_from_epoch:
            # sum_j E_bar_ij = 0.1 q + 0.2 sum_j b_ij: QMM is invariant to this increasing affine map,
            # and the integer sums make the level boundaries exact.
            scores = bin_index(self.signals.E).sum(axis=1).astype(np.float64)
        else:
            scores = self.scores(epoch)
        return quantized_min_max(scores, self.pressure(epoch), clip=self.config.qmm_clip)
