"""``Random``: a fresh uniform permutation every epoch (methods.md 3)."""

from __future__ import annotations

import numpy as np

from mlbs.policies.base import Policy


class Random(Policy):
    """Uniform selection: epochs are plain permutations of the training set.

    ``draw`` (k distinct uniform samples) exists for completeness; the selector shuffles.
    """

    uniform = True

    def __init__(self, labels, *, seed: int = 0):
        super().__init__(labels, refresh="epoch", seed=seed)
        self.rng = np.random.default_rng(seed)

    def rebuild(self) -> None:
        """Nothing to rebuild: P is uniform."""

    def draw(self, k: int) -> np.ndarray:
        """k distinct uniform samples: rejection of repeats (O(k)) when k <= n/4, else a
        permutation prefix."""
        if 4 * k > self.n:
            return self.rng.permutation(self.n)[:k]
        out = np.empty(0, dtype=np.int64)
        while out.size < k:
            more = self.rng.integers(self.n, size=k - out.size)
            both = np.concatenate([out, more])
            _, first = np.unique(both, return_index=True)
            out = both[np.sort(first)]
        return out

    def probabilities(self) -> np.ndarray:
        return np.full(self.n, 1.0 / self.n)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.rng.bit_generator.state = state["rng"]
