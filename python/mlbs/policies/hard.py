"""``Hard``: online batch selection, rank-based (Loshchilov & Hutter 2016; Zhou et al. 2024, eq. 3)."""

from __future__ import annotations

import numpy as np

from mlbs.core import RankIndex
from mlbs.policies.base import Policy, check_pressure, check_rng_state
from mlbs.typing import MatrixLike


class Hard(Policy):
    """p_i proportional to s^(r_i / N), r_i the ascending rank of sample i's latest loss.

    Ranks are exact at every draw: the losses live in a :class:`mlbs.RankIndex` (sorted blocks
    with a Fenwick tree over their sizes), so changing one loss and drawing one sample are
    O(log N). Equal losses are ranked by sample index.

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    pressure : float
        Selection pressure s > 1 (default 8): the top-ranked sample is s times as likely as
        the bottom one.
    refresh : {"batch", "epoch"}, optional
    seed : int
        Seed of the draws.
    """

    def __init__(self, labels: MatrixLike, *, pressure: float = 8.0, refresh: str | None = None, seed: int = 0):
        super().__init__(labels, refresh=refresh)
        self.pressure = check_pressure(pressure, self.n)
        self.index = RankIndex(self.n, seed=seed)

    def _observed(self, idx: np.ndarray, loss: np.ndarray) -> None:
        if self.selecting and self.refresh == "batch":
            self.index.update(idx, loss)

    def rebuild(self) -> None:
        self.index.assign(self.loss)

    def draw(self, k: int) -> np.ndarray:
        return self.index.draw_distinct(k, self.pressure)

    def probabilities(self) -> np.ndarray:
        return self.index.probabilities(self.pressure)

    def _tables(self) -> dict:
        return {**super()._tables(), "index": self.index.scores()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rng": self.index.rng_state}

    def _check_state(self, state: dict) -> None:
        check_rng_state(state, "rng")

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.index.assign(np.asarray(state["index"], dtype=np.float64))
        self.index.rng_state = check_rng_state(state, "rng")
