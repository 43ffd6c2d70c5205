"""PyTorch adapter: the selector as a ``batch_sampler`` of a ``DataLoader``, one or many processes.

One process::

    selector = BatchSelector(Adaptive(Y_train, X_train), batch_size=128, seed=0)
    sampler = BatchSampler(selector)
    loader = DataLoader(WithIndices(dataset), batch_sampler=sampler, num_workers=2)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for ids, (x, y) in loader:
            logits = model(x.to(device))
            loss = criterion(logits, y.to(device))
            ...
            sampler.observe(logits, indices=ids, targets=y.to(device))

With ``indices=`` each observation reaches the samples it names, whatever order the loader
delivers batches in (``in_order=False``) and whichever batches the loop skips
(:meth:`BatchSampler.discard`). The loader draws a few batches ahead (``num_workers *
prefetch_factor``), so with ``refresh="batch"`` each batch is drawn from a distribution that
lacks the observations of the batches still in flight: a few batches stale, never wrong.

Tensors on a GPU are copied to the host without blocking (:mod:`mlbs.torch.inflight`).
Distributed data parallel: :class:`DistributedBatchSampler`. Training loops for plain PyTorch,
Lightning and accelerate: ``docs/training-loops.md``.
"""

from mlbs.torch.distributed import REMAINDERS, DistributedBatchSampler
from mlbs.torch.indices import WithIndices, collate_with_indices
from mlbs.torch.losses import per_sample_bce
from mlbs.torch.sampler import IN_FLIGHT, BatchSampler, IndexSampler

__all__ = ["BatchSampler", "DistributedBatchSampler", "IndexSampler", "WithIndices", "collate_with_indices",
           "per_sample_bce", "IN_FLIGHT", "REMAINDERS"]
