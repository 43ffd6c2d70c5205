"""Steps per second of a GPU training loop: Random vs Adaptive, same model, same data.

An MLP (d = 64 -> 1024 -> 1024 -> q = 100, ReLU, Adam, B = 512) trains on a synthetic
multi-label set of n samples held on the GPU; each step gathers its batch on the device by the
ids the sampler hands out. Three samplers feed it, their epochs alternating so that all see
the same device: Random, Adaptive observing through ``observe(logits, indices=, targets=)``
(per-sample BCE on the GPU, B values copied to pinned memory behind a CUDA event, delivered
before the draw that needs them, ``in_flight=1``), and Adaptive with ``in_flight=0`` (each
observation waited for before the next draw: the host stalls on every step). The first epoch
of each is not timed (warm-up of the selector, CUDA start-up). Without a CUDA device it prints
that it skips and exits with status 0 (``--device cpu`` runs the same loop on the CPU, to check
the script).

Usage: ``python bench/gpu_loop.py [--n 200000] [--epochs 4] [--hidden 1024] [--device cuda] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mlbs.policies import Adaptive, Random
from mlbs.selector import BatchSelector
from mlbs.torch import BatchSampler

D, Q, HIDDEN, BATCH = 64, 100, 1024, 512


def synthetic(n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, D, generator=g)
    w = torch.randn(D, Q, generator=g)
    bias = torch.linspace(-3.0, 0.0, Q)  # imbalanced label frequencies
    y = (x @ w / 4 + bias + 0.5 * torch.randn(n, Q, generator=g) > 0).float()
    return x.to(device), y.to(device), y.to(torch.int8).numpy()


class Run:
    def __init__(self, policy, x, y, in_flight, hidden):
        torch.manual_seed(0)
        self.model = torch.nn.Sequential(torch.nn.Linear(D, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                         torch.nn.ReLU(), torch.nn.Linear(hidden, Q)).to(x.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.sampler = BatchSampler(BatchSelector(policy, BATCH, warmup_epochs=1, seed=0), in_flight=in_flight)
        self.x, self.y = x, y
        self.observes = not policy.uniform

    def epoch(self, e):
        self.sampler.set_epoch(e)
        steps = 0
        for batch in self.sampler:
            ids = torch.as_tensor(batch)
            rows = ids.to(self.x.device, non_blocking=True)
            x, y = self.x[rows], self.y[rows]
            logits = self.model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.observes:
                self.sampler.observe(logits, indices=ids, targets=y)
            steps += 1
        synchronize(self.x.device)
        return steps


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="width of the two hidden layers")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_loop: no CUDA device, skipped")
        return 0
    x, y, labels = synthetic(args.n, device)
    runs = {"Random": Run(Random(labels), x, y, 1, args.hidden),
            "Adaptive, in_flight=1": Run(Adaptive(labels, weights=np.ones(args.n)), x, y, 1, args.hidden),
            "Adaptive, in_flight=0": Run(Adaptive(labels, weights=np.ones(args.n)), x, y, 0, args.hidden)}
    rates = {name: [] for name in runs}
    for e in range(args.epochs):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            steps = run.epoch(e)
            if e > 0:
                rates[name].append(steps / (time.perf_counter() - start))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"training loop on {name}, n = {args.n}, MLP {args.hidden}x2, B = {BATCH}, "
          f"median over {args.epochs - 1} epochs")
    medians = {name: float(np.median(r)) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"  {name:24s} {rate:8.1f} steps/s  ({rate / medians['Random']:.2f} x Random)")
    if args.json:
        args.json.write_text(json.dumps({"steps_per_s": medians, "per_epoch": rates}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
