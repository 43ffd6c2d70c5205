"""History-based baselines adapted to multi-label data: ``ActiveBias`` (methods.md 9) and
``RecencyBias`` (methods.md 10)."""

from __future__ import annotations

import numpy as np

from mlbs.losses import per_sample_bce_csr
from mlbs.policies.epochwise import EpochPolicy, resolve_options
from mlbs.policies.schedules import ExpDecay, check_schedule, d2ace_pressure
from mlbs.policies.signals import RecentBits, RunningMoments, probabilities_of
from mlbs.policies.transforms import quantized_min_max

#: The [CU] ``analyse.ipynb`` schedule, 10 -> 1 over epochs 0 -> 100 (with a 5-epoch warm-up).
ANALYSE_PRESSURE = ExpDecay(10.0, 1.0, 0, 100)
ACTIVE_BIAS_PRESETS = {"uncertainty_batch_analyse": {"pressure": ANALYSE_PRESSURE}}
RECENCY_BIAS_PRESETS = {"uncertainty_batch_analyse": {"pressure": ANALYSE_PRESSURE, "window": 5}}


class ActiveBias(EpochPolicy):
    """Prediction-variance selection: U_i = sum_j sigma_ij (methods.md 9, default).

    sigma_ij = sqrt(var_ij + var_ij^2 / (n_i - 1)) from the full history of p_ij (Welford,
    :class:`RunningMoments`; ddof 1 as in [CU], 0 as in [K]); 0 while n_i < 2.

    - ``mode="sample"``, ``transform="qmm"`` (default): P = QMM(U, s(e)), s from
      ``ExpDecay(8, 1, 10, 100, floor=1)`` (the schedule of the other multi-label methods);
    - ``transform="proportional"``: P_i proportional to U_i + epsilon (SGD-SPV), epsilon = 0.02 q;
    - ``mode="weight"`` (SGD-WPV): the epochs are uniform permutations (``uniform`` is True) and
      :meth:`loss_weights` gives the batch's loss weights (U_i + epsilon) / mean over the batch,
      1 during the first ``burn_in`` epochs.

    Memory: 16 bytes per entry, 8 per sample (:class:`RunningMoments`). The ring-buffer
    ``window`` option of methods.md 9 is not implemented.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    pressure : float or callable epoch -> s
    ddof : {0, 1}
    transform : {"qmm", "proportional"}
    epsilon : float, optional
        Default 0.02 q.
    mode : {"sample", "weight"}
    burn_in : int
        Epochs of unit loss weights in ``mode="weight"`` (default 10).
    qmm_clip : bool
    schedule_eval : {"lagged", "current"}
    compat : {None, "uncertainty_batch_analyse"}
    seed : int
    """

    def __init__(self, labels, *, pressure=None, ddof: int = 1, transform: str = "qmm", epsilon=None,
                 mode: str = "sample", burn_in: int = 10, qmm_clip: bool = False,
                 schedule_eval: str = "lagged", compat=None, refresh: str = "epoch", seed: int = 0):
        super().__init__(labels, refresh=refresh, schedule_eval=schedule_eval, seed=seed)
        opts = resolve_options(ACTIVE_BIAS_PRESETS, compat, {"pressure": pressure}, {"pressure": d2ace_pressure()})
        if ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
        if transform not in ("qmm", "proportional"):
            raise ValueError(f"transform must be 'qmm' or 'proportional', got {transform!r}")
        if mode not in ("sample", "weight"):
            raise ValueError(f"mode must be 'sample' or 'weight', got {mode!r}")
        self.epsilon = 0.02 * self.q if epsilon is None else float(epsilon)
        if not (np.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be finite and > 0, got {epsilon!r}")
        self.pressure = check_schedule("pressure", opts["pressure"])
        self.ddof, self.transform, self.mode = ddof, transform, mode
        self.burn_in, self.qmm_clip = int(burn_in), bool(qmm_clip)
        self.uniform = mode == "weight"
        self.moments = RunningMoments(self.n, self.q)

    def _visit(self, idx, outputs, kind):
        self.moments.visit(idx, probabilities_of(outputs, kind))
        return per_sample_bce_csr(outputs, idx, self.labels, kind=kind)

    def scores(self) -> np.ndarray:
        """U_i = sum_j sigma_ij."""
        return self.moments.sigma_hat(self.ddof).sum(axis=1)

    def _weights(self, epoch: int) -> np.ndarray:
        if self.transform == "proportional":
            return self.scores() + self.epsilon
        return quantized_min_max(self.scores(), self.pressure(epoch), clip=self.qmm_clip)

    def loss_weights(self, indices) -> np.ndarray:
        """SGD-WPV weights of a batch: (U_i + epsilon) / mean over the batch (1 during burn-in)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= self.n:
            raise ValueError(f"indices must be a non-empty 1-d array of sample ids in [0, {self.n})")
        if self.epochs_finished < self.burn_in:
            return np.ones(idx.size)
        u = self.moments.sigma_hat(self.ddof, idx).sum(axis=1)
        w = u + self.epsilon
        return w / w.mean()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "moments": self.moments.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.moments.load_state_dict(state["moments"])


class RecencyBias(EpochPolicy):
    """Entropy of the recent binarised predictions: U_i = sum_j H_2(ones_ij / fill_i) (methods.md 10).

    Per label the last w predictions [p_ij > 0.5] (:class:`RecentBits`, O(1) per entry and
    visit); u_ij = 0 with fewer than 2 stored predictions. P = QMM(U, s(e)) with
    ``ExpDecay(100, 1, 10, 100)`` and w = 10 (the [RB] defaults).

    Memory: 3 bytes per entry, 8 per sample.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    window : int
        w in [1, 16] (default 10).
    pressure : float or callable epoch -> s
    qmm_clip : bool
    schedule_eval : {"lagged", "current"}
    compat : {None, "uncertainty_batch_analyse"}
        w = 5, s 10 -> 1 over epochs 0 -> 100 (and a 5-epoch warm-up, set on the selector).
    seed : int
    """

    def __init__(self, labels, *, window=None, pressure=None, qmm_clip: bool = False,
                 schedule_eval: str = "lagged", compat=None, refresh: str = "epoch", seed: int = 0):
        super().__init__(labels, refresh=refresh, schedule_eval=schedule_eval, seed=seed)
        opts = resolve_options(RECENCY_BIAS_PRESETS, compat, {"pressure": pressure, "window": window},
                               {"pressure": ExpDecay(100.0, 1.0, 10, 100), "window": 10})
        self.pressure = check_schedule("pressure", opts["pressure"])
        self.qmm_clip = bool(qmm_clip)
        self.bits = RecentBits(self.n, self.q, opts["window"])

    def _visit(self, idx, outputs, kind):
        self.bits.visit(idx, probabilities_of(outputs, kind))
        return per_sample_bce_csr(outputs, idx, self.labels, kind=kind)

    def scores(self) -> np.ndarray:
        """U_i = sum_j u_ij."""
        return self.bits.uncertainty().sum(axis=1)

    def _weights(self, epoch: int) -> np.ndarray:
        return quantized_min_max(self.scores(), self.pressure(epoch), clip=self.qmm_clip)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bits": self.bits.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bits.load_state_dict(state["bits"])
