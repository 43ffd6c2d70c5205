"""Reports from stored results: tables (Markdown, CSV), Wilcoxon tests, time to target, plots.

* :func:`table2_markdown` — [P24] Table 2 layout: one table per model, a row per dataset, a
  column per (metric, method), cells ``mean ± std`` over the folds (population std, 4 decimals),
  the best method of each metric in bold on every row (all methods tied at 4 decimals are bold);
* :func:`dataset_table_markdown` — one (model, dataset): a row per metric, a column per method;
* :func:`cells_csv` — the same numbers in long form, with the per-fold values;
* :func:`wilcoxon_markdown` — [P24] Table 3: each method against the baseline across datasets;
* :func:`time_markdown` — time to reach the baseline's minimum training loss;
* :func:`write_report` — all of them, plus the convergence PNGs, into a folder.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from .aggregate import aggregate, datasets_of, methods_of, models_of
from .evaluate import LOWER_IS_BETTER, METRICS
from .plots import convergence_plot
from .store import ResultStore
from .timing import time_to_target
from .wilcoxon import signed_rank_test

__all__ = ["PAPER_METRICS", "format_cell", "best_methods", "table2_markdown", "dataset_table_markdown",
           "cells_csv", "wilcoxon_rows", "wilcoxon_markdown", "time_markdown", "ReportFiles", "write_report"]

#: The six metrics of [P24] Table 2.
PAPER_METRICS = ("macro_f1", "micro_f1", "macro_auc", "ranking_loss", "hamming_loss", "one_error")

DIGITS = 4


def _arrow(metric: str) -> str:
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def format_cell(mean: float, std: float, digits: int = DIGITS) -> str:
    """``"0.1234 ± 0.0056"``; ``"n/a"`` for an undefined mean."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def best_methods(means: dict[str, float], metric: str, digits: int = DIGITS) -> set[str]:
    """Methods with the best mean after rounding to ``digits`` (all of them when tied).

    Parameters
    ----------
    means : dict
        Method -> mean (NaN values are ignored).
    metric : str
        Smaller is better for :data:`LOWER_IS_BETTER`, larger otherwise.
    """
    rounded = {m: round(v, digits) for m, v in means.items() if v is not None and math.isfinite(v)}
    if not rounded:
        return set()
    pick = min if metric in LOWER_IS_BETTER else max
    best = pick(rounded.values())
    return {m for m, v in rounded.items() if v == best}


def _row(cells, model, dataset, methods, metric):
    present = [m for m in methods if (model, dataset, m, metric) in cells]
    means = {m: cells[(model, dataset, m, metric)].mean for m in present}
    bold = best_methods(means, metric) if len(present) > 1 else set()
    out = []
    for m in methods:
        cell = cells.get((model, dataset, m, metric))
        if cell is None:
            out.append("–")
            continue
        text = format_cell(cell.mean, cell.std)
        out.append(f"**{text}**" if m in bold else text)
    return out


def table2_markdown(cells: dict, models, datasets, methods, metrics=PAPER_METRICS) -> str:
    """Markdown tables in the [P24] Table 2 layout (see the module docstring)."""
    parts = []
    for model in models:
        header = ["Dataset"] + [f"{METRICS[x]} {_arrow(x)} {m}" for x in metrics for m in methods]
        lines = [f"**{model}** (mean ± std over folds; best per metric and row in bold)", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for dataset in datasets:
            if not any((model, dataset, m, x) in cells for m in methods for x in metrics):
                continue
            row = [dataset]
            for x in metrics:
                row += _row(cells, model, dataset, methods, x)
            lines.append("| " + " | ".join(row) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def dataset_table_markdown(cells: dict, model: str, dataset: str, methods, metrics=tuple(METRICS)) -> str:
    """One (model, dataset): a row per metric, a column per method, the best per row in bold."""
    n = max((cells[(model, dataset, m, metrics[0])].n for m in methods if (model, dataset, m, metrics[0]) in cells),
            default=0)
    lines = [f"**{dataset} / {model}** (mean ± std over {n} folds; best per row in bold)", "",
             "| Metric | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for x in metrics:
        lines.append(f"| {METRICS[x]} {_arrow(x)} | " + " | ".join(_row(cells, model, dataset, methods, x)) + " |")
    return "\n".join(lines) + "\n"


def cells_csv(cells: dict) -> str:
    """Long-form CSV: model, dataset, method, metric, mean, std, n_folds, best, fold_values."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "dataset", "method", "metric", "mean", "std", "n_folds", "best", "fold_values"])
    groups: dict[tuple, dict] = {}
    for (model, dataset, method, metric), cell in cells.items():
        groups.setdefault((model, dataset, metric), {})[method] = cell
    for (model, dataset, metric), by_method in groups.items():
        bold = best_methods({m: c.mean for m, c in by_method.items()}, metric) if len(by_method) > 1 else set()
        for method, c in by_method.items():
            w.writerow([model, dataset, method, metric, f"{c.mean:.6f}", f"{c.std:.6f}", c.n, int(method in bold),
                        " ".join(f"{v:.6f}" for v in c.values)])
    return buf.getvalue()


def wilcoxon_rows(cells: dict, models, datasets, methods, baseline: str = "random", metrics=PAPER_METRICS):
    """Per (model, method, metric): the test of the method against ``baseline`` across datasets.

    Only datasets where both have results are paired. Returns a list of dicts with the
    :class:`~mlbs.experiments.wilcoxon.WilcoxonResult` under ``"test"`` (None with fewer than two
    datasets).
    """
    rows = []
    for model in models:
        for method in methods:
            if method == baseline:
                continue
            for x in metrics:
                pairs = [(cells[(model, d, method, x)].mean, cells[(model, d, baseline, x)].mean) for d in datasets
                         if (model, d, method, x) in cells and (model, d, baseline, x) in cells]
                pairs = [p for p in pairs if math.isfinite(p[0]) and math.isfinite(p[1])]
                test = signed_rank_test([p[0] for p in pairs], [p[1] for p in pairs], x) if len(pairs) >= 2 else None
                rows.append({"model": model, "method": method, "metric": x, "n_datasets": len(pairs), "test": test})
    return rows


def wilcoxon_markdown(rows, baseline: str = "random") -> str:
    """[P24] Table 3 layout: a row per metric, a column per (model, method): decision (p; n)."""
    cols = list(dict.fromkeys((r["model"], r["method"]) for r in rows))
    if not cols:
        return f"No method to compare with the baseline {baseline!r}.\n"
    lines = [f"Wilcoxon signed-rank test against {baseline} across datasets (two-sided, α = 0.05; "
             "cell: decision (p; datasets used))", "",
             "| Metric | " + " | ".join(f"{m} {a}" for m, a in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    by = {(r["model"], r["method"], r["metric"]): r for r in rows}
    for x in dict.fromkeys(r["metric"] for r in rows):
        cells = []
        for m, a in cols:
            r = by.get((m, a, x))
            t = None if r is None else r["test"]
            if t is None:
                cells.append(f"n/a (needs ≥ 2 datasets; {0 if r is None else r['n_datasets']})")
            else:
                p = "n/a" if not math.isfinite(t.p) else f"{t.p:.4f}"
                cells.append(f"{'**' + t.decision + '**' if t.decision == 'win' else t.decision} ({p}; {t.n_used})")
        lines.append(f"| {METRICS[x]} | " + " | ".join(cells) + " |")
    smallest = min((r["n_datasets"] for r in rows), default=0)
    if smallest < 6:
        lines += ["", "With fewer than 6 datasets no two-sided exact p-value can fall below 0.05 "
                      "(the smallest is 2 / 2^n), so every decision is a tie."]
    return "\n".join(lines) + "\n"


def time_markdown(entries, baseline: str = "random") -> str:
    """Time to reach the baseline's minimum training loss, per (model, dataset, method)."""
    if not entries:
        return f"No time-to-target: no {baseline} run (or no logged training loss).\n"
    curve = entries[0].curve
    lines = [f"Training time to reach {baseline}'s minimum training loss (curve: {curve}; "
             "mean over the folds where it was reached)", "",
             "| Model | Dataset | Method | reached | mean time (s) | change vs " + baseline + " |",
             "|---|---|---|---|---|---|"]
    for e in entries:
        mean = "–" if not math.isfinite(e.mean_time) else f"{e.mean_time:.2f}"
        rel = "–" if not math.isfinite(e.relative_change) else f"{100 * e.relative_change:+.1f} %"
        lines.append(f"| {e.model} | {e.dataset} | {e.method} | {e.reached}/{len(e.times)} | {mean} | {rel} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, and the text printed for the terminal."""

    markdown: Path
    csv: Path
    plots: tuple
    summary: str


def write_report(store: ResultStore, config_hash: str, out_dir, *, baseline: str = "random",
                 plot_fold: int = 0, plots: bool = True) -> ReportFiles:
    """Write ``report.md``, ``table2.csv``, ``table2_final.csv`` and ``plots/*.png`` into ``out_dir``.

    Parameters
    ----------
    store : ResultStore
    config_hash : str
        The configuration reported (records of other configurations are never read).
    out_dir : path
    baseline : str
        Method the others are tested against and whose minimum loss is the time target.
    plot_fold : int
        Fold shown in the convergence plots.
    plots : bool
        Draw the convergence PNGs.
    """
    records = store.load(config_hash)
    config = store.config(config_hash)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models, datasets, methods = models_of(records), datasets_of(records), methods_of(records)
    cells = aggregate(records, "test")
    tables = [dataset_table_markdown(cells, m, d, methods) for m in models for d in datasets
              if any((m, d, a, "macro_f1") in cells for a in methods)]
    wil = wilcoxon_markdown(wilcoxon_rows(cells, models, datasets, methods, baseline), baseline)
    ttt = time_markdown(time_to_target(records, "eval", baseline), baseline) + "\n" + \
        time_markdown(time_to_target(records, "batches", baseline), baseline)
    png = []
    if plots:
        for m in models:
            for d in datasets:
                try:
                    png.append(convergence_plot(records, m, d, out_dir / "plots" / f"{d}_{m}_fold{plot_fold}.png",
                                                fold=plot_fold))
                except ValueError:
                    continue
    checkpoint = "best validation epoch" if config["checkpoint"] == "best" else "final epoch"
    head = [f"# mlbs results (configuration {config_hash})", "",
            f"Protocol `{config['protocol']}`: {config['epochs']} epochs, batch {config['batch_size']}, "
            f"{config['n_folds']}-fold iterative stratification, validation `{config['validation']}`, "
            f"test with the {checkpoint} weights. Records: {len(records)}.", ""]
    text = "\n".join(head) + "\n## Test metrics\n\n" + "\n".join(tables) + \
        "\n## Table 2 layout\n\n" + table2_markdown(cells, models, datasets, methods) + \
        "\n## Wilcoxon signed-rank test\n\n" + wil + "\n## Time to target\n\n" + ttt
    if config["checkpoint"] == "best":
        text += "\n## Test metrics with the final-epoch weights\n\n" + \
            table2_markdown(aggregate(records, "test_final"), models, datasets, methods)
    if png:
        text += "\n## Convergence plots\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in png) + "\n"
    md = out_dir / "report.md"
    md.write_text(text, encoding="utf-8")
    csv_path = out_dir / "table2.csv"
    csv_path.write_text(cells_csv(cells), encoding="utf-8")
    (out_dir / "table2_final.csv").write_text(cells_csv(aggregate(records, "test_final")), encoding="utf-8")
    summary = "\n".join(tables) + "\n" + ttt
    return ReportFiles(md, csv_path, tuple(png), summary)
