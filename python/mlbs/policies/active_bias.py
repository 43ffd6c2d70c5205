"""``ActiveBias``: prediction-variance selection (Chang et al. 2017), adapted to multi-label data
as in the analysis notebook of the code of Zhou et al. 2024b."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlbs.core import checked_indices
from mlbs.policies.base import configured
from mlbs.policies.epochwise import EpochPolicy
from mlbs.policies.schedules import check_schedule, d2ace_pressure
from mlbs.policies.transforms import quantized_min_max
from mlbs.signals.bce import per_sample_bce_csr
from mlbs.signals.history import RunningMoments, probabilities_of
from mlbs.typing import MatrixLike, Schedule


@dataclass(frozen=True)
class ActiveBiasConfig:
    """The settings of :class:`ActiveBias`.

    Parameters
    ----------
    pressure : float > 1 or callable epoch -> s, optional
        Default ``ExpDecay(8, 1, 10, 100, floor=1)``.
    ddof : {0, 1}
    transform : {"qmm", "proportional"}
    epsilon : float, optional
        Default 0.02 q.
    mode : {"sample", "weight"}
    burn_in : int
        Epochs of unit loss weights in ``mode="weight"`` (default 10).
    qmm_clip : bool
    schedule_eval : {"lagged", "current"}
    """

    pressure: Schedule | None = None
    ddof: int = 1
    transform: str = "qmm"
    epsilon: float | None = None
    mode: str = "sample"
    burn_in: int = 10
    qmm_clip: bool = False
    schedule_eval: str = "lagged"

    def __post_init__(self):
        if self.ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 or 1, got {self.ddof!r}")
        if self.transform not in ("qmm", "proportional"):
            raise ValueError(f"transform must be 'qmm' or 'proportional', got {self.transform!r}")
        if self.mode not in ("sample", "weight"):
            raise ValueError(f"mode must be 'sample' or 'weight', got {self.mode!r}")
        if self.epsilon is not None and not (np.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be finite and > 0, got {self.epsilon!r}")


class ActiveBias(EpochPolicy):
    """Prediction-variance selection: U_i = sum_j sigma_ij.

    sigma_ij = sqrt(var_ij + var_ij^2 / (n_i - 1)) from the full history of p_ij (Welford 1962,
    :class:`~mlbs.signals.history.RunningMoments`; ddof 1 as in the multi-label code, 0 as in
    the reference code of Song et al. 2020); 0 while n_i < 2.

    - ``mode="sample"``, ``transform="qmm"`` (default): P = QMM(U, s(e)), s from
      ``ExpDecay(8, 1, 10, 100, floor=1)`` (the schedule of the other multi-label methods);
    - ``transform="proportional"``: P_i proportional to U_i + epsilon (SGD-SPV), epsilon = 0.02 q;
    - ``mode="weight"`` (SGD-WPV): the epochs are uniform permutations (``uniform`` is True) and
      :meth:`loss_weights` gives the batch's loss weights (U_i + epsilon) / mean over the batch,
      1 during the first ``burn_in`` epochs. The training loop must apply them to the loss; the
      experiment layer (:mod:`mlbs.experiments`) does not, and refuses this mode.

    Memory: 16 bytes per entry, 8 per sample. A ring buffer of the last predictions (instead of
    the full history) is not implemented.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    config : ActiveBiasConfig, optional
        The settings (defaults: ``ActiveBiasConfig()``).
    refresh : {"epoch"}, optional
    seed : int
        Seed of the draws.
    **settings
        Fields of :class:`ActiveBiasConfig`, overriding ``config``'s.
    """

    Config = ActiveBiasConfig

    def __init__(self, labels: MatrixLike, config: ActiveBiasConfig | None = None, *, refresh: str | None = None,
                 seed: int = 0, **settings: Any):
        cfg = configured(ActiveBiasConfig, config, settings)
        super().__init__(labels, refresh=refresh, schedule_eval=cfg.schedule_eval, seed=seed)
        self.config = cfg
        self.epsilon = 0.02 * self.q if cfg.epsilon is None else float(cfg.epsilon)
        self.pressure = check_schedule("pressure", d2ace_pressure() if cfg.pressure is None else cfg.pressure,
                                       number_above=1)
        self.mode = cfg.mode
        self.uniform = cfg.mode == "weight"
        self.signals = RunningMoments(self.n, self.q)

    def _visit(self, idx, outputs, kind):
        self.signals.visit(idx, probabilities_of(outputs, kind))
        return per_sample_bce_csr(outputs, idx, self.labels, kind=kind)

    def scores(self) -> np.ndarray:
        """U_i = sum_j sigma_ij."""
        return self.signals.sigma_hat(self.config.ddof).sum(axis=1)

    def _weights(self, epoch: int) -> np.ndarray:
        if self.config.transform == "proportional":
            return self.scores() + self.epsilon
        return quantized_min_max(self.scores(), self.pressure(epoch), clip=self.config.qmm_clip)

    def loss_weights(self, indices: npt.ArrayLike) -> np.ndarray:
        """SGD-WPV weights of a batch: (U_i + epsilon) / mean over the batch (1 during burn-in)."""
        idx = checked_indices(indices, self.n)
        if idx.size == 0:
            raise ValueError("loss_weights needs a non-empty batch")
        if self.epochs_finished < self.config.burn_in:
            return np.ones(idx.size)
        u = self.signals.sigma_hat(self.config.ddof, idx).sum(axis=1)
        w = u + self.epsilon
        return w / w.mean()

    def _settings(self) -> dict:
        return {**super()._settings(), "mode": self.mode}
