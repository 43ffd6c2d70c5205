"""``Hard``: online batch selection, rank-based (Loshchilov & Hutter 2016; seed paper eq. 3)."""

from __future__ import annotations

import numpy as np

from mlbs import RankIndex
from mlbs.policies.base import Policy, check_pressure


class Hard(Policy):
    """p_i proportional to s^(r_i / N), r_i the ascending rank of sample i's latest loss.

    Ranks are exact at every draw: the losses live in a :class:`mlbs.RankIndex` (sorted blocks
    with a Fenwick tree over their sizes), so changing one loss and drawing one sample are
    O(log N). Equal losses are ranked by sample index (methods.md 4, "Edge cases").

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    pressure : float
        Selection pressure s > 1 (default 8): the top-ranked sample is s times as likely as
        the bottom one.
    refresh : {"batch", "epoch"}
    seed : int
    """

    def __init__(self, labels, *, pressure: float = 8.0, refresh: str = "batch", seed: int = 0):
        super().__init__(labels, refresh=refresh, seed=seed)
        self.pressure = check_pressure(pressure)
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

    def state_dict(self) -> dict:
        return {**super().state_dict(), "index": self.index.scores(), "rng": self.index.rng_state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.index.assign(state["index"])
        self.index.rng_state = tuple(state["rng"])
