"""The selector as a ``batch_sampler`` (or ``sampler``) of a ``DataLoader``, in one process."""

from __future__ import annotations

import sys
import warnings
from collections import deque
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from mlbs.selector import BatchSelector, UnobservedBatchWarning
from mlbs.torch.inflight import InFlight, Observation, Pending, to_host
from mlbs.torch.losses import per_sample_bce

#: Observations a draw may lack while they are still being copied from the device (or gathered).
IN_FLIGHT = 1


class BatchSampler(Sampler):
    """A ``torch.utils.data.Sampler`` of index batches drawn by a :class:`BatchSelector`.

    Parameters
    ----------
    selector : BatchSelector
    ahead : int
        Draw each batch this many batches before it is handed out (default 0), so that a loader
        can read upcoming samples early (:meth:`upcoming`). Batch t is then drawn without the
        observations of batches t - ahead, ..., t - 1 (those of earlier batches it has, when the
        training loop observes each batch before asking for the next).
    in_flight : int
        Observations made from device tensors that a draw may lack while their copy to the host
        is still running (default ``IN_FLIGHT``); older ones are waited for before the draw.
        Observations made from CPU tensors are delivered at once.

    Notes
    -----
    ``observe`` with ``indices=`` (the ids of the samples, see :class:`mlbs.torch.WithIndices`)
    matches the observation to the batch holding those ids, in any order. Without ids it is
    credited to the oldest batch handed out and not yet observed; that is correct only if every
    batch handed out is trained and observed in the order it was handed out. Ids are required
    with ``DataLoader(in_order=False)``, with a loop that skips the observation of some batches,
    and with wrappers that hand a process only some of the batches (Hugging Face accelerate,
    Lightning with several devices).
    """

    def __init__(self, selector: BatchSelector, *, ahead: int = 0, in_flight: int = IN_FLIGHT):
        if not isinstance(selector, BatchSelector):
            raise TypeError(f"selector must be an mlbs BatchSelector, got {type(selector).__name__}")
        if int(ahead) < 0 or int(in_flight) < 0:
            raise ValueError(f"ahead and in_flight must be >= 0, got {ahead} and {in_flight}")
        self.selector = selector
        self.ahead = int(ahead)
        self.in_flight = int(in_flight)
        self._epoch: int | None = None
        self._resuming = False  # the next iteration follows load_state_dict
        self._queue = InFlight(self._deliver)
        self._drawn_ahead: deque[np.ndarray] = deque()
        self._by_order = False  # an observation of this epoch was matched by order

    # -- iteration -------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Epoch of the next iteration.

        Without it, an iteration continues the current epoch if some of its batches were not
        handed out yet (or after ``load_state_dict``, if some were not observed), and starts
        the next epoch otherwise.
        """
        self._epoch = int(epoch)

    def _next_epoch(self) -> int:
        resuming, self._resuming = self._resuming, False
        if self._epoch is not None:
            epoch, self._epoch = self._epoch, None
            return epoch
        sel = self.selector
        if sel.current_epoch < 0:
            return 0
        if sel.position < len(sel) or (resuming and sel.pending):
            return sel.current_epoch
        return sel.current_epoch + 1

    def _global_batches(self) -> Iterator[np.ndarray]:
        """The selector's batches of the next epoch, each drawn ``ahead`` batches early."""
        epoch = self._next_epoch()
        if epoch != self.selector.current_epoch:
            self._close_epoch()
        self._drawn_ahead.clear()
        for batch in self.selector.epoch(epoch, before_draw=self._before_draw):
            self._drawn_ahead.append(batch)
            if len(self._drawn_ahead) > self.ahead:
                yield self._drawn_ahead.popleft()
        while self._drawn_ahead:
            yield self._drawn_ahead.popleft()

    def _before_draw(self) -> None:
        self._queue.drain(self.in_flight)

    def _close_epoch(self) -> None:
        """Deliver every observation; report batches never observed when matching was by order."""
        self._queue.drain(0)
        left = self.selector.pending
        if left and self._by_order and not self.selector.policy.uniform:
            warnings.warn(UnobservedBatchWarning(
                f"{len(left)} batch(es) handed out in epoch {self.selector.current_epoch} were never observed. "
                "observe() without indices= credits each observation to the oldest batch not yet observed: "
                "if a batch was skipped, every later observation of the epoch went to the wrong samples. "
                "Pass indices= (see mlbs.torch.WithIndices)."), stacklevel=3)
            for batch in left:
                self.selector.discard(batch)
        self._by_order = False

    def __iter__(self):
        for batch in self._global_batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self.selector)

    @property
    def batch_size(self) -> int:
        """B: every batch has B samples but the last of an epoch (``batch_sizes="partial_last"``)."""
        return self.selector.batch_size

    drop_last = False  # read by wrappers that shard batches (accelerate): the last batch is kept

    def upcoming(self) -> list[np.ndarray]:
        """The batches drawn ahead and not handed out yet, next first (see ``ahead``)."""
        return list(self._drawn_ahead)

    # -- observations ----------------------------------------------------------------------------
    def observe(self, outputs=None, *, indices=None, targets=None, losses=None, kind: str = "logits") -> None:
        """Record the model's outputs on a batch handed out.

        Parameters
        ----------
        outputs : tensor or array, shape (m, q), optional
            Logits (``kind="logits"``) or probabilities, on any device.
        indices : tensor or array of int, shape (m,), optional
            The samples of the rows of ``outputs``. Without them, the rows are those of the
            oldest batch handed out and not yet observed, in its order.
        targets : tensor, shape (m, q), optional
            The 0/1 labels of the rows: the per-sample loss is then computed on the outputs'
            device and only m values travel to the host.
        losses : tensor or array, shape (m,), optional
            Per-sample losses, instead of ``outputs``.
        kind : {"logits", "probabilities"}
        """
        values, kind = self._values(outputs, targets, losses, kind)
        if indices is None:
            ids = self._oldest_batch(values.shape[0])
            read_ids, deferred_ids = (lambda: ids), False
        else:
            ids_tensor = torch.as_tensor(indices)
            if ids_tensor.ndim != 1 or ids_tensor.shape[0] != values.shape[0]:
                raise ValueError(f"indices must have shape ({values.shape[0]},) like the observed rows, "
                                 f"got {tuple(ids_tensor.shape)}")
            read_ids, deferred_ids = to_host(ids_tensor)
        read_values, deferred_values = to_host(values)
        self._queue.put(Pending(lambda: Observation(read_ids(), read_values(), kind), deferred_ids or deferred_values))

    def discard(self, indices=None) -> None:
        """Forget a batch handed out that will not be observed (for instance, a step skipped
        because its loss was not finite): ``indices`` as in :meth:`observe`, or the oldest batch."""
        self._queue.drain(0)
        if indices is None:
            ids = self._oldest_batch(None)
        else:
            ids = torch.as_tensor(indices).cpu().numpy()
        self.selector.discard(ids)

    @staticmethod
    def _values(outputs, targets, losses, kind) -> tuple[torch.Tensor, str]:
        if (outputs is None) == (losses is None):
            raise ValueError("give exactly one of outputs= and losses=")
        if losses is not None:
            if targets is not None:
                raise ValueError("targets= goes with outputs=, not with losses=")
            return torch.as_tensor(losses), "losses"
        outputs = torch.as_tensor(outputs)
        if targets is not None:
            return per_sample_bce(outputs, torch.as_tensor(targets), kind), "losses"
        return outputs, kind

    def _oldest_batch(self, rows: int | None) -> np.ndarray:
        """The oldest batch not yet observed, for an observation of ``rows`` rows matched by order."""
        self._queue.drain(0)
        pending = self.selector.pending
        if not pending:
            raise RuntimeError("observe() without a batch handed out and not yet observed")
        batch = pending[0]
        if rows is not None and rows != batch.shape[0]:
            raise ValueError(f"observed {rows} samples, but the oldest batch handed out and not yet observed "
                             f"holds {batch.shape[0]}: observations are matched to batches by order, and this "
                             "one is not that batch. Pass indices= (see mlbs.torch.WithIndices).")
        self._by_order = True
        return batch

    def _deliver(self, observation: Observation) -> None:
        if observation.kind == "losses":
            self.selector.observe(observation.ids, losses=observation.values)
        else:
            self.selector.observe(observation.ids, observation.values, kind=observation.kind)

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The selector's state, after delivering the observations in flight.

        Resuming from it hands out exactly the batches the run would have handed out after the
        checkpoint. torchdata's ``StatefulDataLoader`` with workers is refused (see
        :func:`_refuse_loader_snapshot`).
        """
        _refuse_loader_snapshot()
        self._queue.drain(0)
        return self.selector.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._queue.drain(0)
        self.selector.load_state_dict(state)
        self._by_order = False
        self._resuming = True


class IndexSampler(BatchSampler):
    """The batches of a :class:`BatchSampler`, one index at a time, for ``DataLoader(sampler=...)``.

    The loader must use the selector's batch size (``DataLoader(batch_size=selector.batch_size,
    sampler=IndexSampler(selector))``); its batches are then the selector's. Each batch is drawn
    when the loader asks for its first index.
    """

    def __iter__(self):
        for batch in self._global_batches():
            yield from batch.tolist()

    def __len__(self) -> int:
        return sum(self.selector.batch_length(p) for p in range(len(self.selector)))


def _refuse_loader_snapshot() -> None:
    """Raise when torchdata's ``StatefulDataLoader`` with workers asks for the sampler's state.

    With workers, that loader stores the sampler's state when it queues a batch for a worker,
    several batches before the training loop has observed the batches already queued: the stored
    policy state lacks those observations and the stored outstanding batches include batches that
    are trained before the checkpoint, so a resume would replay them and diverge. Use torch's
    ``DataLoader`` with workers and save ``sampler.state_dict()`` next to the model (exact), or
    the stateful loader with ``num_workers=0``, which asks for the state when its own is saved.
    """
    frame = sys._getframe(1).f_back  # the caller of state_dict()
    for _ in range(3):
        if frame is None:
            return
        if frame.f_code.co_name == "_get_main_state" and "torchdata" in frame.f_code.co_filename:
            raise RuntimeError(
                "torchdata's StatefulDataLoader with num_workers > 0 snapshots the batch sampler when it "
                "queues a batch, before the observations of the batches in flight; mlbs cannot resume exactly "
                "from that snapshot. Use torch's DataLoader and save sampler.state_dict() with your checkpoint "
                "(exact with any number of workers), or StatefulDataLoader with num_workers=0.")
        frame = frame.f_back
