"""Step cost of distributed data parallel training: mlbs's DistributedBatchSampler vs torch's
DistributedSampler, side by side.

Two gloo processes on the CPU train the same MLP (d -> 512 -> 512 -> q, ReLU, Adam, wrapped in
DistributedDataParallel) on bundled yeast, global batch B = 128 (64 per process): once fed by
``DataLoader(sampler=DistributedSampler)`` with uniform shuffling, once fed by
``DataLoader(batch_sampler=DistributedBatchSampler)`` with Adaptive, each step observing the
per-sample losses of its slice (all-gathered, float32, with their ids). Steps of the two
alternate in the same processes (one of each in turn) so that both see the same machine load;
the first epoch (warm-up, first-touch costs) is not timed. A step is timed from asking the
loader for the batch (where mlbs draws it) to the end of ``observe``. Reported: median time per
step, and the ratio mlbs / torch.

Usage: ``python bench/ddp_step.py [--epochs 6] [--threads 1] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import mlbs.data
from mlbs.policies import Adaptive
from mlbs.selector import BatchSelector
from mlbs.torch import DistributedBatchSampler, WithIndices

WORLD, BATCH, HIDDEN = 2, 128, 512


def make_model(d, q):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(d, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                              torch.nn.ReLU(), torch.nn.Linear(HIDDEN, q))
    model = DistributedDataParallel(net)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def step(model, optimizer, x, y):
    logits = model(x)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return logits


class TorchRun:
    def __init__(self, X, Y):
        self.sampler = DistributedSampler(TensorDataset(X, Y), shuffle=True, seed=0)
        self.loader = DataLoader(TensorDataset(X, Y), batch_size=BATCH // WORLD, sampler=self.sampler)
        self.model, self.optimizer = make_model(X.shape[1], Y.shape[1])

    def begin(self, epoch):
        self.sampler.set_epoch(epoch)
        self.batches = iter(self.loader)

    def step(self) -> bool:
        batch = next(self.batches, None)
        if batch is None:
            return False
        x, y = batch
        step(self.model, self.optimizer, x, y)
        return True


class MlbsRun:
    def __init__(self, X, Y, data):
        selector = BatchSelector(Adaptive(data.Y, data.X), batch_size=BATCH, warmup_epochs=1, seed=0)
        self.sampler = DistributedBatchSampler(selector)
        self.loader = DataLoader(WithIndices(TensorDataset(X, Y)), batch_sampler=self.sampler)
        self.model, self.optimizer = make_model(X.shape[1], Y.shape[1])

    def begin(self, epoch):
        self.sampler.set_epoch(epoch)
        self.batches = iter(self.loader)

    def step(self) -> bool:
        batch = next(self.batches, None)   # the draw happens here, then the fetch
        if batch is None:
            return False
        ids, (x, y) = batch
        logits = step(self.model, self.optimizer, x, y)
        self.sampler.observe(logits, indices=ids, targets=y)
        return True


def worker(rank, init_file, epochs, threads, out):
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    data = mlbs.data.load_dataset("yeast")
    X, Y = torch.from_numpy(data.X), torch.from_numpy(data.Y.toarray()).float()
    runs = {"torch DistributedSampler": TorchRun(X, Y), "mlbs DistributedBatchSampler (Adaptive)": MlbsRun(X, Y, data)}
    per_step = {name: [] for name in runs}
    for e in range(epochs):
        for run in runs.values():
            run.begin(e)
        going = True
        while going:  # one step of each run in turn: both see the same machine load
            for name, run in runs.items():
                start = time.perf_counter()
                going = run.step() and going
                if e > 0:
                    per_step[name].append(time.perf_counter() - start)
    dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(json.dumps(per_step))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.spawn(worker, args=(os.path.join(tmp, "init"), args.epochs, args.threads, out), nprocs=WORLD, join=True)
        per_step = json.loads(Path(out).read_text())
    medians = {name: float(np.median(times)) for name, times in per_step.items()}
    (torch_name, torch_ms), (mlbs_name, mlbs_ms) = medians.items()
    print(f"DDP step, gloo, {WORLD} processes, yeast, MLP {HIDDEN}x2, B = {BATCH} ({BATCH // WORLD} per process), "
          f"median over the steps of {args.epochs - 1} epochs")
    for name, seconds in medians.items():
        print(f"  {name:42s} {seconds * 1e3:7.2f} ms/step")
    ratio = mlbs_ms / torch_ms
    print(f"  ratio mlbs / torch: {ratio:.2f}")
    if args.json:
        quartiles = {k: [float(q) * 1e3 for q in np.percentile(v, [25, 75])] for k, v in per_step.items()}
        args.json.write_text(json.dumps({"ms_per_step": {k: v * 1e3 for k, v in medians.items()},
                                         "quartiles_ms": quartiles, "steps": len(per_step[torch_name]),
                                         "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
