"""Benchmark: kNN imbalance weights w = 1 + epsilon (Zhou et al. 2024, eqs. 2, 4) at scale.

Two measurements (issue 3, item 9):

1. ``--n 100000 --d 128``: time to compute the weights with FAISS exact
   search (``mlbs.statistics.neighbors``) versus scikit-learn ``NearestNeighbors`` (default
   algorithm, which is brute force at d = 128), in the same run, on the same
   data; the weight pipeline after the search is shared, and the two weight
   vectors are compared.
2. ``--approx-n 1000000``: wall time of the weights with the approximate
   index (``method="auto"`` picks IVF above 200,000 rows) and recall@k of its
   neighbour lists against exact search, on ``--recall-queries`` (2,000)
   random rows.

Synthetic data: a Gaussian mixture with ``--components`` (128) components in
``d`` dimensions. Centres are N(0, I) (typical centre distance
sqrt(2 d) = 16 at d = 128); each component has a random rank-16 covariance
(per-coordinate standard deviation 0.25) plus isotropic noise of standard
deviation 0.05, so that components are separated and neighbours are
meaningful (points near low-dimensional structures, as real features are; an
isotropic 128-d Gaussian has no meaningful nearest neighbours). Labels: q = 100 with power-law base
rates, boosted per component, so that minority labels exist.

Run: ``nice python bench/knn_weights.py [--skip-sklearn] [--approx-n 1000000]``
(results are printed and written to ``bench/results/knn_weights.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.append(str(Path(__file__).resolve().parents[1] / "python"))  # PYTHONPATH (e.g. a snapshot) wins

from mlbs.statistics.imbalance import imbalance_weights  # noqa: E402


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
        X[s:s + block] = centres[c] + np.einsum("ndr,nr->nd", loadings[c], z) \
            + 0.05 * rng.standard_normal((c.size, d)).astype(np.float32)
    base = 0.3 / np.arange(1, q + 1) ** 0.8
    boost = rng.gamma(0.5, 2.0, size=(components, q))
    p = np.clip(base[None, :] * boost[comp], 0, 0.95)
    Y = sp.csr_matrix((rng.random((n, q)) < p).astype(np.int8))
    return X, Y


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_exact_vs_sklearn(n, d, k, skip_sklearn):
    from sklearn.neighbors import NearestNeighbors

    X, Y = mixture(n, d)
    res_f, t_f = _timed(lambda: imbalance_weights(X, Y, k, method="exact"))
    out = {"n": n, "d": d, "k": k, "faiss_exact_s": t_f, "exact_params": res_f.neighbors.params}
    print(f"[n={n}, d={d}] FAISS exact weights (certified pruning {res_f.neighbors.params}): {t_f:.2f} s",
          flush=True)
    res_b, t_b = _timed(lambda: imbalance_weights(X, Y, k, method="exact", flat_max_rows=n))
    same = np.all(res_b.neighbors.indices == res_f.neighbors.indices, axis=1)
    # rows that differ: are they float-rounding ties (same k-th distance to 1e-5 relative)?
    kth_b, kth_f = res_b.neighbors.distances[~same, -1], res_f.neighbors.distances[~same, -1]
    ties = bool(np.allclose(kth_b, kth_f, rtol=1e-5, atol=1e-6))
    out.update(faiss_flat_s=t_b, frac_rows_pruned_equals_flat=float(same.mean()),
               differing_rows_are_ties=ties, max_abs_w_diff_pruned_flat=float(np.abs(res_b.w - res_f.w).max()))
    print(f"[n={n}, d={d}] FAISS exact weights (brute-force IndexFlatL2): {t_b:.2f} s; rows with the same "
          f"neighbours as pruned: {same.mean():.5f} (differences are float ties: {ties})", flush=True)
    if not skip_sklearn:
        def sk():
            nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
            dist, ids = nn.kneighbors(X)
            # self removed by id, the rule of mlbs.statistics.neighbors, so that the weights are comparable
            is_self = ids == np.arange(n)[:, None]
            is_self[~is_self.any(axis=1), -1] = True
            ids = ids[~is_self].reshape(n, k)
            sk.ids = ids
            return imbalance_weights(X, Y, k, neighbors=ids)
        res_s, t_s = _timed(sk)
        out.update(sklearn_s=t_s, speedup=t_s / t_f, speedup_flat=t_s / t_b,
                   max_abs_w_diff=float(np.abs(res_s.w - res_f.w).max()),
                   frac_rows_same_neighbours=float(np.mean(
                       [set(a) == set(b) for a, b in zip(sk.ids.tolist(), res_f.neighbors.indices.tolist())])))
        print(f"[n={n}, d={d}] sklearn NearestNeighbors weights: {t_s:.2f} s -> speedup {t_s / t_f:.1f}x (pruned), {t_s / t_b:.1f}x (flat); "
              f"max |w_faiss - w_sklearn| = {out['max_abs_w_diff']:.3g}; rows with identical neighbour sets: "
              f"{out['frac_rows_same_neighbours']:.4f}", flush=True)
    return out


def bench_approx(n, d, k, n_queries):
    import faiss

    X, Y = mixture(n, d, seed=1)
    res, t = _timed(lambda: imbalance_weights(X, Y, k))
    nb = res.neighbors
    rng = np.random.default_rng(2)
    qi = np.sort(rng.choice(n, n_queries, replace=False))
    flat = faiss.IndexFlatL2(d)
    flat.add(X)
    _, ex = flat.search(X[qi], k + 1)
    hits = 0
    for row, i in enumerate(qi):
        exact = [m for m in ex[row] if m != i][:k]
        hits += len(set(exact) & set(nb.indices[i].tolist()))
    recall = hits / (k * n_queries)
    out = {"n": n, "d": d, "k": k, "method": nb.method, "params": nb.params, "wall_s": t, "recall_at_k": recall,
           "n_queries": n_queries, "minority_labels": int(res.minority.size)}
    print(f"[n={n}, d={d}] approximate ({nb.method} {nb.params}) weights: {t:.1f} s; "
          f"recall@{k} on {n_queries} queries = {recall:.4f}", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--approx-n", type=int, default=0, help="also run the approximate benchmark at this n")
    ap.add_argument("--recall-queries", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "knn_weights.json"))
    a = ap.parse_args(argv)
    results = {"cpu_count": os.cpu_count()}
    if not a.skip_exact:
        results["exact_vs_sklearn"] = bench_exact_vs_sklearn(a.n, a.d, a.k, a.skip_sklearn)
    if a.approx_n:
        results["approximate"] = bench_approx(a.approx_n, a.d, a.k, a.recall_queries)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
