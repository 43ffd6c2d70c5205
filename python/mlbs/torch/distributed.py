"""Distributed data parallel: each rank trains its slice of the same global batches.

Every rank builds the same selector (same policy, options and seeds). Each step, every rank
observes its slice; the per-sample losses (float32, about B / world values per rank) and their
sample ids are all-gathered, so every rank's policy observes the whole global batch and all
ranks draw the same next global batch. The gather runs on the process group's device (CUDA
tensors under NCCL, CPU tensors under gloo) and is started without waiting: it completes while
the next step computes, and is waited for before the draw that needs it (see
:mod:`mlbs.torch.inflight`).

Ranks cannot silently diverge: at the start of every epoch and after ``load_state_dict``, the
ranks all-gather a fingerprint of their selector state and raise ``RuntimeError`` naming the
ranks that differ.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.distributed as dist

from mlbs.selector import BatchSelector
from mlbs.torch.inflight import Observation, Pending, to_device, to_host
from mlbs.torch.losses import per_sample_bce
from mlbs.torch.sampler import IN_FLIGHT, BatchSampler

#: What to do with a global batch smaller than the number of ranks (the last one, when
#: N mod B < world size): "pad" it by repeating its samples so that every rank gets one (the
#: repeats are trained but not observed), or "drop" it.
REMAINDERS = ("pad", "drop")


def group_device(group=None) -> torch.device:
    """The device collectives of ``group`` take: the current CUDA device under NCCL, else the CPU."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class DistributedBatchSampler(BatchSampler):
    """Each rank's slice of the global batches, with the policy state kept identical on all ranks.

    The global batch is split into ``num_replicas`` contiguous slices (``numpy.array_split``,
    sizes differing by at most one); rank r gets slice r.

    Parameters
    ----------
    selector : BatchSelector
        Built identically (same policy, options and seeds) on every rank.
    num_replicas, rank : int, optional
        Default: from the initialised ``torch.distributed`` process group.
    remainder : {"pad", "drop"}
        A global batch with fewer samples than ranks (see ``REMAINDERS``; default "pad").
    ahead, in_flight : int
        As in :class:`BatchSampler`; ``in_flight`` also counts the gathers still running.
    group : ProcessGroup, optional
        Default: the default process group.

    Notes
    -----
    Call ``state_dict()`` on every rank at the same step (it completes the gathers in flight)
    and save it from one; ``load_state_dict`` is collective too (it checks the fingerprints).
    """

    def __init__(self, selector: BatchSelector, num_replicas: int | None = None, rank: int | None = None, *,
                 remainder: str = "pad", ahead: int = 0, in_flight: int = IN_FLIGHT, group=None):
        super().__init__(selector, ahead=ahead, in_flight=in_flight)
        if num_replicas is None or rank is None:
            if not dist.is_available() or not dist.is_initialized():
                raise RuntimeError("DistributedBatchSampler needs an initialised torch.distributed process group "
                                   "(or explicit num_replicas and rank)")
            num_replicas, rank = dist.get_world_size(group), dist.get_rank(group)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if remainder not in REMAINDERS:
            raise ValueError(f"remainder must be one of {REMAINDERS}, got {remainder!r}")
        if selector.policy.n > np.iinfo(np.int32).max:
            raise ValueError(f"the gather carries sample ids as int32: at most {np.iinfo(np.int32).max} samples, "
                             f"got {selector.policy.n}")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.remainder = remainder
        self.group = group
        self._pads: deque[int] = deque()  # ids handed to this rank as padding, not to be observed

    @property
    def _collective(self) -> bool:
        return self.num_replicas > 1

    @property
    def _width(self) -> int:
        """The most samples a rank's slice holds: ceil(B / world)."""
        return -(-self.selector.batch_size // self.num_replicas)

    # -- slices ----------------------------------------------------------------------------------
    def _slice(self, batch: np.ndarray) -> tuple[np.ndarray, bool]:
        """(this rank's slice of a global batch, whether it is padding)."""
        if batch.shape[0] < self.num_replicas:
            return batch[[self.rank % batch.shape[0]]], self.rank >= batch.shape[0]
        return np.array_split(batch, self.num_replicas)[self.rank], False

    def _dropped(self, batch: np.ndarray) -> bool:
        return self.remainder == "drop" and batch.shape[0] < self.num_replicas

    def _global_batches(self):
        self._queue.drain(0)
        self.check_consistency()
        yield from super()._global_batches()

    def __iter__(self):
        for batch in self._global_batches():
            if self._dropped(batch):
                self.selector.discard(batch)
                continue
            part, pad = self._slice(batch)
            if pad:
                self._pads.append(int(part[0]))
            yield part.tolist()

    def __len__(self) -> int:
        last = self.selector.batch_length(len(self.selector) - 1)
        return len(self.selector) - (self.remainder == "drop" and last < self.num_replicas)

    def upcoming(self) -> list[np.ndarray]:
        return [self._slice(b)[0] for b in self._drawn_ahead if not self._dropped(b)]

    # -- observations ----------------------------------------------------------------------------
    def observe(self, outputs=None, *, indices=None, targets=None, losses=None, kind: str = "logits") -> None:
        """This rank's outputs (or losses) on its slice; see :meth:`BatchSampler.observe`.

        Without ``targets`` or ``losses``, the per-sample loss is computed against the policy's
        labels. Ids given as a CUDA tensor are read synchronously: keep the loader's CPU ids.
        """
        values, kind = self._values(outputs, targets, losses, kind)
        if indices is None:
            ids, pad = self._slice(self._oldest_batch(None))
            if values.shape[0] != ids.shape[0]:
                raise ValueError(f"rank {self.rank} observed {values.shape[0]} samples, its slice of the oldest "
                                 f"batch not yet observed has {ids.shape[0]}; pass indices= if it is another batch")
            observed = np.full(ids.shape[0], not pad)
        else:
            ids = torch.as_tensor(indices).cpu().numpy().astype(np.int64)
            if ids.shape != (values.shape[0],):
                raise ValueError(f"indices must have shape ({values.shape[0]},) like the observed rows, "
                                 f"got {ids.shape}")
            if ids.shape[0] > self._width:
                raise ValueError(f"rank {self.rank} observed {ids.shape[0]} samples in one call; a slice holds at "
                                 f"most {self._width} (observe each batch's slice on its own)")
            observed = self._not_padding(ids)
        if kind != "losses":
            labels = to_device(self.selector.policy.labels[ids].toarray(), values.device)
            values = per_sample_bce(values, labels, kind)
        self._queue.put(self._gather(np.where(observed, ids, -1), values))

    def _not_padding(self, ids: np.ndarray) -> np.ndarray:
        observed = np.ones(ids.shape[0], dtype=bool)
        for k, i in enumerate(ids.tolist()):
            if i in self._pads:
                self._pads.remove(i)
                observed[k] = False
        return observed

    def _gather(self, ids: np.ndarray, losses: torch.Tensor) -> Pending:
        """Start the all-gather of (ids, float32 losses) of every rank; -1 marks unused places.

        One int32 tensor of shape (2, w), w = ceil(B / world): the ids, and the losses' bits.
        """
        device = group_device(self.group) if self._collective else torch.device("cpu")
        width = self._width
        mine = torch.full((2, width), -1, dtype=torch.int32, device=device)
        m = ids.shape[0]
        mine[0, :m] = to_device(ids.astype(np.int32), device)
        mine[1, :m] = losses.detach().to(device=device, dtype=torch.float32).contiguous().view(torch.int32)
        if not self._collective:  # delivered as late as a gather would be: the same batches at any world size
            return Pending(lambda: _unpack(mine.numpy()[None]), True)
        every = torch.empty((self.num_replicas, 2, width), dtype=torch.int32, device=device)
        work = dist.all_gather(list(every.unbind(0)), mine, group=self.group, async_op=True)
        if device.type == "cuda":
            work.wait()  # orders the current stream after the gather; does not block the host
            read, _ = to_host(every)
            return Pending(lambda: _unpack(read()), True)

        def complete() -> Observation:
            work.wait()
            return _unpack(every.numpy())
        return Pending(complete, True)

    # -- consistency -----------------------------------------------------------------------------
    def check_consistency(self) -> None:
        """Raise ``RuntimeError`` naming the ranks whose selector state differs (collective)."""
        if not self._collective:
            return
        device = group_device(self.group)
        mine = torch.tensor([self.selector.fingerprint()], dtype=torch.int64, device=device)
        every = [torch.empty_like(mine) for _ in range(self.num_replicas)]
        dist.all_gather(every, mine, group=self.group)
        prints = [int(t.item()) for t in every]
        if len(set(prints)) > 1:
            groups: dict[int, list[int]] = {}
            for r, f in enumerate(prints):
                groups.setdefault(f, []).append(r)
            held = "; ".join(f"ranks {ranks} hold {f & (2**64 - 1):016x}" for f, ranks in groups.items())
            differ = [r for r, f in enumerate(prints) if f != prints[0]]
            raise RuntimeError(f"the selector state differs across ranks: ranks {differ} differ from rank 0 ({held}). "
                               "Build the selector identically (same policy, options and seeds) on every rank, "
                               "and call observe(), state_dict() and load_state_dict() on every rank.")

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._pads.clear()
        self.check_consistency()


def _unpack(table: np.ndarray) -> Observation:
    """The gathered (world, 2, w) int32 table as one observation of the ids >= 0."""
    ids = table[:, 0].reshape(-1)
    losses = np.ascontiguousarray(table[:, 1]).reshape(-1).view(np.float32)
    keep = ids >= 0
    return Observation(ids[keep].astype(np.int64), losses[keep].astype(np.float64), "losses")
