"""The framework-agnostic batch selector: numpy index batches in, observations back.

A :class:`BatchSelector` runs a policy through the epochs of a training run (methods.md 2.1):

- warm-up epochs (e < gamma): a fresh seeded permutation per epoch (``warmup_order="shuffle"``)
  or the stored order (``"sequential"``); observations fill the policy's tables;
- selective epochs (e >= gamma): ceil(N/B) batches, each B distinct samples drawn from the
  policy's current distribution; the last batch is partial (``batch_sizes="partial_last"``, N
  draws per epoch) or full (``"all_full"``, the authors' code);
- a uniform policy (Random) shuffles in every epoch.

Batches are drawn lazily, when the consumer asks for the next one, so with ``refresh="batch"``
every batch sees all observations made before it was requested. Batches handed out but not yet
observed are remembered: a checkpoint taken between batches (``state_dict``) resumes with exactly
the batches the uninterrupted run would have produced, including batches a data loader had
prefetched.

Example
-------
>>> selector = BatchSelector(Adaptive(Y, X), batch_size=128, warmup_epochs=3, seed=0)
>>> for epoch in range(epochs):
...     for batch in selector.epoch(epoch):
...         logits = train_step(X[batch], Y[batch])
...         selector.observe(batch, logits)
"""

from __future__ import annotations

from collections import deque
from typing import Iterator

import numpy as np

from mlbs.policies.base import Policy

WARMUP_ORDERS = ("shuffle", "sequential")
BATCH_SIZES = ("partial_last", "all_full")


class BatchSelector:
    """Yields the index batches of each epoch from a policy and passes observations to it.

    Parameters
    ----------
    policy : Policy
    batch_size : int
        B, at most the number of samples.
    warmup_epochs : int
        gamma >= 0 (default 3, the seed paper's).
    warmup_order : {"shuffle", "sequential"}
    batch_sizes : {"partial_last", "all_full"}
    seed : int
        Seed of the warm-up and Random permutations (epoch e uses the stream (seed, e)).
    """

    def __init__(self, policy: Policy, batch_size: int, *, warmup_epochs: int = 3,
                 warmup_order: str = "shuffle", batch_sizes: str = "partial_last", seed: int = 0):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be an mlbs Policy, got {type(policy).__name__}")
        if not 1 <= int(batch_size) <= policy.n:
            raise ValueError(f"batch_size must be between 1 and the number of samples ({policy.n}), "
                             f"got {batch_size}")
        if int(warmup_epochs) < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if warmup_order not in WARMUP_ORDERS:
            raise ValueError(f"warmup_order must be one of {WARMUP_ORDERS}, got {warmup_order!r}")
        if batch_sizes not in BATCH_SIZES:
            raise ValueError(f"batch_sizes must be one of {BATCH_SIZES}, got {batch_sizes!r}")
        self.policy = policy
        self.batch_size = int(batch_size)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_order = warmup_order
        self.batch_sizes = batch_sizes
        self.seed = int(seed)
        self.current_epoch = -1   # epoch being iterated
        self.position = 0         # batches handed out in the current epoch
        self.pending: deque[np.ndarray] = deque()  # handed out, not observed yet

    def __len__(self) -> int:
        """Batches per epoch: ceil(N / B)."""
        return -(-self.policy.n // self.batch_size)

    def is_selective(self, epoch: int) -> bool:
        return not self.policy.uniform and epoch >= self.warmup_epochs

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        """The batches of ``epoch`` (an iterator of int64 index arrays).

        Entering a new epoch closes the previous one (``policy.end_epoch``) and, at the first
        selective epoch, builds the policy's distribution from the warm-up observations.
        Re-entering the current epoch (after ``load_state_dict``) resumes where it stopped.
        """
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.current_epoch:
            if epoch < self.current_epoch:
                raise ValueError(f"epoch {epoch} is before the current epoch {self.current_epoch}")
            if self.current_epoch >= 0:
                self.policy.end_epoch()
            self.current_epoch, self.position = epoch, 0
            self.pending.clear()
        if self.is_selective(epoch) and not self.policy.selecting:
            self.policy.start_selection()
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[np.ndarray]:
        replay = list(self.pending)  # handed out before a checkpoint, not observed
        yield from replay
        n, B = self.policy.n, self.batch_size
        order = None if self.is_selective(epoch) else self._permutation(epoch)
        while self.position < len(self):
            start = self.position * B
            if order is not None:
                batch = order[start:start + B]
            else:
                size = B if self.batch_sizes == "all_full" else min(B, n - start)
                batch = self.policy.draw(size)
            self.position += 1
            self.pending.append(batch)
            yield batch

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.policy.uniform and self.warmup_order == "sequential":
            return np.arange(self.policy.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.policy.n)

    def observe(self, indices, outputs=None, *, kind: str = "logits", losses=None) -> None:
        """Record the oldest batch handed out and not yet observed (see :meth:`Policy.observe`).

        ``indices`` must be that batch, in the same order.
        """
        if not self.pending:
            raise RuntimeError("observe() without a batch handed out and not yet observed")
        expected = self.pending[0]
        got = np.asarray(indices)
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise ValueError("observe() must receive the batches in the order they were handed out: "
                             f"expected the batch starting {expected[:5].tolist()}, got {got[:5].tolist()}")
        self.policy.observe(expected, outputs, kind=kind, losses=losses)
        self.pending.popleft()

    def state_dict(self) -> dict:
        return {"epoch": self.current_epoch, "position": self.position,
                "pending": [b.copy() for b in self.pending], "policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.current_epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.pending = deque(np.asarray(b, dtype=np.int64) for b in state["pending"])
