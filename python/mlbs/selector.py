"""The framework-agnostic batch selector: numpy index batches in, observations back.

A :class:`BatchSelector` runs a policy through the epochs of a training run, as Zhou et al. (2024)
schedule it (references: ``docs/references.md``):

- warm-up epochs (e < gamma): a fresh seeded permutation per epoch (``warmup_order="shuffle"``)
  or the stored order (``"sequential"``); observations fill the policy's tables;
- selective epochs (e >= gamma): ceil(N/B) batches, each B distinct samples drawn from the
  policy's current distribution; the last batch is partial (``batch_sizes="partial_last"``, N
  draws per epoch) or full (``"all_full"``, the authors' code);
- a uniform policy (Random) shuffles in every epoch.

Batches are drawn lazily, when the consumer asks for the next one, so with ``refresh="batch"``
every batch sees all observations made before it was requested. Batches handed out but not yet
observed are remembered ("outstanding"): a checkpoint taken between batches (``state_dict``)
resumes with exactly the batches the uninterrupted run would have produced, including batches a
data loader had prefetched.

Observations are matched to outstanding batches by their sample ids, in any order: a batch may be
observed as a permutation of its ids, in parts (one part per process), or together with other
batches. An observation holding exactly the ids of an outstanding batch goes to the oldest such
batch; otherwise each id goes to the oldest outstanding batch that holds it unobserved. Ids that
no outstanding batch holds are refused. A batch is done when all its ids have been observed.
Since a policy keeps per-sample tables, the observation reaches the right samples whichever of
two outstanding batches holding the same sample is credited.

Example
-------
>>> selector = BatchSelector(Adaptive(Y, X), batch_size=128, warmup_epochs=3, seed=0)
>>> for epoch in range(epochs):
...     for batch in selector.epoch(epoch):
...         logits = train_step(X[batch], Y[batch])
...         selector.observe(batch, logits)
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Callable, Iterator

import numpy as np
import numpy.typing as npt

from mlbs.policies.base import Policy

WARMUP_ORDERS = ("shuffle", "sequential")
BATCH_SIZES = ("partial_last", "all_full")


class UnobservedBatchWarning(RuntimeWarning):
    """Batches of an epoch were handed out and never observed."""


class _Outstanding:
    """A batch handed out, with the positions of its ids observed so far."""

    __slots__ = ("batch", "seen")

    def __init__(self, batch: np.ndarray):
        self.batch = batch
        self.seen = np.zeros(batch.shape[0], dtype=bool)


class BatchSelector:
    """Yields the index batches of each epoch from a policy and passes observations to it.

    Parameters
    ----------
    policy : Policy
    batch_size : int
        B, at most the number of samples.
    warmup_epochs : int, optional
        gamma >= 0. Default: the policy's ``warmup_epochs``, the warm-up of its method's paper
        (3 for Adaptive, Zhou et al. 2024).
    warmup_order : {"shuffle", "sequential"}
    batch_sizes : {"partial_last", "all_full"}
    seed : int
        Seed of the warm-up and Random permutations (epoch e uses the stream (seed, e)).
    """

    def __init__(self, policy: Policy, batch_size: int, *, warmup_epochs: int | None = None,
                 warmup_order: str = "shuffle", batch_sizes: str = "partial_last", seed: int = 0):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be an mlbs Policy, got {type(policy).__name__}")
        if not 1 <= int(batch_size) <= policy.n:
            raise ValueError(f"batch_size must be between 1 and the number of samples ({policy.n}), "
                             f"got {batch_size}")
        if warmup_epochs is None:
            warmup_epochs = policy.warmup_epochs
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
        self._outstanding: list[_Outstanding] = []  # handed out, not fully observed, oldest first

    def __len__(self) -> int:
        """Batches per epoch: ceil(N / B)."""
        return -(-self.policy.n // self.batch_size)

    @property
    def pending(self) -> list[np.ndarray]:
        """The outstanding batches (handed out, not fully observed), oldest first."""
        return [o.batch for o in self._outstanding]

    def batch_length(self, position: int) -> int:
        """Length of the batch at ``position`` (0-based) in an epoch."""
        if self.batch_sizes == "all_full":
            return self.batch_size
        return min(self.batch_size, self.policy.n - position * self.batch_size)

    def is_selective(self, epoch: int) -> bool:
        return not self.policy.uniform and epoch >= self.warmup_epochs

    def epoch(self, epoch: int, *, before_draw: Callable[[], None] | None = None) -> Iterator[np.ndarray]:
        """The batches of ``epoch`` (an iterator of int64 index arrays).

        Entering a new epoch closes the previous one (``policy.end_epoch``) and, at the first
        selective epoch, builds the policy's distribution from the warm-up observations; batches
        of the previous epoch never observed are forgotten, with an :class:`UnobservedBatchWarning`
        (unless the policy is uniform).
        Re-entering the current epoch (after ``load_state_dict``) resumes where it stopped.

        ``before_draw`` is called right before each batch drawn from the policy (not before the
        warm-up permutations or replayed batches), for observations still to be delivered.
        """
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.current_epoch:
            if epoch < self.current_epoch:
                raise ValueError(f"epoch {epoch} is before the current epoch {self.current_epoch}")
            if self._outstanding and not self.policy.uniform:  # a uniform policy needs no observations
                warnings.warn(UnobservedBatchWarning(
                    f"{len(self._outstanding)} batch(es) handed out in epoch {self.current_epoch} were never "
                    f"observed (the first holds samples {self._outstanding[0].batch[:5].tolist()}...); their "
                    "samples keep their previous losses. discard() a batch that is skipped on purpose."),
                    stacklevel=2)
            if self.current_epoch >= 0:
                self.policy.end_epoch()
            self.current_epoch, self.position = epoch, 0
            self._outstanding = []
        if self.is_selective(epoch) and not self.policy.selecting:
            self.policy.start_selection()
        return self._batches(epoch, before_draw)

    def _batches(self, epoch: int, before_draw) -> Iterator[np.ndarray]:
        replay = self.pending  # handed out before a checkpoint, not observed
        yield from replay
        order = None if self.is_selective(epoch) else self._permutation(epoch)
        while self.position < len(self):
            if order is not None:
                start = self.position * self.batch_size
                batch = order[start:start + self.batch_size]
            else:
                if before_draw is not None:
                    before_draw()
                batch = self.policy.draw(self.batch_length(self.position))
            self.position += 1
            self._outstanding.append(_Outstanding(batch))
            yield batch

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.policy.uniform and self.warmup_order == "sequential":
            return np.arange(self.policy.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.policy.n)

    # -- observations --------------------------------------------------------------------------
    def observe(self, indices: npt.ArrayLike, outputs: npt.ArrayLike | None = None, *, kind: str = "logits",
                losses: npt.ArrayLike | None = None) -> None:
        """Record observations of outstanding batches (see :meth:`Policy.observe`).

        ``indices`` are the samples of ``outputs`` (or ``losses``), in their order: a batch
        handed out, in any order, a part of one, or several together. Each id is matched to the
        oldest outstanding batch holding it unobserved; ids matching none raise ``ValueError``
        naming them, and nothing changes.
        """
        ids = self._as_ids(indices)
        claims = self._match(ids)
        self.policy.observe(ids, outputs, kind=kind, losses=losses)
        self._settle(claims)

    def discard(self, indices: npt.ArrayLike) -> None:
        """Forget outstanding ids that will never be observed (a batch skipped on purpose).

        Their samples keep their previous losses. ``indices`` are matched as in :meth:`observe`.
        """
        self._settle(self._match(self._as_ids(indices)))

    @staticmethod
    def _as_ids(indices) -> np.ndarray:
        ids = np.asarray(indices)
        if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise ValueError(f"indices must be a 1-d array of sample ids, got shape {ids.shape}, dtype {ids.dtype}")
        return ids.astype(np.int64, copy=False)

    def _match(self, ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(outstanding batch number, positions in it) for every id; raises if an id matches none."""
        for k, o in enumerate(self._outstanding):  # the common case: one whole batch
            if o.batch.shape == ids.shape and not o.seen.any():
                if np.array_equal(o.batch, ids):
                    return [(k, np.arange(ids.size))]
                order = np.argsort(o.batch, kind="stable")
                positions = order[np.searchsorted(o.batch, ids, sorter=order).clip(0, ids.size - 1)]
                if np.array_equal(o.batch[positions], ids) and np.unique(positions).size == ids.size:
                    return [(k, positions)]
        unseen = [np.flatnonzero(~o.seen) for o in self._outstanding]
        slot_batch = np.repeat(np.arange(len(unseen)), [u.size for u in unseen])
        slot_pos = np.concatenate(unseen) if unseen else np.zeros(0, dtype=np.int64)
        slot_ids = (np.concatenate([o.batch[u] for o, u in zip(self._outstanding, unseen)])
                    if unseen else np.zeros(0, dtype=np.int64))
        slot, matched = oldest_free_slots(ids, slot_ids)
        if not matched.all():
            unmatched = ids[~matched].tolist()
            raise ValueError(f"{len(unmatched)} observed id(s) match no batch handed out and not yet observed: "
                             f"{unmatched[:10]}{'...' if len(unmatched) > 10 else ''} "
                             f"({len(self._outstanding)} batch(es) outstanding)")
        batches, positions = slot_batch[slot], slot_pos[slot]
        return [(int(k), positions[batches == k]) for k in np.unique(batches)]

    def _settle(self, claims: list[tuple[int, np.ndarray]]) -> None:
        for k, positions in claims:
            self._outstanding[k].seen[positions] = True
        self._outstanding = [o for o in self._outstanding if not o.seen.all()]

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Epoch, position, the outstanding batches (whole, to be replayed) and the policy's state.

        A batch observed only in part when the checkpoint is taken is replayed whole.
        """
        return {"epoch": self.current_epoch, "position": self.position,
                "pending": [b.copy() for b in self.pending], "policy": self.policy.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.current_epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._outstanding = [_Outstanding(np.asarray(b, dtype=np.int64)) for b in state["pending"]]

    def fingerprint(self) -> int:
        """A 64-bit hash of the options, the position and the policy's state.

        Two selectors that would hand out the same future batches for the same observations have
        the same fingerprint; used to check that processes of a distributed run agree.
        """
        digest = hashlib.blake2b(digest_size=8)
        _feed(digest, [type(self.policy).__name__, self.policy.n, self.batch_size, self.warmup_epochs,
                       self.warmup_order, self.batch_sizes, self.seed, self.state_dict()])
        return int.from_bytes(digest.digest(), "little", signed=True)


def oldest_free_slots(ids: np.ndarray, slot_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match the j-th occurrence of each id in ``ids`` to the j-th slot holding that id.

    ``slot_ids`` lists the free slots oldest first. Returns (slot index per id, whether the id
    found a slot); an id has none when it occurs more often than its free slots. O((m + s) log s)
    with two stable sorts: within an id, both sorts keep the original order, so the j-th
    occurrence meets the j-th oldest slot.
    """
    slot_order = np.argsort(slot_ids, kind="stable")
    sorted_slots = slot_ids[slot_order]
    id_order = np.argsort(ids, kind="stable")
    sorted_ids = ids[id_order]
    occurrence = np.arange(sorted_ids.size) - np.searchsorted(sorted_ids, sorted_ids, side="left")
    first = np.searchsorted(sorted_slots, sorted_ids, side="left")
    found = first + occurrence < np.searchsorted(sorted_slots, sorted_ids, side="right")
    slot, matched = np.zeros(ids.size, dtype=np.int64), np.zeros(ids.size, dtype=bool)
    matched[id_order] = found
    slot[id_order[found]] = slot_order[(first + occurrence)[found]]
    return slot, matched


def _feed(digest, value) -> None:
    """Feed a nested structure of dicts, sequences, arrays and scalars into ``digest``, canonically."""
    if isinstance(value, dict):
        digest.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, np.ndarray) or hasattr(value, "__array__") and not np.isscalar(value):
        array = np.ascontiguousarray(np.asarray(value))
        digest.update(f"a{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    else:
        digest.update(f"s{type(value).__name__}:{value!r}".encode())
