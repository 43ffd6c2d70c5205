"""Convergence plots (Zhou et al. 2024, section 4.3) of one (model, dataset), over all its folds.

Six panels, one colour per method:

* the full training-set loss (mean binary cross-entropy in eval mode, logged off the clock after
  every epoch) by epoch and by training time (training steps plus the sampler, evaluation excluded);
* the mean loss of the batches each method selected, by epoch -- labelled as such: a method that
  selects high-loss samples on purpose sits above Random on this curve without training worse;
* the validation Macro-AUC by epoch and by training time;
* the test Macro-AUC of every fold (dots) and their mean (bar), with the checkpoint's weights.

Curves are the mean over the folds still training at that epoch (early stopping ends folds at
different epochs), with a band from the smallest to the largest fold value. Each fold's chosen
epoch (its best validation epoch, or its last under ``checkpoint="final"``) is marked on the
validation curves, and the median chosen epoch is a dotted vertical line on the epoch panels.

matplotlib is imported lazily with the non-interactive Agg backend.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["convergence_plot", "fold_band"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fold_band(curves) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min, max and count over folds of curves of unequal length, per epoch.

    Parameters
    ----------
    curves : sequence of sequences of float (None for undefined)
        One curve per fold; epoch ``e`` averages the folds that have a defined value there.

    Returns
    -------
    mean, low, high : (E,) arrays
        NaN where no fold has a value; ``E`` is the longest curve.
    count : (E,) int array
    """
    length = max((len(c) for c in curves), default=0)
    table = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        table[i, :len(c)] = [np.nan if v is None else float(v) for v in c]
    count = np.isfinite(table).sum(axis=0)
    with np.errstate(invalid="ignore"):
        safe = np.where(np.isfinite(table), table, 0.0)
        mean = np.where(count > 0, safe.sum(axis=0) / np.maximum(count, 1), np.nan)
        low = np.where(count > 0, np.nanmin(np.where(np.isfinite(table), table, np.inf), axis=0), np.nan)
        high = np.where(count > 0, np.nanmax(np.where(np.isfinite(table), table, -np.inf), axis=0), np.nan)
    return mean, low, high, count


def convergence_plot(records: list[dict], model: str, dataset: str, path, *, seed=None) -> Path:
    """Write the six-panel convergence figure of one (model, dataset) as a PNG.

    Parameters
    ----------
    records : list of dict
        Records of one configuration.
    model, dataset : str
    path : path
        Output file (folders are created).
    seed : int, optional
        The seed shown (default: the smallest available); all its folds are drawn.

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        No record of that (model, dataset).
    """
    from .aggregate import methods_of

    sel = [r for r in records if r["key"]["model"] == model and r["key"]["dataset"] == dataset]
    if seed is None and sel:
        seed = min(r["key"]["seed"] for r in sel)
    sel = [r for r in sel if r["key"]["seed"] == seed]
    if not sel:
        raise ValueError(f"no record of {dataset}/{model}")
    plt = _pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    (ax_loss, ax_loss_t, ax_sel), (ax_val, ax_val_t, ax_test) = axes
    methods = methods_of(sel)
    n_folds = 0
    val_floor = []
    test_by_fold: dict[int, list] = {}
    for i, method in enumerate(methods):
        color = f"C{i}"
        runs = [r["result"] for r in sorted(sel, key=lambda r: r["key"]["fold"]) if r["key"]["method"] == method]
        n_folds = max(n_folds, len(runs))
        label = f"{method} ({len(runs)} folds)"
        time_mean = fold_band([r["curves"]["train_time"] for r in runs])[0]
        chosen = [r["best_epoch"] for r in runs]
        median_chosen = int(np.median(chosen))
        panels = ((ax_loss, ax_loss_t, "train_loss_eval"), (ax_sel, None, "train_loss"),
                  (ax_val, ax_val_t, "val_auc"))
        for ax_epoch, ax_time, field in panels:
            mean, low, high, _ = fold_band([r["curves"][field] for r in runs])
            if not np.isfinite(mean).any():
                continue
            if field == "val_auc":  # the first epochs (near 0.5) would flatten the interesting part
                val_floor.append(np.nanmin(mean[min(mean.size - 1, mean.size // 10):]))
            epochs = np.arange(1, mean.size + 1)
            ax_epoch.plot(epochs, mean, color=color, label=label)
            ax_epoch.fill_between(epochs, low, high, color=color, alpha=0.15, linewidth=0)
            ax_epoch.axvline(median_chosen + 1, color=color, linestyle=":", linewidth=1)
            if ax_time is not None:
                ax_time.plot(time_mean, mean, color=color, label=label)
                ax_time.fill_between(time_mean, low, high, color=color, alpha=0.15, linewidth=0)
        for r, e in zip(runs, chosen):
            val = r["curves"]["val_auc"]
            if 0 <= e < len(val) and val[e] is not None:
                ax_val.plot(e + 1, val[e], marker="v", color=color, markersize=6, linestyle="none")
                ax_val_t.plot(r["curves"]["train_time"][e], val[e], marker="v", color=color, markersize=6,
                              linestyle="none")
        test = [r["test"]["macro_auc"] for r in runs]
        for fold, value in zip(sorted(r["key"]["fold"] for r in sel if r["key"]["method"] == method), test):
            test_by_fold.setdefault(fold, []).append((i, value))
        ax_test.scatter(np.full(len(test), i), test, color=color, s=22, zorder=2)
        ax_test.hlines(np.mean(test), i - 0.3, i + 0.3, color=color, linewidth=2)
    for points in test_by_fold.values():  # each fold's values, joined across methods (paired folds)
        ax_test.plot([p[0] for p in points], [p[1] for p in points], color="0.6", linewidth=0.7, zorder=0)
    if val_floor:
        for ax in (ax_val, ax_val_t):
            top = ax.get_ylim()[1]
            ax.set_ylim(max(min(val_floor) - 0.02 * (top - min(val_floor)) - 0.01, ax.get_ylim()[0]), top)
    band = "line: mean over the folds still training; band: min-max over folds"
    ax_loss.set(title="full training-set loss (eval mode) by epoch", xlabel="epoch", ylabel="mean BCE, all rows")
    ax_loss_t.set(title="full training-set loss (eval mode) by training time",
                  xlabel="training time (s; evaluation excluded)", ylabel="mean BCE, all rows")
    ax_sel.set(title="mean loss of the batches each method SELECTED\n(not the training-set loss)",
               xlabel="epoch", ylabel="mean BCE, selected batches")
    ax_val.set(title="validation Macro-AUC by epoch (▼: each fold's chosen epoch;\nfirst tenth of the epochs "
                     "may be cut off)", xlabel="epoch", ylabel="Macro-AUC")
    ax_val_t.set(title="validation Macro-AUC by training time (▼: chosen epoch)",
                 xlabel="training time (s; evaluation excluded)", ylabel="Macro-AUC")
    ax_test.set(title="test Macro-AUC per fold (bar: mean; grey: same fold)", xticks=range(len(methods)), xticklabels=methods,
                ylabel="Macro-AUC")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    for ax in (ax_loss, ax_loss_t, ax_sel, ax_val, ax_val_t):
        if ax.has_data():
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{dataset} / {model}, seed {seed}, {n_folds} folds. {band}; dotted: median chosen epoch")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
