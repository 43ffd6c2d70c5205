"""Sanity check of the training loop (issue 6, item 4; ``docs/models.md`` §5.2).

Trains the MLP baseline (d -> 256 -> 256 -> q) with the papers' optimiser (Adam, betas
0.9/0.999, weight decay 1e-4, batch 128, 100 epochs) under the reference protocol of §5.2:
random 5-fold CV (plain k-fold), held-out fold split 50/50 into validation and test, best epoch by
validation Macro-AUC (deep copy), test Macro-AUC. Min-max scaling is fitted on the training fold.
Macro-AUC: sklearn ``roc_auc_score`` (ties 1/2) averaged over the labels with both classes.
Then prints the time per epoch of every model on yeast and bibtex (``model_epoch_time.py``).

Usage::

    PYTHONPATH=python nice python bench/model_sanity.py [--lrs 1e-4 1e-3] [--skip-timing]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: §5.2 reference means (Macro-AUC) of the MLP: (dataset, lr) -> value.
REFERENCE = {
    ("yeast", 1e-3): 0.735,
    ("yeast", 1e-4): 0.707,
    ("scene", 1e-3): 0.951,
    ("scene", 1e-4): 0.945,
}


def macro_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC AUC over the labels that have both classes in ``y_true``."""
    valid = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < y_true.shape[0]]
    return float(np.mean([roc_auc_score(y_true[:, j], scores[:, j]) for j in valid]))


def run_fold(x, y, train, val, test, lr: float, epochs: int, seed: int) -> tuple[float, int]:
    """Train the MLP on one fold; return (test Macro-AUC at the best validation epoch, epoch)."""
    from mlbs.models import MLP, MLPConfig

    lo, hi = x[train].min(0), x[train].max(0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    xs = torch.from_numpy(((x - lo) / scale).astype(np.float32))
    ys = torch.from_numpy(y.astype(np.float32))
    model = MLP(x.shape[1], y.shape[1], MLPConfig(seed=seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    train_t = torch.from_numpy(train)
    best, best_state, best_epoch = -1.0, None, -1
    for epoch in range(epochs):
        model.train()
        order = train_t[torch.randperm(len(train_t), generator=gen)]
        for start in range(0, len(order), 128):
            idx = order[start:start + 128]
            loss = model.training_loss(xs[idx], ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = macro_auc(y[val], model.predict_proba(xs[val]).numpy())
        if score > best:
            best, best_epoch = score, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return macro_auc(y[test], model.predict_proba(xs[test]).numpy()), best_epoch


def sanity(dataset: str, lr: float, epochs: int, folds: int = 5, seed: int = 0) -> dict:
    """5-fold CV of the MLP on ``dataset``; returns the mean/std test Macro-AUC and timing."""
    from mlbs.data import load_dataset

    data = load_dataset(dataset)
    x = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X, dtype=np.float64)
    y = data.Y.toarray()
    y = y[:, y.sum(0) > 20]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(x.shape[0])
    fold_of = np.empty(x.shape[0], dtype=int)
    fold_of[perm] = np.arange(x.shape[0]) % folds
    aucs, epochs_best = [], []
    t0 = time.perf_counter()
    for k in range(folds):
        held = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        held = rng.permutation(held)
        val, test = held[: len(held) // 2], held[len(held) // 2:]
        auc, ep = run_fold(x, y, train, np.sort(val), np.sort(test), lr, epochs, seed + k)
        aucs.append(auc)
        epochs_best.append(ep)
    elapsed = time.perf_counter() - t0
    return {
        "dataset": dataset,
        "lr": lr,
        "auc_mean": float(np.mean(aucs)),
        "auc_std": float(np.std(aucs, ddof=1)),
        "best_epoch_mean": float(np.mean(epochs_best)),
        "sec_per_epoch": elapsed / (folds * epochs),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["yeast", "scene"])
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 1e-3])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--timing-budget", type=float, default=60.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("MLP sanity (5-fold CV, 100 epochs, best validation epoch, test Macro-AUC)")
    failed = False
    for dataset in args.datasets:
        for lr in args.lrs:
            res = sanity(dataset, lr, args.epochs)
            ref = REFERENCE.get((dataset, lr))
            verdict = ""
            if ref is not None:
                ok = abs(res["auc_mean"] - ref) <= 0.01
                failed |= not ok
                verdict = f" reference {ref:.3f} -> {'OK' if ok else 'OFF'} (|diff| " \
                          f"{abs(res['auc_mean'] - ref):.3f}, tolerance 0.01)"
            print(f"  {dataset:6s} lr={lr:g}: Macro-AUC {res['auc_mean']:.3f} +- "
                  f"{res['auc_std']:.3f}, mean best epoch {res['best_epoch_mean']:.0f}, "
                  f"{res['sec_per_epoch']:.3f} s/epoch (incl. validation){verdict}", flush=True)
    if not args.skip_timing:
        import model_epoch_time

        print("\nTime per training epoch (mlbs presets, batch 128, 1 thread)")
        model_epoch_time.run_all(model_epoch_time.MODELS, ["yeast", "bibtex"], "mlbs",
                                 args.timing_budget, 0)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
