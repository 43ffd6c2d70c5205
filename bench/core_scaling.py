"""Cost of one selection step as the dataset grows: mlbs core versus what users have today.

One step = "update B random items with new weights, then draw B distinct items", the work a
sampler with per-batch refresh does once per mini-batch. Implementations, run side by side in one
process on the same weights and indices:

- ``mlbs``: ``WeightedIndex.update`` + ``WeightedIndex.draw_distinct`` (O(B log n)).
- ``numpy``: the reference code's way, ``w[idx] = new``, ``p = w / w.sum()``,
  ``Generator.choice(n, B, replace=False, p=p)`` (O(n)).
- ``torch``: ``w[idx] = new``, ``torch.multinomial(w, B, replacement=False)`` (O(n)), with one
  intra-op thread so that all three run on one core.

Usage::

    python bench/core_scaling.py                       # n in 1e4..1e7, B in 128, 256
    python bench/core_scaling.py --sizes 10000 100000 --json results.json

The table gives the median microseconds per step and the ratios to mlbs; ``--json`` writes a
list of rows ``{"impl", "n", "batch", "us_per_step_median"}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from mlbs import WeightedIndex

Step = Callable[[np.ndarray, np.ndarray], object]


def mlbs_step(n: int, batch: int, weights: np.ndarray) -> Step:
    index = WeightedIndex(n, seed=0)
    index.assign(weights)

    def step(idx, new):
        index.update(idx, new)
        return index.draw_distinct(batch)

    return step


def numpy_step(n: int, batch: int, weights: np.ndarray) -> Step:
    w = weights.copy()
    rng = np.random.default_rng(0)

    def step(idx, new):
        w[idx] = new
        return rng.choice(n, batch, replace=False, p=w / w.sum())

    return step


def torch_step(n: int, batch: int, weights: np.ndarray) -> Step:
    import torch

    torch.set_num_threads(1)
    w = torch.from_numpy(weights.copy())
    gen = torch.Generator().manual_seed(0)

    def step(idx, new):
        w[torch.from_numpy(idx)] = torch.from_numpy(new)
        return torch.multinomial(w, batch, replacement=False, generator=gen)

    return step


IMPLS = {"mlbs": mlbs_step, "numpy": numpy_step, "torch": torch_step}


def time_steps(step: Step, n: int, batch: int, budget_s: float, max_steps: int, seed: int) -> float:
    """Median wall time of one step in microseconds (at least 3 steps, about budget_s in all)."""
    rng = np.random.default_rng(seed)
    times = []
    spent = 0.0
    while len(times) < max_steps and (len(times) < 3 or spent < budget_s):
        idx = rng.integers(0, n, batch)
        new = rng.random(batch)
        t0 = time.perf_counter()
        step(idx, new)
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return float(np.median(times) * 1e6)


def run(sizes, batches, impls, budget_s=1.0, max_steps=20000):
    rows = []
    for n in sizes:
        weights = np.random.default_rng(n).random(n) + 1e-3
        for batch in batches:
            for name in impls:
                step = IMPLS[name](n, batch, weights)
                for _ in range(3):  # warm up caches and lazy initialisation
                    step(np.arange(batch) % n, np.ones(batch))
                us = time_steps(step, n, batch, budget_s, max_steps, seed=n + batch)
                rows.append({"impl": name, "n": n, "batch": batch, "us_per_step_median": us})
                del step
    return rows


def format_table(rows) -> str:
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    keys = list(dict.fromkeys((r["n"], r["batch"]) for r in rows))
    by = {(r["impl"], r["n"], r["batch"]): r["us_per_step_median"] for r in rows}
    head = f"{'n':>10} {'B':>5}" + "".join(f"{i + ' us':>14}" for i in impls)
    others = [i for i in impls if i != "mlbs"] if "mlbs" in impls else []
    head += "".join(f"{i + '/mlbs':>13}" for i in others)
    lines = [head, "-" * len(head)]
    for n, b in keys:
        line = f"{n:>10} {b:>5}" + "".join(f"{by[(i, n, b)]:>14.1f}" for i in impls)
        line += "".join(f"{by[(i, n, b)] / by[('mlbs', n, b)]:>12.0f}x" for i in others)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6, 10**7])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--impls", nargs="+", choices=sorted(IMPLS), default=list(IMPLS))
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of steps per cell")
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    for n in args.sizes:
        for b in args.batches:
            if not 0 < b <= n:
                parser.error(f"batch {b} must be between 1 and n = {n}")
    print(f"one step = update B items + draw B distinct; {platform.processor() or platform.machine()}")
    rows = run(args.sizes, args.batches, args.impls, args.budget)
    print(format_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
        print(f"rows written to {args.json}")
    return rows


if __name__ == "__main__":
    main()
