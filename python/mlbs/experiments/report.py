"""Reports from stored results: tables (Markdown, CSV), Wilcoxon tests, time to target, plots.

* :func:`table2_markdown` — the layout of Zhou et al. 2024, Table 2: one table per model, a row
  per dataset, a column per (metric, method), cells ``mean ± std`` over the folds (population std,
  4 decimals), the best method of each metric in bold on every row (all methods tied at 4
  decimals are bold);
* :func:`dataset_table_markdown` — one (model, dataset): a row per metric, a column per method;
* :func:`cells_csv` — the same numbers in long form, with the per-fold values;
* :func:`wilcoxon_markdown` — Zhou et al. 2024, Table 3: each method against the baseline across datasets;
* :func:`plain_reading` — one paragraph per (model, dataset): which method is ahead of the
  baseline on which metric, by how much relative to the fold spread, and whether that is
  significant over the folds (Wilcoxon signed-rank test, paired by fold);
* :func:`time_markdown` — time to reach the baseline's best validation Macro-AUC (or its minimum
  training loss);
* :func:`convergence_warnings` — runs whose best validation epoch is the last one trained;
* :func:`write_report` — all of them, plus the convergence PNGs, into a folder.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
from pathlib import Path

from .aggregate import aggregate, datasets_of, methods_of, models_of
from .evaluate import LOWER_IS_BETTER, METRICS
from .plots import convergence_plot
from .store import ResultStore
from .timing import CURVES, time_to_target
from .wilcoxon import signed_rank_test

__all__ = ["PAPER_METRICS", "format_cell", "best_methods", "table2_markdown", "dataset_table_markdown",
           "cells_csv", "wilcoxon_rows", "wilcoxon_markdown", "fold_comparison", "plain_reading", "time_markdown",
           "convergence_warnings", "ReportFiles", "write_report"]

#: The six metrics of Zhou et al. 2024, Table 2.
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
    """Markdown tables in the layout of Zhou et al. 2024, Table 2 (see the module docstring)."""
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
    """The layout of Zhou et al. 2024, Table 3: a row per metric, a column per (model, method): decision (p; n)."""
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


@dataclass(frozen=True)
class FoldComparison:
    """A method against the baseline on one metric of one (model, dataset), paired by fold.

    Attributes
    ----------
    difference : float
        Mean of the method minus mean of the baseline, oriented so that > 0 favours the method.
    spread : float
        The fold spread: mean of the two population stds over the folds (the ``±`` of the table).
    ahead : int
        Folds where the method is better.
    test : WilcoxonResult or None
        Two-sided signed-rank test over the paired folds (None with fewer than two folds).
    """

    method: str
    metric: str
    n_folds: int
    difference: float
    spread: float
    ahead: int
    test: object


def fold_comparison(cells: dict, model: str, dataset: str, method: str, baseline: str, metric: str):
    """:class:`FoldComparison` of ``method`` against ``baseline``; None if either is missing."""
    a, b = cells.get((model, dataset, method, metric)), cells.get((model, dataset, baseline, metric))
    if a is None or b is None:
        return None
    base = dict(zip(b.folds, b.values))
    pairs = [(v, base[f]) for f, v in zip(a.folds, a.values) if f in base and math.isfinite(v)
             and math.isfinite(base[f])]
    if not pairs:
        return None
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    mv, bv = [p[0] for p in pairs], [p[1] for p in pairs]
    diff = sign * (sum(mv) - sum(bv)) / len(pairs)
    spread = (float(np.std(mv)) + float(np.std(bv))) / 2.0
    ahead = sum(sign * (x - y) > 0 for x, y in pairs)
    test = signed_rank_test(mv, bv, metric) if len(pairs) >= 2 else None
    return FoldComparison(method, metric, len(pairs), diff, spread, ahead, test)


def plain_reading(cells: dict, model: str, dataset: str, methods, baseline: str = "random",
                  metrics=PAPER_METRICS) -> str:
    """One plain-language paragraph on a (model, dataset): each method against ``baseline``.

    For every metric: the difference of the fold means (in favour of the method when positive),
    its size relative to the fold spread (mean of the two stds), on how many folds the method is
    ahead, and the two-sided Wilcoxon signed-rank test over the folds paired by fold (both runs of
    a fold share the data split and the initial weights). With n folds the smallest two-sided
    exact p-value is ``2 / 2^n`` (0.0625 for 5 folds), so 5 folds can never show significance at
    0.05; the paragraph says so.
    """
    parts = []
    n_max = 0
    significant = []
    for method in methods:
        if method == baseline:
            continue
        comps = [c for c in (fold_comparison(cells, model, dataset, method, baseline, x) for x in metrics) if c]
        if not comps:
            continue
        n_max = max(n_max, max(c.n_folds for c in comps))
        ahead = [c for c in comps if c.difference > 0]
        behind = [c for c in comps if c.difference < 0]

        def say(c):
            ratio = "" if not c.spread > 0 else f", {abs(c.difference) / c.spread:.1f}x the fold spread"
            p = "" if c.test is None or not math.isfinite(c.test.p) else f", p = {c.test.p:.2f}"
            return f"{METRICS[c.metric]} by {abs(c.difference):.4f} ({c.ahead}/{c.n_folds} folds better{ratio}{p})"

        text = f"{method} is ahead of {baseline} on {len(ahead)} of {len(comps)} metrics"
        if ahead:
            text += ": " + ", ".join(say(c) for c in ahead)
        if behind:
            text += "; behind on " + ", ".join(say(c) for c in behind)
        parts.append(text + ".")
        significant += [(c, method) for c in comps if c.test is not None and c.test.decision != "tie"]
    if not parts:
        return f"{dataset} / {model}: no method to compare with {baseline}.\n"
    head = (f"**Reading, {dataset} / {model}** (difference of the fold means; in brackets the folds where the "
            "method is better, the difference in units of the fold spread, i.e. the mean of the two ± above, and "
            "the p-value over the folds): ")
    tail = " Significance: two-sided Wilcoxon signed-rank test over the folds, paired by fold, α = 0.05: "
    if significant:
        tail += "significant for " + "; ".join(f"{m} on {METRICS[c.metric]} ({c.test.decision}, p = {c.test.p:.3f})"
                                               for c, m in significant) + "; every other difference is not."
    else:
        tail += "no difference is significant."
    if n_max and 2.0 / 2 ** n_max >= 0.05:
        tail += (f" With {n_max} folds the smallest possible p is {2.0 / 2 ** n_max:.4f}, so no difference can "
                 "reach 0.05 whatever its size; more folds or seeds (--seeds) are needed for a decision.")
    return head + " ".join(parts) + tail + "\n"


def convergence_warnings(records) -> list[str]:
    """One line per run whose best validation epoch is the last one trained (not converged)."""
    out = []
    for r in records:
        res, k = r["result"], r["key"]
        if res.get("best_is_last"):
            out.append(f"{k['dataset']}/{k['model']}/{k['method']} fold {k['fold']} seed {k['seed']}: best "
                       f"validation epoch {res['best_epoch'] + 1} is the last of {res.get('epochs_run')} trained")
    return out


def _convergence_markdown(records) -> str:
    lines = convergence_warnings(records)
    stopped = sum(bool(r["result"].get("early_stopped")) for r in records)
    head = (f"{stopped} of {len(records)} runs stopped early (no better validation Macro-AUC for the "
            "patience); ")
    if not lines:
        return head + "in every run the best validation epoch came before the last epoch trained.\n"
    return (head + f"**warning: in {len(lines)} runs the best validation epoch is the last one trained, so "
            "those models had not converged** (a larger epoch budget or learning rate would change them):\n\n"
            + "\n".join(f"- {x}" for x in lines) + "\n")


_TARGETS = {"val_auc": "best validation Macro-AUC", "eval": "minimum full training-set loss (eval mode)",
            "batches": "minimum mean loss of its own selected batches"}


def time_markdown(entries, baseline: str = "random") -> str:
    """Time to reach the baseline's best value of a curve, per (model, dataset, method)."""
    if not entries:
        return f"No time-to-target: no {baseline} run (or the curve was not logged).\n"
    curve = entries[0].curve
    lines = [f"Training time to reach {baseline}'s {_TARGETS[curve]} (curve `{curve}`; "
             "mean over the folds where it was reached; evaluation time excluded)", "",
             "| Model | Dataset | Method | reached | mean time (s) | change vs " + baseline + " |",
             "|---|---|---|---|---|---|"]
    for e in entries:
        mean = "–" if not math.isfinite(e.mean_time) else f"{e.mean_time:.2f}"
        rel = "–" if not math.isfinite(e.relative_change) else f"{100 * e.relative_change:+.1f} %"
        lines.append(f"| {e.model} | {e.dataset} | {e.method} | {e.reached}/{len(e.times)} | {mean} | {rel} |")
    return "\n".join(lines) + "\n"


def _stopping(config: dict) -> str:
    p = config.get("patience", 0)
    return f" (early stopping after {p} epochs without a better validation Macro-AUC)" if p else ""


def _rates(config: dict, models) -> str:
    if config.get("lr") is not None:
        return f"{config['lr']:g}"
    return ", ".join(f"{m} {config['model_lr'][m]:g}" for m in models if m in config.get("model_lr", {}))


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote, and the text printed for the terminal."""

    markdown: Path
    csv: Path
    plots: tuple
    summary: str


def write_report(store: ResultStore, config_hash: str, out_dir, *, baseline: str = "random",
                 plots: bool = True) -> ReportFiles:
    """Write ``report.md``, ``table2.csv``, ``table2_final.csv`` and ``plots/*.png`` into ``out_dir``.

    Parameters
    ----------
    store : ResultStore
    config_hash : str
        The configuration reported (records of other configurations are never read).
    out_dir : path
    baseline : str
        Method the others are tested against and whose best validation Macro-AUC (and minimum
        losses) are the time targets.
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
    ttt = "\n".join(time_markdown(time_to_target(records, c, baseline), baseline) for c in CURVES)
    readings = [plain_reading(cells, m, d, methods, baseline) for m in models for d in datasets
                if any((m, d, a, "macro_f1") in cells for a in methods)]
    convergence = _convergence_markdown(records)
    png = []
    if plots:
        for m in models:
            for d in datasets:
                try:
                    png.append(convergence_plot(records, m, d, out_dir / "plots" / f"{d}_{m}.png"))
                except ValueError:
                    continue
    checkpoint = "best validation epoch" if config["checkpoint"] == "best" else "final epoch"
    head = [f"# mlbs results (configuration {config_hash})", "",
            f"Protocol `{config['protocol']}` (version {config['protocol_version']}): at most {config['epochs']} "
            f"epochs{_stopping(config)}, batch {config['batch_size']}, learning rate {_rates(config, models)}, "
            f"{config['n_folds']}-fold iterative stratification, validation `{config['validation']}`, "
            f"test with the {checkpoint} weights. Records: {len(records)}.", ""]
    text = "\n".join(head) + "\n## Test metrics\n\n" + \
        "\n".join(t + "\n" + r for t, r in zip(tables, readings)) + \
        "\n## Convergence\n\n" + convergence + \
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
    summary = "\n".join(t + "\n" + r for t, r in zip(tables, readings)) + "\n" + \
        time_markdown(time_to_target(records, "val_auc", baseline), baseline) + "\n" + convergence
    return ReportFiles(md, csv_path, tuple(png), summary)
