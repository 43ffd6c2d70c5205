"""Learning-rate sweep of the ``mlbs`` protocol's models, next to one-vs-rest logistic regression.

For each (dataset, model, learning rate) the script trains the model with Random batches on every
fold under the ``mlbs`` protocol (the configuration of :class:`mlbs.experiments.ExperimentConfig`
with only ``lr`` changed, early stopping included) and prints, over the folds: the best validation
Macro-AUC, the test Macro-AUC at the best-validation epoch (mean ± population std), the best epoch
(mean and largest), how many folds had their best epoch at the last epoch trained (not converged)
and how many stopped early, and the training time. ``--logreg`` adds one-vs-rest logistic regression
(scikit-learn ``LogisticRegression``, lbfgs) on the same folds, the same validation split and the
same min-max scaling, its inverse regularisation ``C`` chosen per fold on the validation split
from ``--logreg-c``. The defaults of ``mlbs.experiments.config.MODEL_LR`` were chosen from this
table: the largest rate whose best epochs fall inside the budget without losing validation
Macro-AUC.

Usage::

    PYTHONPATH=python nice -n 10 python bench/lr_sweep.py --datasets yeast scene emotions \\
        --models mlp --lrs 1e-4 3e-4 1e-3 3e-3 1e-2 --logreg --json bench/results/lr_sweep_mlp.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from mlbs.experiments.config import ExperimentConfig  # noqa: E402
from mlbs.experiments.datasets import fold_data, prepare  # noqa: E402
from mlbs.experiments.evaluate import test_metrics, validation_score  # noqa: E402
from mlbs.experiments.loop import run_fold  # noqa: E402


def sweep_model(dataset: str, model: str, lr: float, config: ExperimentConfig, folds) -> dict:
    """Random-batch runs of one (dataset, model, lr) on ``folds``; the per-fold figures."""
    cfg = ExperimentConfig.from_dict({**config.as_dict(), "lr": lr})
    runs = []
    for fold in folds:
        r = run_fold(dataset, model, "random", fold, cfg)
        runs.append({"fold": fold, "val_auc": max(v for v in r["curves"]["val_auc"] if v is not None),
                     "test_auc": r["test"]["macro_auc"], "best_epoch": r["best_epoch"],
                     "epochs_run": r["epochs_run"], "best_is_last": r["best_is_last"],
                     "early_stopped": r["early_stopped"], "train_s": r["timing"]["train_s"]})
    return {"dataset": dataset, "model": model, "lr": lr, "runs": runs}


def logistic_regression(dataset: str, config: ExperimentConfig, folds, cs) -> dict:
    """One-vs-rest logistic regression on the protocol's folds, C chosen on the validation split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    prepared = prepare(dataset, config, config.seed)
    runs = []
    for fold in folds:
        data = fold_data(prepared, fold, config, config.seed)
        t0 = time.perf_counter()
        best = None
        for c in cs:
            clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(data.X_train, data.Y_train)
            val = validation_score(data.Y_val, clf.predict_proba(data.X_val), config.val_auc)
            if best is None or val > best[0]:
                best = (val, c, clf)
        val, c, clf = best
        test = test_metrics(data.Y_test, clf.predict_proba(data.X_test).astype(np.float32))
        runs.append({"fold": fold, "val_auc": val, "test_auc": test["macro_auc"], "C": c,
                     "train_s": time.perf_counter() - t0})
    return {"dataset": dataset, "model": "logreg (one-vs-rest)", "lr": None, "runs": runs}


def row_text(row: dict, epochs: int) -> str:
    """One Markdown table row of the sweep."""
    runs = row["runs"]
    test = np.array([r["test_auc"] for r in runs])
    val = np.array([r["val_auc"] for r in runs])
    secs = np.mean([r["train_s"] for r in runs])
    if row["lr"] is None:
        cs = " ".join(f"{r['C']:g}" for r in runs)
        return (f"| {row['dataset']} | {row['model']} | C per fold: {cs} | {val.mean():.4f} | "
                f"{test.mean():.4f} ± {test.std():.4f} | – | – | – | {secs:.1f} |")
    best = np.array([r["best_epoch"] + 1 for r in runs])
    last = sum(r["best_is_last"] for r in runs)
    stopped = sum(r["early_stopped"] for r in runs)
    return (f"| {row['dataset']} | {row['model']} | {row['lr']:g} | {val.mean():.4f} | "
            f"{test.mean():.4f} ± {test.std():.4f} | {best.mean():.0f} (max {best.max()}) of {epochs} | "
            f"{last}/{len(runs)} | {stopped}/{len(runs)} | {secs:.1f} |")


HEADER = ("| dataset | model | lr | best val Macro-AUC | test Macro-AUC (mean ± std) | best epoch | "
          "best = last | stopped early | train s / fold |\n|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["yeast", "scene", "emotions"])
    parser.add_argument("--models", nargs="+", default=["mlp"])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None, help="epoch budget (default: the protocol's)")
    parser.add_argument("--logreg", action="store_true", help="add one-vs-rest logistic regression")
    parser.add_argument("--logreg-c", type=float, nargs="+", default=[0.1, 1.0, 10.0, 100.0])
    parser.add_argument("--json", type=Path, help="write the per-fold rows to this JSON file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", UserWarning)
    config = ExperimentConfig.for_protocol("mlbs", epochs=args.epochs)
    print(f"protocol mlbs (version {config.protocol_version}): {config.epochs} epochs, patience "
          f"{config.patience}, LR warm-up {config.lr_warmup_epochs} epochs, batch {config.batch_size}, "
          f"folds {args.folds}; Random batches\n")
    print(HEADER, flush=True)
    rows = []
    for dataset in args.datasets:
        if args.logreg:
            rows.append(logistic_regression(dataset, config, args.folds, args.logreg_c))
            print(row_text(rows[-1], config.epochs), flush=True)
        for model in args.models:
            for lr in args.lrs:
                rows.append(sweep_model(dataset, model, lr, config, args.folds))
                print(row_text(rows[-1], config.epochs), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": config.as_dict(), "rows": rows}, indent=1))
        print(f"\nrows written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
