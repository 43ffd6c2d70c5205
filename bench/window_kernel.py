"""Cost of one batch of the prediction window (Uncertain's and D2ACE's per-batch observation)
on each instruction-set path and build, side by side.

One batch = ``PredictionWindow.visit`` of B distinct rows with float32 logits (window of w = 5
float32 values, float32 tables, phi and the loss tracked, as D2ACE keeps them), for each label
count q. Variants, each timed in its own fresh interpreter, alternating ``--rounds`` times:

- ``<name>``: the build whose ``mlbs`` package lies under the directory given by
  ``--build name=DIR`` (default: ``default=python``, the in-place build), on the widest path the
  CPU supports (``mlbs._core.isa``);
- ``<name>+baseline``: the same build with ``MLBS_MAX_ISA=baseline`` (what a CPU without AVX2
  runs), for each build given with ``--baseline``.

Usage::

    python bench/window_kernel.py                                   # default build, wide and baseline
    python bench/window_kernel.py --build portable=python native=../native-build/python --rounds 3

Prints the median microseconds per batch of every run and the medians of the runs; ``--json``
writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
import numpy as np
import scipy.sparse as sp
from mlbs import _core, core
from mlbs.signals.window import PredictionWindow
n, batch, batches = {n}, {batch}, {batches}
out = {{"isa": _core.isa, "flags": _core.build_flags, "us": {{}}}}
for q in {labels}:
    rng = np.random.default_rng(q)
    labels = core.LabelsCSR.of(sp.csr_matrix((rng.random((n, q)) < 0.05).astype(np.float64)))
    win = PredictionWindow(n, q, window=5, track_phi=True, track_loss=True)
    rows = [rng.choice(n, batch, replace=False).astype(np.int64) for _ in range(batches)]
    logits = (rng.standard_normal((batch, q)) * 3).astype(np.float32)
    times = []
    for t in range(batches):
        start = time.perf_counter()
        win.visit(rows[t], logits, "logits", labels)
        times.append(time.perf_counter() - start)
    out["us"][str(q)] = float(np.median(times[batches // 10:]) * 1e6)
json.dump(out, sys.stdout)
"""


def run_variant(package_dir: str, force_baseline: bool, n: int, batch: int, batches: int, labels) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(package_dir).resolve()))
    env.pop("MLBS_MAX_ISA", None)
    if force_baseline:
        env["MLBS_MAX_ISA"] = "baseline"
    code = CHILD.format(n=n, batch=batch, batches=batches, labels=list(labels))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", nargs="+", default=["default=python"], metavar="NAME=DIR",
                        help="builds to compare: a name and the directory holding its mlbs package")
    parser.add_argument("--baseline", nargs="*", default=None, metavar="NAME",
                        help="builds also run with MLBS_MAX_ISA=baseline (default: the first)")
    parser.add_argument("--labels", type=int, nargs="+", default=[14, 374], help="label counts q")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    builds = dict(item.split("=", 1) for item in args.build)
    forced = [next(iter(builds))] if args.baseline is None else args.baseline
    unknown = set(forced) - set(builds)
    if unknown:
        parser.error(f"--baseline names builds not given with --build: {sorted(unknown)}")
    variants = [(name, path, False) for name, path in builds.items()]
    variants += [(name + "+baseline", builds[name], True) for name in forced]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, path, force in variants:
            runs[name].append(run_variant(path, force, args.n, args.batch, args.batches, args.labels))
    summary = {}
    print(f"PredictionWindow.visit, B = {args.batch} float32 logits, n = {args.n}, w = 5; us per batch "
          f"(median over {args.batches} batches, every round)")
    for name, results in runs.items():
        summary[name] = {"isa": results[0]["isa"], "flags": results[0]["flags"], "us": {}}
        for q in args.labels:
            values = [r["us"][str(q)] for r in results]
            summary[name]["us"][str(q)] = {"runs": values, "median": statistics.median(values)}
            print(f"  {name:<20} isa={results[0]['isa']:<8} q={q:<4} " + ", ".join(f"{v:8.1f}" for v in values)
                  + f"   median {statistics.median(values):8.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"batch": args.batch, "n": args.n, "variants": summary}, indent=1))


if __name__ == "__main__":
    main()
