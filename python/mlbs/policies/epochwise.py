"""Base of the history-based policies (Uncertain, D2ACE, ActiveBias, RecencyBias).

Their scores are defined per epoch: observations update per-sample, per-label signals
(:mod:`mlbs.signals`), and P is rebuilt from them at the end of every epoch, from the model's
outputs of every label (per-sample losses alone are not enough). The policy counts the finished
epochs (one per ``end_epoch`` call, which :class:`mlbs.selector.BatchSelector` makes when the
next epoch starts) and reads its schedules at :func:`mlbs.policies.schedules.evaluation_epoch`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlbs.core import WeightedIndex
from mlbs.policies.base import Policy, check_rng_state, check_weights
from mlbs.policies.schedules import evaluation_epoch
from mlbs.signals.observation import checked_observation, last_occurrence
from mlbs.typing import MatrixLike


class EpochPolicy(Policy):
    """P from per-label signals, rebuilt once per epoch, drawn from a :class:`WeightedIndex`.

    Subclasses implement :meth:`_visit` (update the signals of the visited rows, return their
    mean BCE) and :meth:`_weights` (the unnormalised weights of all samples at the evaluation
    epoch). Before the first rebuild P is uniform.

    Attributes
    ----------
    signals : mlbs.signals.tables.SignalTables
        The per-(sample, label) tables the subclass keeps (set by its constructor).
    epochs_finished : int
        ``end_epoch`` calls so far: the index of the epoch that P is drawn for.
    """

    warmup_epochs = 10
    observation = "outputs"
    default_refresh = "epoch"

    def __init__(self, labels: MatrixLike, *, refresh: str | None = None, schedule_eval: str = "lagged",
                 seed: int = 0):
        if refresh not in (None, "epoch"):
            raise ValueError(f"{type(self).__name__} scores are defined per epoch: "
                             f"refresh must be 'epoch', got {refresh!r}")
        super().__init__(labels, refresh="epoch")
        evaluation_epoch(0, schedule_eval)  # validates
        self.schedule_eval = schedule_eval
        self.epochs_finished = 0
        self.index = WeightedIndex(self.n, seed=seed)
        self.index.assign(np.ones(self.n))

    # -- observations --------------------------------------------------------------------------
    def observe(self, indices: npt.ArrayLike, outputs: npt.ArrayLike | None = None, *, kind: str = "logits",
                losses: npt.ArrayLike | None = None) -> None:
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
    def _settings(self) -> dict:
        return {**super()._settings(), "schedule_eval": self.schedule_eval, **self.signals.settings()}

    def _tables(self) -> dict:
        return {**super()._tables(), "index": self.index.weights(), **self.signals.tables()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "epochs_finished": self.epochs_finished, "rng": self.index.rng_state}

    def _check_state(self, state: dict) -> None:
        check_weights(state, "index")
        check_rng_state(state, "rng")
        done = state.get("epochs_finished")
        if not (isinstance(done, (int, np.integer)) and done >= 0):
            raise ValueError(f"state's 'epochs_finished' must be an int >= 0, got {done!r}")

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.epochs_finished = int(state["epochs_finished"])
        self.index.assign(np.asarray(state["index"], dtype=np.float64))
        self.index.rng_state = check_rng_state(state, "rng")
        self.signals.restore(state)
