"""Base of the history-based policies (uncertain, d2ace, active_bias, recency_bias).

Their scores are defined per epoch (methods.md 2.2): observations update per-sample, per-label
signals, and P is rebuilt from them at the end of every epoch, from the model's outputs of every
label (per-sample losses alone are not enough). The policy counts the finished epochs (one per
``end_epoch`` call, which :class:`mlbs.selector.BatchSelector` makes when the next epoch starts)
and reads its schedules at :func:`mlbs.policies.schedules.evaluation_epoch`.
"""

from __future__ import annotations

import numpy as np
from mlbs import WeightedIndex
from mlbs._core import _outputs_valid
from mlbs.losses import check_indices, check_observation, last_occurrence
from mlbs.policies.base import Policy
from mlbs.policies.schedules import evaluation_epoch

#: Sampling warm-up these methods were published with (methods.md 0); the selector owns it.
DEFAULT_WARMUP_EPOCHS = 10


def resolve_options(presets: dict, compat, given: dict, defaults: dict) -> dict:
    """Options from (explicit argument) > (compat preset) > (default)."""
    if compat is not None and compat not in presets:
        raise ValueError(f"compat must be one of {sorted(presets)} or None, got {compat!r}")
    preset = presets.get(compat, {})
    return {k: given[k] if given.get(k) is not None else preset.get(k, v) for k, v in defaults.items()}


def checked_observation(indices, outputs, n: int, q: int, kind: str):
    """:func:`mlbs.losses.check_observation` with a compiled fast path for the usual batch.

    A C-contiguous float32/float64 (B, q) array whose entries are all finite (in [0, 1] for
    probabilities) is accepted after one compiled pass; anything else, and every failure, goes
    through :func:`check_observation`, so the errors and their messages are the same.
    """
    if (isinstance(outputs, np.ndarray) and outputs.dtype in (np.float32, np.float64) and outputs.ndim == 2
            and outputs.flags.c_contiguous and kind in ("logits", "probabilities")):
        idx = check_indices(indices, n)
        if outputs.shape == (idx.size, q) and _outputs_valid(outputs, kind == "probabilities"):
            return idx, outputs
    return check_observation(indices, outputs, n, q, kind=kind)


class EpochPolicy(Policy):
    """P from per-label signals, rebuilt once per epoch, drawn from a :class:`WeightedIndex`.

    Subclasses implement :meth:`_visit` (update the signals of the visited rows, return their
    mean BCE) and :meth:`_weights` (the unnormalised weights of all samples at the evaluation
    epoch). Before the first rebuild P is uniform.

    Attributes
    ----------
    epochs_finished : int
        ``end_epoch`` calls so far: the index of the epoch that P is drawn for.
    """

    default_warmup_epochs = DEFAULT_WARMUP_EPOCHS

    def __init__(self, labels, *, refresh: str = "epoch", schedule_eval: str = "lagged", seed: int = 0):
        if refresh != "epoch":
            raise ValueError(f"{type(self).__name__} scores are defined per epoch (methods.md 2.2): "
                             f"refresh must be 'epoch', got {refresh!r}")
        super().__init__(labels, refresh=refresh, seed=seed)
        evaluation_epoch(0, schedule_eval)  # validates
        self.schedule_eval = schedule_eval
        self.epochs_finished = 0
        self.index = WeightedIndex(self.n, seed=seed)
        self.index.assign(np.ones(self.n))

    # -- observations --------------------------------------------------------------------------
    def observe(self, indices, outputs=None, *, kind: str = "logits", losses=None) -> None:
        """Record the batch just trained (see :meth:`Policy.observe`); ``outputs`` is required.

        A repeated index keeps only its last row (last write wins, as in the base class).
        """
        if losses is not None or outputs is None:
            raise ValueError(f"{type(self).__name__} keeps per-label signals: give the model's "
                             "outputs= of every label, not per-sample losses=")
        idx, out = checked_observation(indices, outputs, self.n, self.q, kind)
        idx, out = last_occurrence(idx, out)
        self.loss[idx] = self._visit(idx, out, kind)

    def _visit(self, idx: np.ndarray, outputs: np.ndarray, kind: str) -> np.ndarray:
        raise NotImplementedError

    def _weights(self, epoch: int) -> np.ndarray:
        raise NotImplementedError

    # -- the distribution ------------------------------------------------------------------------
    @property
    def schedule_epoch(self) -> int:
        """Epoch at which the schedules are read by the next rebuild."""
        return evaluation_epoch(self.epochs_finished, self.schedule_eval)

    def end_epoch(self) -> None:
        self.epochs_finished += 1
        super().end_epoch()

    def rebuild(self) -> None:
        self.index.assign(self._weights(self.schedule_epoch))

    def draw(self, k: int) -> np.ndarray:
        return self.index.draw_distinct(k)

    def probabilities(self) -> np.ndarray:
        return self.index.probabilities()

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(), "epochs_finished": self.epochs_finished,
                "index": self.index.weights(), "rng": self.index.rng_state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.epochs_finished = int(state["epochs_finished"])
        self.index.assign(np.asarray(state["index"], dtype=np.float64))
        self.index.rng_state = tuple(state["rng"])
