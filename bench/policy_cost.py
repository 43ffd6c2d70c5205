"""Per-batch cost of the selection policies (observe + draw), side by side with the reference way.

For each n, a synthetic multi-label training set with q labels (imbalanced label frequencies,
about 3 labels per sample) and a stream of batches of B = 128: the policy draws a batch, then
observes logits for it (normal noise whose scale shrinks over the stream, as losses do in
training, so the maximum loss moves now and then). Measured per batch, median and mean
(the mean includes Adaptive's O(n) rebuilds when the maximum loss changes), with the observation
given as float32 logits (the library computes the per-sample BCE) or as the per-sample losses
the training step computed anyway:

- ``random``, ``hard``, ``adaptive``, ``adac``: the mlbs policies with per-batch refresh;
- ``numpy-adaptive``: what the reference code does per batch, recompute the quantized
  distribution of all n samples and call ``Generator.choice(n, B, replace=False, p=...)``.

Drift: Adaptive under losses drifting upward, side by side for ``max_reference="exact"`` and
``"geometric"``. Each sample has a base loss b_i = u_i / w_i, u_i uniform in [0.5, 1.5], observed
in the warm-up (the weighted losses w_i b_i have a dense top, so the samples drawn keep raising
the maximum); a visit at batch t observes b_i (1 + drift)^t (drift 0.05% per batch by default).
Per batch (draw + observe of the losses): median and mean wall time, mean CPU time of the process
(which leaves out the time the process waited for a core on a busy host), rebuilds; for the geometric mode also
its distance to the exact definition on the same table, every 50 batches: the total variation
distance between its P and eqs. 6-7's, and the largest ratio max(P_i / P*_i, P*_i / P_i).

Usage: ``python bench/policy_cost.py [--sizes 10000 1000000] [--drift-batches 300] [--skip-policies]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mlbs.signals.bce import per_sample_bce
from mlbs.policies import AdaC, Adaptive, Hard, Random
from mlbs.policies.transforms import quantized_by_max

BATCH, LABELS, PRESSURE = 128, 100, 8.0


def synthetic_labels(n: int, q: int, seed: int = 0) -> sp.csr_matrix:
    """About 3 positives per row, label j drawn with probability proportional to 0.97^j."""
    rng = np.random.default_rng(seed)
    p = 0.97 ** np.arange(q)
    per_row = rng.integers(1, 6, n)
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.choice(q, size=rows.size, p=p / p.sum())
    Y = sp.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, q))
    Y.data[:] = 1
    return Y


class NumpyAdaptive:
    """The reference code's per-batch work: O(n) recompute of P and an O(n) choice."""

    def __init__(self, Y, w, seed=0):
        self.Y, self.w, self.n = Y, w, Y.shape[0]
        self.table = np.zeros(self.n)
        self.rng = np.random.default_rng(seed)

    def observe(self, idx, logits=None, losses=None):
        if losses is None:
            losses = per_sample_bce(logits, self.Y[idx])
        self.table[idx] = self.w[idx] * losses

    def draw(self, k):
        omega = quantized_by_max(self.table, self.table.max(), self.n, PRESSURE)
        return self.rng.choice(self.n, k, replace=False, p=omega / omega.sum())


def make(name, Y, w):
    if name == "random":
        return Random(Y)
    if name == "hard":
        return Hard(Y, pressure=PRESSURE)
    if name == "adaptive":
        return Adaptive(Y, weights=w, pressure=PRESSURE)
    if name == "adac":
        return AdaC(Y, weights=w, pressure=PRESSURE)
    return NumpyAdaptive(Y, w)


def measure(name, Y, w, batches, observe="logits", seed=1):
    n = Y.shape[0]
    policy = make(name, Y, w)
    rng = np.random.default_rng(seed)
    if hasattr(policy, "start_selection"):  # warm-up done: one observation of every sample
        for start in range(0, n, 8192):
            idx = np.arange(start, min(n, start + 8192))
            policy.observe(idx, rng.normal(0, 2.0, (idx.size, LABELS)))
        policy.start_selection()
    policy.draw(BATCH)  # compiles, or loads from Numba's cache, the policy's kernels before the timing
    rebuilds0 = getattr(policy, "rebuilds", 0)
    times = []
    for t in range(batches):
        scale = 2.0 * (1.0 - 0.5 * t / batches)
        logits = rng.normal(0, scale, (BATCH, LABELS)).astype(np.float32)  # as a model outputs
        t0 = time.perf_counter()
        idx = policy.draw(BATCH)
        if observe == "logits":
            policy.observe(idx, logits)
            times.append(time.perf_counter() - t0)
        else:  # the per-sample losses a training step computes anyway (not timed)
            drawn = time.perf_counter() - t0
            losses = per_sample_bce(logits, Y[idx])
            t1 = time.perf_counter()
            policy.observe(idx, losses=losses)
            times.append(drawn + time.perf_counter() - t1)
    times = np.array(times) * 1e6
    return {"policy": name, "observe": observe, "n": n, "batch": BATCH,
            "us_per_batch_median": float(np.median(times)),
            "us_per_batch_mean": float(times.mean()), "batches": batches,
            "rebuilds": int(getattr(policy, "rebuilds", 0) - rebuilds0)}


def measure_drift(Y, w, mode, batches, drift, seed=1):
    n = Y.shape[0]
    rng = np.random.default_rng(seed)
    policy = Adaptive(Y, weights=w, pressure=PRESSURE, max_reference=mode)
    base = rng.uniform(0.5, 1.5, n) / w
    policy.observe(np.arange(n), losses=base)
    policy.start_selection()
    policy.draw(BATCH)  # the kernels compiled or loaded before the timing
    rebuilds0 = policy.rebuilds
    times, cpu, tv, ratio = [], 0.0, [], []
    for t in range(1, batches + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        idx = policy.draw(BATCH)
        policy.observe(idx, losses=base[idx] * (1.0 + drift) ** t)
        times.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        if mode == "geometric" and (t % 50 == 0 or t == batches):  # not timed: O(n)
            p = policy.probabilities()
            exact = quantized_by_max(policy.table, policy.table.max(), n, PRESSURE)
            exact /= exact.sum()
            tv.append(0.5 * float(np.abs(p - exact).sum()))
            ratio.append(float(np.maximum(p / exact, exact / p).max()))
    times = np.array(times) * 1e6
    return {"policy": f"adaptive-{mode}", "scenario": "drift", "drift_per_batch": drift, "n": n, "batch": BATCH,
            "us_per_batch_median": float(np.median(times)), "us_per_batch_mean": float(times.mean()),
            "cpu_us_per_batch_mean": 1e6 * cpu / batches, "batches": batches,
            "rebuilds": int(policy.rebuilds - rebuilds0),
            "max_total_variation": max(tv, default=0.0), "max_probability_ratio": max(ratio, default=1.0)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**6])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--drift-batches", type=int, default=300)
    parser.add_argument("--drift", type=float, default=5e-4, help="upward drift of the losses per batch")
    parser.add_argument("--skip-policies", action="store_true", help="only the drift scenario")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'n':>9} {'policy':>15} {'observe':>7} {'median us':>10} {'mean us':>10} {'rebuilds':>9}")
    for n in args.sizes:
        Y = synthetic_labels(n, LABELS)
        w = 1.0 + np.random.default_rng(2).exponential(0.05, n)
        for name in [] if args.skip_policies else ["random", "hard", "adaptive", "adac", "numpy-adaptive"]:
            batches = args.batches if name != "numpy-adaptive" else max(20, min(args.batches, 2 * 10**7 // n))
            for observe in ("logits", "losses"):
                row = measure(name, Y, w, batches, observe)
                rows.append(row)
                print(f"{n:>9} {name:>15} {observe:>7} {row['us_per_batch_median']:>10.1f} "
                      f"{row['us_per_batch_mean']:>10.1f} {row['rebuilds']:>9}", flush=True)
    print(f"\ndrift {args.drift:.2%} per batch, {args.drift_batches} batches; geometric vs exact definition: "
          "max total variation distance, max ratio of P_i")
    print(f"{'n':>9} {'policy':>18} {'median us':>10} {'mean us':>10} {'cpu mean':>9} {'rebuilds':>9} {'max TV':>9} "
          f"{'max ratio':>9}")
    for n in args.sizes:
        Y = synthetic_labels(n, LABELS)
        w = 1.0 + np.random.default_rng(2).exponential(0.05, n)
        for mode in ("exact", "geometric"):
            row = measure_drift(Y, w, mode, args.drift_batches, args.drift)
            rows.append(row)
            distance = (f" {row['max_total_variation']:>9.4f} {row['max_probability_ratio']:>9.4f}"
                        if mode == "geometric" else "")
            print(f"{n:>9} {row['policy']:>18} {row['us_per_batch_median']:>10.1f} {row['us_per_batch_mean']:>10.1f} "
                  f"{row['cpu_us_per_batch_mean']:>9.1f} {row['rebuilds']:>9}{distance}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
