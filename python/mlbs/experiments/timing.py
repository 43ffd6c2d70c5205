"""Time each method needs to reach the Random baseline's best value of a curve (Zhou et al. 2024, section 4.3).

For each (model, dataset, seed, fold), the target is Random's best value over its epochs; ``T(method)``
is the cumulative training time (training steps plus the sampler, evaluation excluded) at the end of
the first epoch whose value is at least as good, or "not reached". Three curves are used:

``"val_auc"``
    the validation Macro-AUC (target: Random's maximum) -- what a user choosing a method asks:
    how long until the model is as good as Random's best;
``"eval"``
    the full training-set loss in eval mode (target: Random's minimum);
``"batches"``
    the mean loss of the batches as trained (closest to the paper's "training loss"; biased
    upwards under selection, which trains on high-loss samples on purpose).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CURVES", "TimeToTarget", "time_to_target", "first_time_reaching"]

#: Curve name -> (field of the record's ``curves``, larger is better).
CURVES = {"val_auc": ("val_auc", True), "eval": ("train_loss_eval", False), "batches": ("train_loss", False)}


def first_time_reaching(values, times, target: float, higher_is_better: bool):
    """``(epoch, time)`` of the first epoch whose value reaches ``target``, or ``(None, None)``.

    Reaching means ``value >= target`` when larger is better, ``value <= target`` otherwise;
    undefined (None) values never reach.
    """
    for epoch, (value, t) in enumerate(zip(values, times)):
        if value is not None and (value >= target if higher_is_better else value <= target):
            return epoch, float(t)
    return None, None


@dataclass(frozen=True)
class TimeToTarget:
    """One method on one (model, dataset), over the folds that have a Random run.

    Attributes
    ----------
    times : tuple of (float or None)
        Seconds to reach the target per fold (None: not reached).
    random_times : tuple of float
        Random's own time to its best value, per fold.
    """

    model: str
    dataset: str
    method: str
    curve: str
    times: tuple
    random_times: tuple

    @property
    def reached(self) -> int:
        return sum(t is not None for t in self.times)

    @property
    def mean_time(self) -> float:
        v = [t for t in self.times if t is not None]
        return float(np.mean(v)) if v else float("nan")

    @property
    def relative_change(self) -> float:
        """Mean over the folds where the target was reached of ``(T - T_random) / T_random``."""
        v = [(t - r) / r for t, r in zip(self.times, self.random_times) if t is not None and r > 0]
        return float(np.mean(v)) if v else float("nan")


def time_to_target(records: list[dict], curve: str = "val_auc", baseline: str = "random") -> list[TimeToTarget]:
    """Time-to-target of every method, per (model, dataset).

    Parameters
    ----------
    records : list of dict
        Records of one configuration.
    curve : {"val_auc", "eval", "batches"}
        Which curve (module docstring).
    baseline : str
        Method whose best value defines the target.

    Returns
    -------
    list of TimeToTarget
        Empty when no baseline run exists (or the curve was not logged).
    """
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {sorted(CURVES)}, got {curve!r}")
    field, higher = CURVES[curve]
    runs = {}
    for r in records:
        k = r["key"]
        runs[(k["model"], k["dataset"], k["seed"], k["fold"], k["method"])] = r["result"]["curves"]
    out: dict[tuple, tuple[list, list]] = {}
    for (model, dataset, seed, fold, method), curves in sorted(runs.items()):
        base = runs.get((model, dataset, seed, fold, baseline))
        defined = [] if base is None else [v for v in base[field] if v is not None]
        if not defined or (curve != "val_auc" and len(defined) < len(base[field])):
            continue
        target = max(defined) if higher else min(defined)
        _, t_random = first_time_reaching(base[field], base["train_time"], target, higher)
        _, t = first_time_reaching(curves[field], curves["train_time"], target, higher)
        times, randoms = out.setdefault((model, dataset, method), ([], []))
        times.append(t)
        randoms.append(t_random)
    from .aggregate import methods_of

    order = {name: i for i, name in enumerate(methods_of(records))}  # the baseline first, as in the tables
    keys = sorted(out, key=lambda k: (k[0], k[1], order[k[2]]))
    return [TimeToTarget(m, d, a, curve, tuple(out[(m, d, a)][0]), tuple(out[(m, d, a)][1])) for m, d, a in keys]
