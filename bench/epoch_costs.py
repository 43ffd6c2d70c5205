"""Measure the per-epoch costs that ``mlbs compare --dry-run`` estimates a grid from.

For each (model, dataset) asked for, one run of the Random baseline on fold 0 (one torch thread,
the protocol's settings, ``--epochs`` epochs) gives the seconds of an epoch (training steps and
the per-epoch evaluation) and of the run's setup (data, folds, model). For each selective method
(measured with the first model given), one run of ``warm-up + --epochs`` epochs gives the seconds
its sampler adds to an epoch after the warm-up (its cumulative sampler time over the selective
epochs, less Random's) and the seconds of building its policy. A first, untimed run loads and
compiles what every run shares, so that no cell pays for it. The figures are merged into
``python/mlbs/experiments/epoch_costs.json`` (cells not measured now are kept), with the machine's
load average when the measurement started: figures taken on a busy machine are upper bounds.

Usage::

    PYTHONPATH=python nice python bench/epoch_costs.py --models mlp --datasets emotions yeast \\
        --methods hard adaptive adac uncertain d2ace
    PYTHONPATH=python nice python bench/epoch_costs.py --models clif dela --datasets scene --methods
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch

from mlbs.experiments.config import ExperimentConfig
from mlbs.experiments.estimate import COSTS_FILE, EpochCosts
from mlbs.experiments.loop import run_fold
from mlbs.experiments.methods import get_method


def measure(dataset: str, model: str, method: str, epochs: int, protocol: str) -> dict:
    """One run on fold 0; its timing and per-epoch sampler curve."""
    config = ExperimentConfig.for_protocol(protocol, epochs=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run_fold(dataset, model, method, 0, config)
    return {"timing": result["timing"], "sampler_curve": result["curves"]["sampler_time"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="*", default=["hard", "adaptive", "adac", "uncertain", "d2ace"],
                        help="selective methods whose sampler cost is measured with the first model")
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured (after any warm-up)")
    parser.add_argument("--protocol", default="mlbs")
    parser.add_argument("--out", default=str(COSTS_FILE))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        costs = EpochCosts.load(args.out)
    except FileNotFoundError:
        costs = EpochCosts()
    costs.meta = {"threads": 1, "fold": 0, "epochs_measured": args.epochs, "protocol": args.protocol,
                  "script": "bench/epoch_costs.py", "cpus": os.cpu_count(),
                  "load_average_at_start": round(os.getloadavg()[0], 1)}
    measure("emotions", args.models[0], "random", 1, args.protocol)  # untimed: loads and compiles what runs share
    for dataset in args.datasets:
        random_sampler = None
        for model in args.models:
            t0 = time.perf_counter()
            run = measure(dataset, model, "random", args.epochs, args.protocol)
            t = run["timing"]
            epoch_s = (t["train_s"] + t["eval_s"]) / args.epochs
            setup_s = max(0.0, t["total_s"] - t["train_s"] - t["eval_s"])
            costs.epoch_s.setdefault(model, {})[dataset] = round(epoch_s, 4)
            costs.setup_s.setdefault(model, {})[dataset] = round(setup_s, 4)
            if random_sampler is None:
                random_sampler = t["sampler_s"] / args.epochs
            print(f"{dataset:16s} {model:6s} random    epoch {epoch_s:8.3f} s  setup {setup_s:7.2f} s  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for method in args.methods:
            spec = get_method(method)
            t0 = time.perf_counter()
            run = measure(dataset, args.models[0], spec.name, spec.warmup_epochs + args.epochs, args.protocol)
            curve = run["sampler_curve"]
            before = curve[spec.warmup_epochs - 1] if spec.warmup_epochs else 0.0
            extra = max(0.0, (curve[-1] - before) / args.epochs - random_sampler)
            costs.sampler_s.setdefault(spec.name, {})[dataset] = round(extra, 5)
            costs.policy_s.setdefault(spec.name, {})[dataset] = round(run["timing"]["policy_setup_s"], 4)
            print(f"{dataset:16s} {args.models[0]:6s} {spec.name:9s} sampler +{extra:8.4f} s/epoch  policy "
                  f"{run['timing']['policy_setup_s']:6.2f} s  ({time.perf_counter() - t0:.0f} s)", flush=True)
        costs.save(args.out)  # after every dataset: an interrupted measurement keeps what it has
    return 0


if __name__ == "__main__":
    sys.exit(main())
