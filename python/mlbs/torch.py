"""PyTorch adapter: the selector as a ``batch_sampler`` of a ``DataLoader``, single or multi-process.

Single process::

    selector = BatchSelector(Adaptive(Y_train, X_train), batch_size=128, seed=0)
    sampler = BatchSampler(selector)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=2)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            logits = model(x)
            loss = criterion(logits, y)
            ...
            sampler.observe(logits)          # the outputs of the batch just trained

``observe`` matches batches in the order they were handed out, so it stays correct with
``num_workers > 0``. The loader then draws a few batches ahead (``num_workers *
prefetch_factor``), so with ``refresh="batch"`` each batch is drawn from a distribution that
lacks the observations of the batches still in flight: a few batches stale, never wrong.

Distributed data parallel: :class:`DistributedBatchSampler`. Every rank builds the same policy
with the same seed; each step, the ranks all-gather the (indices, outputs) of the global batch so
their policy states stay identical, all draw the same global batch, and each takes its own slice.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import Sampler

from mlbs.selector import BatchSelector


def per_sample_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """l_i = (1/q) sum_j BCE-with-logits(z_ij, y_ij), shape (m,), computed without gradient."""
    with torch.no_grad():
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none").mean(dim=1)


def _to_numpy(x) -> np.ndarray | None:
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


class BatchSampler(Sampler):
    """A ``torch.utils.data.Sampler`` of index batches drawn by a :class:`BatchSelector`.

    Parameters
    ----------
    selector : BatchSelector
    """

    def __init__(self, selector: BatchSelector):
        if not isinstance(selector, BatchSelector):
            raise TypeError(f"selector must be an mlbs BatchSelector, got {type(selector).__name__}")
        self.selector = selector
        self._epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next iteration (otherwise the epoch after a finished one, or the current)."""
        self._epoch = int(epoch)

    def _next_epoch(self) -> int:
        if self._epoch is not None:
            epoch, self._epoch = self._epoch, None
            return epoch
        sel = self.selector
        finished = sel.position >= len(sel) and not sel.pending
        return max(0, sel.current_epoch + 1) if finished or sel.current_epoch < 0 else sel.current_epoch

    def _global_batches(self):
        return self.selector.epoch(self._next_epoch())

    def __iter__(self):
        for batch in self._global_batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.selector)

    def observe(self, outputs=None, *, losses=None, kind: str = "logits") -> None:
        """Outputs (logits or probabilities, (m, q)) or per-sample losses ((m,)) of the oldest
        batch handed out and not yet observed."""
        if not self.selector.pending:
            raise RuntimeError("observe() without a batch handed out and not yet observed")
        self.selector.observe(self.selector.pending[0], _to_numpy(outputs), kind=kind, losses=_to_numpy(losses))

    def state_dict(self) -> dict:
        return self.selector.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.selector.load_state_dict(state)


class DistributedBatchSampler(BatchSampler):
    """Each rank's slice of the global batches, with the policy state kept identical on all ranks.

    The global batch is split into ``num_replicas`` contiguous slices (``numpy.array_split``);
    rank r gets slice r. ``observe`` takes this rank's outputs and all-gathers every rank's, so
    each rank's policy observes the whole global batch in the same order.

    Parameters
    ----------
    selector : BatchSelector
        Built identically (same policy, options and seeds) on every rank.
    num_replicas, rank : int, optional
        Default: from the initialised ``torch.distributed`` process group.
    """

    def __init__(self, selector: BatchSelector, num_replicas: int | None = None, rank: int | None = None):
        super().__init__(selector)
        if num_replicas is None or rank is None:
            if not dist.is_available() or not dist.is_initialized():
                raise RuntimeError("DistributedBatchSampler needs an initialised torch.distributed process group "
                                   "(or explicit num_replicas and rank)")
            num_replicas, rank = dist.get_world_size(), dist.get_rank()
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.num_replicas, self.rank = int(num_replicas), int(rank)

    def _slice(self, batch: np.ndarray) -> np.ndarray:
        return np.array_split(batch, self.num_replicas)[self.rank]

    def __iter__(self):
        for batch in self._global_batches():
            yield self._slice(batch).tolist()

    def observe(self, outputs=None, *, losses=None, kind: str = "logits") -> None:
        """This rank's outputs (or losses) of its slice of the oldest pending global batch."""
        if not self.selector.pending:
            raise RuntimeError("observe() without a batch handed out and not yet observed")
        if (outputs is None) == (losses is None):
            raise ValueError("give exactly one of outputs= and losses=")
        batch = self.selector.pending[0]
        local = torch.as_tensor(_to_numpy(outputs if losses is None else losses))
        sizes = [len(s) for s in np.array_split(batch, self.num_replicas)]
        if local.shape[0] != sizes[self.rank]:
            raise ValueError(f"rank {self.rank} observed {local.shape[0]} samples, its slice has {sizes[self.rank]}")
        padded = torch.zeros((max(sizes),) + tuple(local.shape[1:]), dtype=local.dtype)
        padded[: local.shape[0]] = local
        gathered = [torch.empty_like(padded) for _ in range(self.num_replicas)]
        dist.all_gather(gathered, padded)
        merged = torch.cat([g[:s] for g, s in zip(gathered, sizes)]).numpy()
        if losses is None:
            self.selector.observe(batch, merged, kind=kind)
        else:
            self.selector.observe(batch, losses=merged)
