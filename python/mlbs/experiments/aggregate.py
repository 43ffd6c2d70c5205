"""Fold results aggregated per (model, dataset, method): mean and population std per metric.

As in the papers, the fold values are averaged and their population standard deviation
(ddof = 0) is reported. The aggregation keeps the per-fold values and the seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import METRICS

__all__ = ["Cell", "aggregate", "methods_of", "datasets_of", "models_of"]


@dataclass(frozen=True)
class Cell:
    """One metric of one (model, dataset, method) over its folds.

    Attributes
    ----------
    values : tuple of float
        Per-fold values in (seed, fold) order; NaN for undefined values.
    folds : tuple of (seed, fold)
    """

    model: str
    dataset: str
    method: str
    metric: str
    values: tuple
    folds: tuple

    @property
    def mean(self) -> float:
        v = np.asarray(self.values, dtype=np.float64)
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    @property
    def std(self) -> float:
        v = np.asarray(self.values, dtype=np.float64)
        return float(np.nanstd(v, ddof=0)) if np.isfinite(v).any() else float("nan")

    @property
    def n(self) -> int:
        return len(self.values)


def aggregate(records: list[dict], part: str = "test") -> dict[tuple[str, str, str, str], Cell]:
    """Cells keyed by (model, dataset, method, metric) for every metric of :data:`METRICS`.

    Parameters
    ----------
    records : list of dict
        Records of one configuration (:meth:`ResultStore.load`).
    part : {"test", "test_final"}
        Metrics at the protocol's checkpoint, or with the final-epoch weights.
    """
    groups: dict[tuple, list] = {}
    for r in records:
        k = r["key"]
        groups.setdefault((k["model"], k["dataset"], k["method"]), []).append(r)
    out = {}
    for (model, dataset, method), rs in groups.items():
        rs = sorted(rs, key=lambda r: (r["key"]["seed"], r["key"]["fold"]))
        folds = tuple((r["key"]["seed"], r["key"]["fold"]) for r in rs)
        for metric in METRICS:
            vals = tuple(float("nan") if r["result"][part].get(metric) is None else float(r["result"][part][metric])
                         for r in rs)
            out[(model, dataset, method, metric)] = Cell(model, dataset, method, metric, vals, folds)
    return out


def _ordered(records: list[dict], field: str, preferred=()) -> list[str]:
    seen = list(dict.fromkeys(r["key"][field] for r in records))
    first = [p for p in preferred if p in seen]
    return first + [s for s in seen if s not in first]


def methods_of(records: list[dict]) -> list[str]:
    """Methods present, Random first, then in the order of :data:`~mlbs.experiments.methods.METHODS`."""
    from .methods import METHODS

    return _ordered(records, "method", list(METHODS))


def datasets_of(records: list[dict]) -> list[str]:
    """Datasets present, in order of first appearance."""
    return _ordered(records, "dataset")


def models_of(records: list[dict]) -> list[str]:
    """Models present, in order of first appearance."""
    return _ordered(records, "model")
