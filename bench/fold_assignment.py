"""Our iterative stratification next to scikit-multilearn's, on the MULAN datasets.

The papers' code builds its folds with scikit-multilearn's ``IterativeStratification(n_splits=5,
order=1, random_state=42)``; mlbs builds them with its own implementation of Sechidis et al.
(2011), Algorithm 1 (:func:`mlbs.data.splits.stratified_kfold`). For each dataset, after the
papers' preprocessing (labels with at most 20 positives dropped), both are run with seed 42 and
compared on what the Macro metrics depend on (``--reseed``: scikit-multilearn's later source, which
re-seeds numpy's global generator before every tie-break):

- label/fold pairs whose test fold holds no positive of the label (the label is then left out of
  Macro-AUC, or scored by convention, on that fold);
- the same in the half of the held-out fold that the ``paper-code`` protocol tests on;
- the spread of the test fold sizes, and of a label's positives over the folds (largest minus
  smallest count, summed over the labels);
- how many rows land in the same fold (up to a relabelling of the folds, matched greedily).

scikit-multilearn is not a dependency of mlbs; install it beside (``pip install --target DIR
scikit-multilearn==0.2.0``) and put DIR on ``PYTHONPATH``.

Usage::

    PYTHONPATH=python:DIR python bench/fold_assignment.py --datasets scene yeast Corel5k --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def fold_ids(splits, n: int) -> np.ndarray:
    out = np.full(n, -1)
    for k, (_, test) in enumerate(splits):
        out[test] = k
    return out


def _skmultilearn_splitter(n_folds: int, seed: int, reseed: bool):
    """scikit-multilearn's splitter as the papers' code calls it, ``random_state=seed``.

    The release on PyPI (0.2.0) draws its tie-breaks from numpy's global generator, seeded once
    here; its later source re-seeds that generator with ``seed`` before every tie-break between
    folds (``reseed=True``, emulated by wrapping the tie-break). Either way the splitter only tests
    ``random_state`` for truth; it is set after construction because recent scikit-learn refuses a
    ``random_state`` without shuffling in the constructor the splitter inherits.
    """
    from skmultilearn.model_selection import IterativeStratification
    from skmultilearn.model_selection import iterative_stratification as module

    if reseed and not hasattr(module, "_mlbs_original_tie_break"):
        module._mlbs_original_tie_break = module._fold_tie_break

        def tie_break(desired, M, *rest):
            if len(M) > 1:
                np.random.seed(seed)
            return module._mlbs_original_tie_break(desired, M)

        module._fold_tie_break = tie_break
    splitter = IterativeStratification(n_splits=n_folds, order=1)
    splitter.random_state = seed
    np.random.seed(seed)
    return splitter


def compare(name: str, seed: int = 42, n_folds: int = 5, reseed: bool = False) -> dict:
    from mlbs.data.splits import stratified_kfold, validation_split
    from mlbs.experiments.config import ExperimentConfig
    from mlbs.experiments.datasets import prepare

    config = ExperimentConfig.for_protocol("paper-code")
    data = prepare(name, config, seed)
    Y = data.Y.astype(np.int8)
    n, q = Y.shape
    t0 = time.perf_counter()
    ours = stratified_kfold(Y, n_splits=n_folds, seed=seed)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    skml = list(_skmultilearn_splitter(n_folds, seed, reseed).split(np.zeros((n, 1)), Y))
    t_skml = time.perf_counter() - t0
    row = {"dataset": name, "n": n, "q": q, "seconds": {"ours": t_ours, "skmultilearn": t_skml}}
    for tag, splits in (("ours", ours), ("skmultilearn", skml)):
        empty_fold = empty_half = 0
        per_fold = np.zeros((n_folds, q), dtype=int)
        for k, (train, test) in enumerate(splits):
            counts = Y[test].sum(0)
            per_fold[k] = counts
            empty_fold += int((counts == 0).sum())
            _, _, test_half = validation_split("zhou2024", train, test, seed=seed)
            empty_half += int((Y[test_half].sum(0) == 0).sum())
        sizes = [len(test) for _, test in splits]
        row[tag] = {"empty_label_folds": empty_fold, "empty_label_test_halves": empty_half,
                    "fold_sizes": sizes, "positives_spread": int((per_fold.max(0) - per_fold.min(0)).sum())}
    a, b = fold_ids(ours, n), fold_ids(skml, n)
    overlap = np.array([[np.sum((a == i) & (b == j)) for j in range(n_folds)] for i in range(n_folds)])
    same, used_i, used_j = 0, set(), set()
    for i, j in sorted(np.ndindex(overlap.shape), key=lambda ij: -overlap[ij]):
        if i not in used_i and j not in used_j:
            same += int(overlap[i, j])
            used_i.add(i)
            used_j.add(j)
    row["same_fold_rows"] = same
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--reseed", action="store_true",
                        help="scikit-multilearn's later source: the global generator re-seeded before every tie-break")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    print("| dataset | n | q | label/fold pairs without positives (ours / skml) | in the paper-code test half "
          "(ours / skml) | test fold sizes (ours / skml) | positives spread (ours / skml) | rows in the same fold |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        r = compare(name, args.seed, reseed=args.reseed)
        rows.append(r)
        o, s = r["ours"], r["skmultilearn"]
        print(f"| {name} | {r['n']} | {r['q']} | {o['empty_label_folds']} / {s['empty_label_folds']} | "
              f"{o['empty_label_test_halves']} / {s['empty_label_test_halves']} | "
              f"{min(o['fold_sizes'])}-{max(o['fold_sizes'])} / {min(s['fold_sizes'])}-{max(s['fold_sizes'])} | "
              f"{o['positives_spread']} / {s['positives_spread']} | {r['same_fold_rows'] / r['n']:.0%} |", flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as handle:
                json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
