"""Observations on their way from the device to the policy.

On a GPU, reading a tensor on the host waits for every kernel queued before it: calling
``.cpu()`` after each training step would stop the host from queuing the next step while the
device finishes this one. Instead, :func:`to_host` starts a non-blocking copy into pinned host
memory and records a CUDA event behind it; the copy is read when the observation is delivered.
An all-gather started with ``async_op=True`` is delivered the same way, by waiting on its handle.

:class:`InFlight` keeps these observations in the order they were made and delivers them by one
deterministic rule: before a batch is drawn from the policy, all but the newest ``depth`` are
delivered (waiting for them if needed). The rule depends only on the order of observe and draw
calls, never on timing, so the batches drawn are the same on every run and on every process.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class Observation:
    """Sample ids and their outputs ((m, q), ``kind`` "logits" or "probabilities") or losses
    ((m,), ``kind`` "losses"), on the host."""

    ids: np.ndarray
    values: np.ndarray
    kind: str


@dataclass
class Pending:
    """An observation not yet on the host: ``complete()`` waits for it and returns it.

    ``deferred`` is False when it is already complete (made from host tensors): such an
    observation is delivered at once when nothing deferred is ahead of it.
    """

    complete: Callable[[], Observation]
    deferred: bool


def to_host(tensor: torch.Tensor) -> tuple[Callable[[], np.ndarray], bool]:
    """(a function returning the tensor's values as a host array, whether that may have to wait).

    A CPU tensor is copied at once; a CUDA tensor is copied without blocking into pinned memory,
    behind a CUDA event on the current stream, which the returned function waits for.
    """
    tensor = tensor.detach()
    if tensor.device.type == "cpu":
        array = tensor.numpy().copy()
        return (lambda: array), False
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    done = torch.cuda.Event()
    done.record()

    def read() -> np.ndarray:
        done.synchronize()
        return host.numpy()
    return read, True


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array as a tensor on ``device``, without waiting for the device's queued work.

    A plain ``.to("cuda")`` from pageable memory waits for the copy, hence for every kernel
    queued before it; staging in pinned memory lets the copy be queued like a kernel.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


class InFlight:
    """The observations made and not yet delivered, oldest first.

    Parameters
    ----------
    deliver : callable
        Receives each :class:`Observation`, in the order they were made.
    """

    def __init__(self, deliver: Callable[[Observation], None]):
        self._deliver = deliver
        self._queue: deque[Pending] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, pending: Pending) -> None:
        """Queue an observation; deliver it at once if it is complete and nothing waits ahead."""
        self._queue.append(pending)
        while self._queue and not self._queue[0].deferred:
            self._deliver(self._queue.popleft().complete())

    def drain(self, keep: int = 0) -> None:
        """Deliver the oldest observations until at most ``keep`` remain."""
        while len(self._queue) > keep:
            self._deliver(self._queue.popleft().complete())
