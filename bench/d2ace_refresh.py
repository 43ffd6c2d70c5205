"""D2ACE: end-of-epoch refresh (sparse vs dense transcription) and per-batch observation cost.

1. ``delicious`` (n = 16,105, q = 983): the kNN context Z from the features (built once, not
   timed in the refresh), random signal tables E, phi, l (float32, as the policy stores them);
   the refresh of :func:`mlbs.signals.refresh.d2ace_scores` + the two QMM pools, against the dense
   transcription :func:`tests/oracles.py d2ace_probabilities` (given the dense Z), with the
   largest relative difference of P. Z and the static index layout of the positives are built
   once per training set (as the policy does) and not timed in the refresh.
2. Synthetic n = 10^6, q = 1,000, card = 5 (Zipf-like label frequencies, 6 random neighbours):
   the sparse refresh only (the dense one needs several N x q float64 arrays, 8 GB each). The
   tables are float16 (3 x 2 GB) to stay within the memory of a shared machine; the kernels are
   compiled on a small float16 problem first, so the time is that of the refresh alone.
3. The per-batch cost of ``observe`` at B = 128, q = 1,000 (n = 20,000), for the window
   storages float32, uint16 and uint8 (median over 300 batches in steady state: every row has
   been visited once before; float32 logits).

Usage: ``python bench/d2ace_refresh.py [--skip-million] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mlbs.policies import D2ACE
from mlbs.policies.transforms import quantized_min_max
from mlbs.signals.refresh import PositivesLayout, d2ace_scores
from mlbs.statistics.structure import local_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import oracles as ref  # noqa: E402  (the slow transcriptions live with the tests)


def refresh(E, phi, loss, Y, Z, layout=None):
    su, sh = d2ace_scores(E, phi, loss, Y, Z, layout=layout)
    wu, wh = quantized_min_max(su, 8.0), quantized_min_max(sh, 8.0)
    return 0.7 * wu / wu.sum() + 0.3 * wh / wh.sum()


def timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def random_tables(n, q, dtype, seed=0, chunk=50_000):
    rng = np.random.default_rng(seed)
    E, phi, loss = (np.empty((n, q), dtype=dtype) for _ in range(3))
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        E[lo:lo + m] = rng.random((m, q), dtype=np.float32)
        phi[lo:lo + m] = 0.5 * rng.random((m, q), dtype=np.float32)
        loss[lo:lo + m] = rng.standard_exponential((m, q), dtype=np.float32)
    return E, phi, loss


def delicious_case() -> dict:
    from mlbs.data import load_dataset
    from mlbs.statistics.neighbors import nearest_neighbors

    data = load_dataset("delicious")
    Y = sp.csr_matrix(data.Y, dtype=np.int8)
    n, q = Y.shape
    t_knn, nb = timed(lambda: nearest_neighbors(data.X, 6).indices)
    t_z, Z = timed(lambda: local_context(Y, nb))
    layout = PositivesLayout.of(Y, Z)  # static, built once with Z, as the policy does
    E, phi, loss = random_tables(n, q, np.float32)
    refresh(E, phi, loss, Y, Z, layout)  # compile the kernels
    t_fast, P = timed(lambda: refresh(E, phi, loss, Y, Z, layout), repeat=3)
    Zd = ref.dense_context(Y, nb)
    t_dense, (_, _, Pd) = timed(lambda: ref.d2ace_probabilities(E, phi, loss, Y, nb, pressure=8.0, beta=0.7, Z=Zd))
    return {"case": "delicious", "n": n, "q": q, "nnz_Y": int(Y.nnz), "nnz_Z": int(Z.nnz),
            "knn_s": t_knn, "context_s": t_z, "refresh_s": t_fast, "dense_refresh_s": t_dense,
            "speedup": t_dense / t_fast, "max_rel_diff": float(np.abs(P / Pd - 1).max())}


def million_case(n=1_000_000, q=1000, card=5, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    freq = 1.0 / np.arange(1, q + 1)
    cols = np.sort(np.stack([rng.choice(q, card, replace=False, p=freq / freq.sum()) for _ in range(2000)]), axis=1)
    cols = cols[rng.integers(0, 2000, n)]  # rows drawn from 2000 label sets (keeps generation quick)
    Y = sp.csr_matrix((np.ones(n * card, dtype=np.int8), cols.ravel(), np.arange(0, n * card + 1, card)),
                      shape=(n, q))
    nb = rng.integers(0, n, (n, 6))
    t_z, Z = timed(lambda: local_context(Y, nb))
    refresh(*random_tables(64, q, np.float16, seed), Y[:64], Z[:64])  # compile the float16 kernels
    E, phi, loss = random_tables(n, q, np.float16, seed)
    layout = PositivesLayout.of(Y, Z)
    t_fast, P = timed(lambda: refresh(E, phi, loss, Y, Z, layout))
    return {"case": "synthetic", "n": n, "q": q, "card": card, "nnz_Z": int(Z.nnz), "table_dtype": "float16",
            "context_s": t_z, "refresh_s": t_fast, "P_sum": float(P.sum())}


def observe_cost(n=20_000, q=1000, batch=128, batches=300) -> list[dict]:
    """Steady state: every row visited once first (full windows, tables paged in), then batches
    of distinct rows with float32 logits made just before each call, as a model outputs them."""
    rng = np.random.default_rng(1)
    Y = sp.csr_matrix((rng.random((n, q)) < 5 / q).astype(np.int8))
    nb = rng.integers(0, n, (n, 6))
    rows = []
    for dtype in ("float32", "uint16", "uint8"):
        policy = D2ACE(Y, neighbors=nb, window_dtype=dtype)
        for lo in range(0, n, 1000):
            policy.observe(np.arange(lo, lo + 1000), rng.normal(0, 2, (1000, q)).astype(np.float32))
        times = []
        for _ in range(batches):
            idx, z = rng.choice(n, batch, replace=False), rng.normal(0, 2, (batch, q)).astype(np.float32)
            t = time.perf_counter()
            policy.observe(idx, z)
            times.append(time.perf_counter() - t)
        rows.append({"case": "observe", "window_dtype": dtype, "B": batch, "q": q, "n": n,
                     "median_ms": 1e3 * float(np.median(times)), "mean_ms": 1e3 * float(np.mean(times)),
                     "memory_MB": policy.signals.memory_bytes() / 2**20})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = observe_cost() + [delicious_case()]
    if not args.skip_million:
        results.append(million_case())
    for row in results:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
