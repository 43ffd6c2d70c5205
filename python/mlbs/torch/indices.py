"""Sample ids through a DataLoader, so that observations can name the samples they belong to.

``WithIndices(dataset)[i]`` is ``(i, dataset[i])``; torch's default collate turns a batch of
them into ``(ids, batch)`` with ``ids`` an int64 tensor::

    loader = DataLoader(WithIndices(dataset), batch_sampler=sampler)
    for ids, (x, y) in loader:
        ...
        sampler.observe(logits, indices=ids)

A custom collate function keeps the ids with :func:`collate_with_indices`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import Dataset
from torch.utils.data import default_collate


class WithIndices(Dataset):
    """A map-style dataset whose items are ``(index, item)``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        return index, self.dataset[index]

    def __getitems__(self, indices):
        """Batched fetch: the wrapped dataset's ``__getitems__`` when it has one (returning a
        list of items, as torch's fetcher expects), else one item at a time."""
        fetch = getattr(self.dataset, "__getitems__", None)
        items = fetch(indices) if fetch is not None else [self.dataset[i] for i in indices]
        return list(zip(indices, items))


def collate_with_indices(collate_fn: Callable = default_collate) -> Callable:
    """A collate function for :class:`WithIndices` items: ``(int64 ids, collate_fn(items))``."""
    def collate(pairs):
        ids, items = zip(*pairs)
        return torch.as_tensor(ids, dtype=torch.int64), collate_fn(list(items))
    return collate
