"""Time per training epoch (and peak memory) of the base models of :mod:`mlbs.models`.

Each (model, dataset, preset) runs in its own subprocess so that its peak resident memory can be
reported. One epoch = ceil(0.8 n / 128) Adam steps (lr 1e-4, weight decay 1e-4) on the first 80 %
of the rows (a stand-in for a training fold; labels with <= 20 positives dropped, min-max scaled).
Models that would exceed ``--budget`` seconds are timed on the first steps and extrapolated; the
output says which.

Usage::

    PYTHONPATH=python nice python bench/model_epoch_time.py [--datasets yeast bibtex] [--budget 60]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

MODELS = ("mlp", "c2ae", "mpvae", "paca", "clif", "dela")


def load_xy(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense float32 features (min-max scaled) and labels with > 20 positives."""
    from mlbs.data import load_dataset

    data = load_dataset(dataset)
    x = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X)
    y = data.Y.toarray()
    y = y[:, y.sum(0) > 20]
    x = x.astype(np.float32)
    lo, hi = x.min(0), x.max(0)
    x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


def time_one(model_name: str, dataset: str, preset: str, budget: float, max_steps: int) -> dict:
    """Train one model for (up to) one epoch; return timing and memory figures."""
    from mlbs.models import build_model

    torch.set_num_threads(1)
    x, y = load_xy(dataset)
    n_train = int(0.8 * x.shape[0])
    x, y = x[:n_train], y[:n_train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = build_model(model_name, x.shape[1], y.shape[1], preset, dataset=dataset)
        model.prepare(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    steps_per_epoch = math.ceil(n_train / 128)
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))
    model.train()

    def step(i: int) -> None:
        idx = perm[(i * 128) % n_train:][:128]
        out = model.train_step(x[idx], y[idx])
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    step(0)  # warm-up, not timed
    times = []
    limit = min(steps_per_epoch, max_steps) if max_steps > 0 else steps_per_epoch
    start = time.perf_counter()
    for i in range(limit):
        t0 = time.perf_counter()
        step(i + 1)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return {
        "model": model_name,
        "dataset": dataset,
        "preset": preset,
        "d": x.shape[1],
        "q": y.shape[1],
        "n_params": model.n_parameters(),
        "latent": getattr(model, "latent_dim", None),
        "steps_per_epoch": steps_per_epoch,
        "steps_timed": len(times),
        "sec_per_step": float(np.mean(times)),
        "sec_per_epoch": float(np.mean(times)) * steps_per_epoch,
        "extrapolated": len(times) < steps_per_epoch,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def run_all(models, datasets, preset: str, budget: float, max_steps: int) -> list[dict]:
    """Run :func:`time_one` for every pair, each in a subprocess; print one line per result."""
    results = []
    for dataset in datasets:
        for name in models:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, dataset,
                   "--preset", preset, "--budget", str(budget), "--max-steps", str(max_steps)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:6s} {dataset:8s} FAILED: {proc.stderr.strip()[-400:]}", flush=True)
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(res)
            note = f" (extrapolated from {res['steps_timed']} steps)" if res["extrapolated"] else ""
            print(f"{name:6s} {dataset:8s} {preset:8s} d={res['d']:5d} q={res['q']:4d} "
                  f"latent={res['latent']!s:5s} params={res['n_params']:9d} "
                  f"{res['sec_per_epoch']:8.2f} s/epoch ({res['steps_per_epoch']} steps, "
                  f"{res['sec_per_step'] * 1000:7.1f} ms/step){note}  "
                  f"peak RSS {res['peak_rss_gib']:.2f} GiB", flush=True)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["yeast", "bibtex"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--preset", default="mlbs")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of timed steps per model before extrapolating")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="time at most this many steps (0: a full epoch)")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(time_one(args.one[0], args.one[1], args.preset, args.budget,
                                  args.max_steps)))
        return
    run_all(args.models, args.datasets, args.preset, args.budget, args.max_steps)


if __name__ == "__main__":
    main()
