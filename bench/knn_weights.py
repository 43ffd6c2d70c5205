"""Benchmark: kNN imbalance weights w = 1 + epsilon (Zhou et al. 2024, eqs. 2, 4) at scale.

For every configuration (data kind, n, search method) a **fresh subprocess**
generates the data, computes :func:`mlbs.statistics.imbalance.imbalance_weights`
and reports

* wall time and process CPU time (user + system) of the weights, search
  included (on a loaded machine the CPU time divided by the cores used is the
  better guide to the idle-machine wall time);
* the recall@k the library reports (``result.recall``: 1.0 for exact search,
  estimated on 1,000 sample queries otherwise) and, as an independent check,
  the recall on ``--check-queries`` other random rows against brute force
  (``faiss.knn``), counted by :func:`mlbs.statistics.neighbors.sample_recall`;
* the nprobe chosen by the tuning and its trail of (nprobe, tuning recall);
* peak resident memory (``ru_maxrss`` of the subprocess: it sees FAISS's
  allocations, which ``tracemalloc`` does not), the peak reached by the data
  generation alone and the memory resident just before the search (when the
  peak exceeds the former, peak minus the latter is what the search added);
* whether a :class:`~mlbs.statistics.neighbors.LowRecallWarning` was issued;
* the load average of the machine before and after.

Data (d = 128 by default, labels: q = 100 with power-law base rates boosted
per component, so that minority labels exist):

* ``clustered``: a Gaussian mixture with 128 components. Centres are N(0, I)
  (typical centre distance sqrt(2 d) = 16 at d = 128); each component has a
  random rank-16 covariance (per-coordinate standard deviation 0.25) plus
  isotropic noise of standard deviation 0.05: points near low-dimensional
  structures, as real features are.
* ``unclustered``: the same generator with one component: a single rank-16
  Gaussian plus noise, no cluster structure at all (intrinsic dimension 16).
* ``isotropic``: i.i.d. N(0, I_d); no structure an index can exploit
  (nearest neighbours barely nearer than the typical pair), the adversarial
  case: an approximate index cannot reach recall 0.95 without scanning most
  of the data, and the library is expected to warn.

Run (once, niced, on a shared machine)::

    nice -n 5 python bench/knn_weights.py

(printed, and written to ``bench/results/knn_weights.json``). ``--sizes``,
``--kinds`` and ``--methods`` select the configurations; ``--exact-n`` adds
the exact searches (certified pruned and brute force) at that size for their
peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.append(str(Path(__file__).resolve().parents[1] / "python"))  # PYTHONPATH (e.g. a snapshot) wins


def mixture(n: int, d: int, components: int = 128, q: int = 100, seed: int = 0):
    """Synthetic features (float32) and labels (CSR) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((components, d)).astype(np.float32)
    loadings = (rng.standard_normal((components, d, 16)) * (0.25 / 4.0)).astype(np.float32)
    comp = rng.integers(0, components, n)
    X = np.empty((n, d), dtype=np.float32)
    block = 50_000
    for s in range(0, n, block):
        c = comp[s:s + block]
        z = rng.standard_normal((c.size, 16)).astype(np.float32)
        noise = 0.05 * rng.standard_normal((c.size, d)).astype(np.float32)
        for t in range(0, c.size, 2_000):  # small slices: the (rows, d, 16) loadings stay ~16 MB
            sl = slice(t, t + 2_000)
            X[s + t:s + t + 2_000] = centres[c[sl]] + np.einsum("ndr,nr->nd", loadings[c[sl]], z[sl]) + noise[sl]
    return X, _labels(rng, comp, components, q)


def _labels(rng, comp, components, q):
    base = 0.3 / np.arange(1, q + 1) ** 0.8
    boost = rng.gamma(0.5, 2.0, size=(components, q))
    blocks = []
    for s in range(0, comp.size, 20_000):  # in blocks, so that the dense (rows, q) draws stay small
        p = np.clip(base[None, :] * boost[comp[s:s + 20_000]], 0, 0.95)
        blocks.append(sp.csr_matrix((rng.random(p.shape) < p).astype(np.int8)))
    return sp.vstack(blocks, format="csr")


def dataset(kind: str, n: int, d: int, seed: int = 1):
    if kind == "clustered":
        return mixture(n, d, seed=seed)
    if kind == "unclustered":
        return mixture(n, d, components=1, seed=seed)
    if kind == "isotropic":
        rng = np.random.default_rng(seed)
        X = np.empty((n, d), dtype=np.float32)
        for s in range(0, n, 50_000):
            X[s:s + 50_000] = rng.standard_normal((min(50_000, n - s), d), dtype=np.float32)
        return X, _labels(rng, np.zeros(n, dtype=np.int64), 1, 100)
    raise ValueError(f"unknown data kind {kind!r}")


def _rusage_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_one(cfg: dict) -> dict:
    """One configuration, in this (fresh) process."""
    import faiss

    from mlbs.statistics.imbalance import imbalance_weights
    from mlbs.statistics.neighbors import LowRecallWarning, _exact_sample, prepare_features, sample_recall

    X, Y = dataset(cfg["kind"], cfg["n"], cfg["d"])
    peak_data = _rusage_mb()
    with open("/proc/self/statm") as f:  # resident now (pages), before the search
        rss_before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    options = {"exact": {"method": "exact"}, "flat": {"method": "exact", "flat_max_rows": cfg["n"]},
               "auto": {}, "ivf": {"method": "ivf"}, "hnsw": {"method": "hnsw"}}[cfg["method"]]
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowRecallWarning)
        res = imbalance_weights(X, Y, cfg["k"], **options)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = _rusage_mb()
    nb = res.neighbors
    out = dict(cfg, knn_method=nb.method, params=nb.params, wall_s=wall,
               cpu_s=(ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
               faiss_threads=faiss.omp_get_max_threads(), recall_reported=nb.recall,
               recall_queries=nb.recall_queries,
               low_recall_warning=any(issubclass(w.category, LowRecallWarning) for w in caught),
               peak_rss_mb=peak, peak_rss_data_mb=peak_data, rss_before_search_mb=rss_before,
               minority_labels=int(res.minority.size))
    if cfg["check_queries"] and nb.method != "exact":
        Xf = prepare_features(X)
        rows = np.sort(np.random.default_rng(12345).choice(cfg["n"], min(cfg["check_queries"], cfg["n"]),
                                                           replace=False))
        out["recall_check"] = sample_recall(Xf, rows, nb.indices[rows], _exact_sample(Xf, rows, cfg["k"], "id",
                                                                                          cfg["k"] + 5))
        out["check_queries"] = int(rows.size)
    return out


def run_in_subprocess(cfg: dict) -> dict:
    load_before = os.getloadavg()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], capture_output=True, text=True)
    if proc.returncode != 0:
        return dict(cfg, error=proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["loadavg_before"], out["loadavg_after"] = load_before, os.getloadavg()
    return out


def describe(r: dict) -> str:
    if "error" in r:
        return f"[{r['kind']} n={r['n']} {r['method']}] FAILED: {r['error'][-300:]}"
    p = r["params"]
    knobs = {key: p[key] for key in ("algorithm", "nlist", "nprobe", "nprobe_trail", "M", "efSearch") if key in p}
    check = f", check {r['recall_check']:.4f} on {r['check_queries']}" if "recall_check" in r else ""
    return (f"[{r['kind']} n={r['n']} d={r['d']} {r['method']}->{r['knn_method']} {knobs}] "
            f"wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s; recall {r['recall_reported']:.4f} "
            f"(reported, {r['recall_queries']} queries){check}; warned: {r['low_recall_warning']}; "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (data generation {r['peak_rss_data_mb']:.0f} MB, "
            f"resident before the search {r['rss_before_search_mb']:.0f} MB); "
            f"load {r['loadavg_before'][0]:.1f} -> {r['loadavg_after'][0]:.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--kinds", nargs="+", default=["clustered", "unclustered", "isotropic"])
    ap.add_argument("--isotropic-max-n", type=int, default=100_000,
                    help="isotropic data only up to this n (its search is close to brute force)")
    ap.add_argument("--methods", nargs="+", default=["ivf"], help="ivf, hnsw, auto, exact, flat")
    ap.add_argument("--exact-n", type=int, default=50_000,
                    help="also the exact searches (pruned, flat) on clustered data at this n (0: none)")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--check-queries", type=int, default=1000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "knn_weights.json"))
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(run_one(json.loads(a.child)), default=float))
        return None
    base = {"d": a.d, "k": a.k, "check_queries": a.check_queries}
    configs = [dict(base, kind="clustered", n=a.exact_n, method=m) for m in ("exact", "flat") if a.exact_n]
    configs += [dict(base, kind=kind, n=n, method=m) for n in a.sizes for kind in a.kinds for m in a.methods
                if kind != "isotropic" or n <= a.isotropic_max_n]
    results = {"cpu_count": os.cpu_count(), "configs": []}
    for cfg in configs:
        r = run_in_subprocess(cfg)
        print(describe(r), flush=True)
        results["configs"].append(r)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(results, indent=2, default=float))
    return results


if __name__ == "__main__":
    main()
