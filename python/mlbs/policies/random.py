"""``Random``: a fresh uniform permutation every epoch (the baseline of every paper)."""

from __future__ import annotations

import numpy as np

from mlbs.policies.base import Policy, check_numpy_rng_state
from mlbs.typing import MatrixLike


class Random(Policy):
    """Uniform selection: epochs are plain permutations of the training set.

    ``draw`` (k distinct uniform samples) exists for completeness; the selector shuffles.
    """

    uniform = True
    warmup_epochs = 0
    default_refresh = "epoch"

    def __init__(self, labels: MatrixLike, *, seed: int = 0):
        super().__init__(labels, refresh="epoch")
        self.rng = np.random.default_rng(seed)

    def rebuild(self) -> None:
        """Nothing to rebuild: P is uniform."""

    def draw(self, k: int) -> np.ndarray:
        """k distinct uniform samples: rejection of repeats (O(k log k)) when k <= n/4, else a
        permutation prefix. Draws that repeat an earlier one are replaced by fresh draws, in
        order, which is sequential uniform sampling without replacement."""
        if 4 * k > self.n:
            return self.rng.permutation(self.n)[:k]
        out = self.rng.integers(self.n, size=k)
        while True:
            ordered = np.sort(out)
            if not (ordered[1:] == ordered[:-1]).any():  # the usual case when k^2 << n
                return out
            _, first = np.unique(out, return_index=True)
            out = np.concatenate([out[np.sort(first)], self.rng.integers(self.n, size=k - first.size)])

    def probabilities(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rng": self.rng.bit_generator.state}

    def _check_state(self, state: dict) -> None:
        check_numpy_rng_state(state, "rng")

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.rng.bit_generator.state = state["rng"]
