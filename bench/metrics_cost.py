"""Cost of the ranking metrics at many labels, mlbs and scikit-learn side by side.

A synthetic test set of n rows and q labels (q = 1000 by default; about 2% positives per row,
label frequencies decaying so that rare labels exist; float32 probabilities, so equal scores
occur): each metric is computed by mlbs (default convention) and by the scikit-learn function it
equals, and timed (best of ``--repeats`` runs). Also timed, on the first ``--loop-rows`` rows
only, the row-by-row O(q^2) average precision that mlbs used before (the slow reference of the
tests), reported per row next to the others' time per row.

Usage: ``python bench/metrics_cost.py [--n 1000] [--q 1000] [--json PATH]``; the rows are saved as
JSON (default ``bench/results/metrics_cost.json``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from mlbs import metrics

ROOT = Path(__file__).resolve().parents[1]


def synthetic_case(n: int, q: int, seed: int = 0):
    """0/1 labels (label j positive with probability 0.05 * 0.997^j) and float32 probabilities
    that rank the positives somewhat higher."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.05 * 0.997 ** np.arange(q)).astype(np.int8)
    logits = rng.normal(size=(n, q)) + 1.5 * Y - 2.0
    F = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    return Y, F


def pairs(Y, F):
    """(name, mlbs call, scikit-learn call) for every metric timed."""
    return [
        ("average_precision ranking", lambda: metrics.average_precision(Y, F, "ranking"),
         lambda: skm.label_ranking_average_precision_score(Y, F)),
        ("average_precision samples", lambda: metrics.average_precision(Y, F, "samples"),
         lambda: skm.average_precision_score(Y, F, average="samples")),
        ("ranking_loss", lambda: metrics.ranking_loss(Y, F), lambda: skm.label_ranking_loss(Y, F)),
        ("coverage", lambda: metrics.coverage(Y, F), lambda: skm.coverage_error(Y, F)),
        ("macro_auc", lambda: metrics.macro_auc(Y, F, invalid="skip"),
         lambda: float(np.nanmean(skm.roc_auc_score(Y, F, average=None)))),
    ]


def best_time(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def row_loop_reference():
    """The O(q^2)-per-row average precision kept in the tests as the slow reference."""
    spec = importlib.util.spec_from_file_location("metric_references", ROOT / "tests" / "test_metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.loop_average_precision


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--q", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-rows", type=int, default=20)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "metrics_cost.json")
    args = parser.parse_args()

    Y, F = synthetic_case(args.n, args.q)
    rows = []
    print(f"n = {args.n}, q = {args.q}: seconds, best of {args.repeats}")
    print(f"{'metric':>27} {'mlbs s':>9} {'sklearn s':>10} {'sklearn/mlbs':>13} {'|difference|':>13}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scikit-learn warns on rows without positives
        for name, ours, theirs in pairs(Y, F):
            t_mlbs, v_mlbs = best_time(ours, args.repeats)
            t_sk, v_sk = best_time(theirs, args.repeats)
            row = {"metric": name, "n": args.n, "q": args.q, "mlbs_s": t_mlbs, "sklearn_s": t_sk,
                   "sklearn_over_mlbs": t_sk / t_mlbs, "abs_difference": abs(v_mlbs - v_sk)}
            rows.append(row)
            print(f"{name:>27} {t_mlbs:>9.4f} {t_sk:>10.4f} {row['sklearn_over_mlbs']:>13.2f} "
                  f"{row['abs_difference']:>13.2e}")

    if args.loop_rows:
        k = min(args.loop_rows, args.n)
        loop = row_loop_reference()
        t_loop, v_loop = best_time(lambda: loop(Y[:k], F[:k], "samples"), 1)
        t_new, v_new = best_time(lambda: metrics.average_precision(Y[:k], F[:k], "samples"), args.repeats)
        ap = next(r for r in rows if r["metric"] == "average_precision samples")
        row = {"metric": "average_precision samples, row loop", "n": k, "q": args.q,
               "loop_ms_per_row": 1e3 * t_loop / k, "mlbs_ms_per_row": 1e3 * ap["mlbs_s"] / args.n,
               "sklearn_ms_per_row": 1e3 * ap["sklearn_s"] / args.n, "abs_difference": abs(v_loop - v_new)}
        rows.append(row)
        print(f"per row, q = {args.q}: O(q^2) row loop {row['loop_ms_per_row']:.3f} ms "
              f"({k} rows), mlbs {row['mlbs_ms_per_row']:.4f} ms, scikit-learn {row['sklearn_ms_per_row']:.4f} ms; "
              f"loop/mlbs = {row['loop_ms_per_row'] / row['mlbs_ms_per_row']:.0f}, "
              f"|difference| on those rows {row['abs_difference']:.1e}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=1))
    print(f"saved {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")


if __name__ == "__main__":
    main()
