"""``RecencyBias``: entropy of the recent predictions (Song et al. 2020), adapted to multi-label
data as in the analysis notebook of the code of Zhou et al. 2024b."""

from __future__ import annotations

import numpy as np

from mlbs.policies.epochwise import EpochPolicy
from mlbs.policies.schedules import ExpDecay, check_schedule
from mlbs.policies.transforms import quantized_min_max
from mlbs.signals.bce import per_sample_bce_csr
from mlbs.signals.history import RecentBits, probabilities_of
from mlbs.typing import MatrixLike, Schedule


class RecencyBias(EpochPolicy):
    """Entropy of the recent binarised predictions: U_i = sum_j H_2(ones_ij / fill_i).

    Per label the last w predictions [p_ij > 0.5] (:class:`~mlbs.signals.history.RecentBits`,
    O(1) per entry and visit); u_ij = 0 with fewer than 2 stored predictions. P = QMM(U, s(e))
    with ``ExpDecay(100, 1, 10, 100)`` and w = 10 (the defaults of Song et al. 2020).

    Memory: 3 bytes per entry, 8 per sample.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    window : int
        w in [1, 16] (default 10).
    pressure : float > 1 or callable epoch -> s
    qmm_clip : bool
    schedule_eval : {"lagged", "current"}
    seed : int
        Seed of the draws.
    """

    def __init__(self, labels: MatrixLike, *, window: int = 10, pressure: Schedule | None = None,
                 qmm_clip: bool = False, schedule_eval: str = "lagged", refresh: str | None = None, seed: int = 0):
        super().__init__(labels, refresh=refresh, schedule_eval=schedule_eval, seed=seed)
        self.pressure = check_schedule("pressure", ExpDecay(100.0, 1.0, 10, 100) if pressure is None else pressure,
                                       number_above=1)
        self.qmm_clip = bool(qmm_clip)
        self.signals = RecentBits(self.n, self.q, window)

    def _visit(self, idx, outputs, kind):
        self.signals.visit(idx, probabilities_of(outputs, kind))
        return per_sample_bce_csr(outputs, idx, self.labels, kind=kind)

    def scores(self) -> np.ndarray:
        """U_i = sum_j u_ij."""
        return self.signals.uncertainty().sum(axis=1)

    def _weights(self, epoch: int) -> np.ndarray:
        return quantized_min_max(self.scores(), self.pressure(epoch), clip=self.qmm_clip)
