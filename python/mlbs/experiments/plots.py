"""Convergence plots ([P24] §4.3): training loss by epoch, by batch and by wall time, and the
validation Macro-AUC by epoch, one line per method, for one fold of one (model, dataset).

matplotlib is imported lazily with the non-interactive Agg backend.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["convergence_plot"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def convergence_plot(records: list[dict], model: str, dataset: str, path, *, fold: int = 0, seed=None) -> Path:
    """Write the four-panel convergence figure of one (model, dataset, fold) as a PNG.

    Parameters
    ----------
    records : list of dict
        Records of one configuration.
    model, dataset : str
    path : path
        Output file (folders are created).
    fold : int
        The fold shown (the paper shows one fold).
    seed : int, optional
        The seed shown (default: the smallest available).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        No record of that (model, dataset, fold).
    """
    from .aggregate import methods_of

    sel = [r for r in records if r["key"]["model"] == model and r["key"]["dataset"] == dataset
           and r["key"]["fold"] == fold]
    if seed is None and sel:
        seed = min(r["key"]["seed"] for r in sel)
    sel = [r for r in sel if r["key"]["seed"] == seed]
    if not sel:
        raise ValueError(f"no record of {dataset}/{model} fold {fold}")
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (ax_epoch, ax_batch), (ax_time, ax_val) = axes
    by_method = {r["key"]["method"]: r["result"] for r in sel}
    for method in methods_of(sel):
        res = by_method[method]
        c, b = res["curves"], res["batches"]
        epochs = range(1, len(c["train_loss"]) + 1)
        ax_epoch.plot(epochs, c["train_loss"], label=method)
        ax_batch.plot(range(1, len(b["loss"]) + 1), b["loss"], label=method, linewidth=0.6)
        ax_time.plot(c["train_time"], c["train_loss"], label=method)
        ax_val.plot(epochs, [float("nan") if v is None else v for v in c["val_auc"]], label=method)
    ax_epoch.set(title="training loss by epoch", xlabel="epoch", ylabel="mean batch loss")
    ax_batch.set(title="training loss by batch", xlabel="optimizer step", ylabel="batch loss")
    ax_time.set(title="training loss by wall time", xlabel="training time (s, evaluation excluded)",
                ylabel="mean batch loss")
    ax_val.set(title="validation Macro-AUC by epoch", xlabel="epoch", ylabel="Macro-AUC")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{dataset} / {model} / fold {fold} (seed {seed})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
