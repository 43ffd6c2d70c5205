"""End-to-end cost of batch selection in a real training loop, through the torch adapter.

One training epoch of an MLP (d = 64 -> 1024 -> 1024 -> q = 100, ReLU, Adam, B = 128) on a
synthetic multi-label set of n samples, fed by ``DataLoader(batch_sampler=mlbs.torch.BatchSampler)``,
with Random and with Adaptive (per-batch refresh, observing the per-sample BCE of every trained
batch), in the same process, their batches interleaved so that both see the same machine load. Adaptive starts selecting at once (its loss table starts at zero,
so its first batches are uniform), so both epochs train on n samples.

Usage: ``python bench/torch_epoch.py [--n 1000000] [--threads 2] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mlbs.policies import Adaptive, Random
from mlbs.selector import BatchSelector
from mlbs.torch import BatchSampler

D, Q, HIDDEN, BATCH = 64, 100, 1024, 128


class InMemory(Dataset):
    """Tensors in memory, fetched a whole batch at a time (``__getitems__``)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitems__(self, idx):
        idx = torch.as_tensor(idx)
        return self.x[idx], self.y[idx]


def synthetic(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g)
    w = torch.randn(D, Q, generator=g)
    bias = torch.linspace(-3.0, 0.0, Q)  # imbalanced label frequencies
    y = (x @ w / 4 + bias + 0.5 * torch.randn(n, Q, generator=g) > 0).float()
    return x, y


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(D, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                               torch.nn.ReLU(), torch.nn.Linear(HIDDEN, Q))


class Run:
    """One training run (model, optimiser, sampler) advanced one batch at a time."""

    def __init__(self, policy, data):
        self.net = model()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.sampler = BatchSampler(BatchSelector(policy, BATCH, warmup_epochs=0, seed=0))
        self.batches = iter(DataLoader(data, batch_sampler=self.sampler, collate_fn=lambda b: b))
        self.wall = self.fetch_select_time = 0.0
        self.steps = 0

    def step(self) -> bool:
        t0 = time.perf_counter()
        try:
            x, y = next(self.batches)  # the draw happens here (lazily), then the fetch
        except StopIteration:
            return False
        t1 = time.perf_counter()
        logits = self.net(x)
        loss_matrix = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        self.opt.zero_grad()
        loss_matrix.mean().backward()
        self.opt.step()
        t2 = time.perf_counter()
        self.sampler.observe(losses=loss_matrix.detach().mean(dim=1))
        t3 = time.perf_counter()
        self.fetch_select_time += (t1 - t0) + (t3 - t2)
        self.wall += t3 - t0
        self.steps += 1
        return True


def epochs(policies, data, max_batches=None):
    """One epoch of each run, batches interleaved (run 1 batch 1, run 2 batch 1, ...) so that
    a change of machine load affects both alike."""
    runs = [Run(p, data) for p in policies]
    while all(run.step() for run in runs):
        if max_batches and runs[0].steps >= max_batches:
            break
    return [{"wall_s": r.wall, "fetch_select_s": r.fetch_select_time, "batches": r.steps} for r in runs]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10**6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-batches", type=int, default=None, help="stop each epoch early (smoke runs)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, y = synthetic(args.n)
    data = InMemory(x, y)
    Y = y.numpy().astype(np.int8)
    weights = 1.0 + np.random.default_rng(1).exponential(0.05, args.n)  # stands in for the kNN weights
    names = ["random", "adaptive"]
    policies = [Random(Y), Adaptive(Y, weights=weights, pressure=8.0, refresh="batch")]
    rows = [{"policy": name, "n": args.n, **r} for name, r in zip(names, epochs(policies, data, args.max_batches))]
    for r in rows:
        print(f"{r['policy']:>9}: epoch {r['wall_s']:.1f} s, fetch+select+observe {r['fetch_select_s']:.2f} s "
              f"({1e6 * r['fetch_select_s'] / r['batches']:.0f} us/batch), {r['batches']} batches", flush=True)
    ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
    print(f"Adaptive epoch / Random epoch = {ratio:.3f} ({100 * (ratio - 1):+.1f}%)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "adaptive_over_random": ratio}, indent=1))
    return rows


if __name__ == "__main__":
    main()
