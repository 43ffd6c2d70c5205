"""Time each method needs to reach the Random baseline's minimum training loss ([P24] §4.3).

``docs/protocol.md`` §11, library protocol: for each (model, dataset, seed, fold), the target
``L*`` is the minimum over epochs of Random's training-loss curve; ``T(method)`` is the cumulative
training time (training steps plus the sampler, evaluation excluded) at the end of the first epoch
whose loss is at most ``L*``, or "not reached". Two curves are used: the full training-set loss in
eval mode (``"eval"``, curve (b)) and the mean loss of the batches as trained (``"batches"``,
curve (a), closest to the paper's "training loss", biased towards hard samples under selection).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TimeToTarget", "time_to_target", "first_time_below"]

_CURVES = {"eval": "train_loss_eval", "batches": "train_loss"}


def first_time_below(losses, times, target: float):
    """``(epoch, time)`` of the first epoch with ``loss <= target``, or ``(None, None)``."""
    for epoch, (loss, t) in enumerate(zip(losses, times)):
        if loss is not None and loss <= target:
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
        Random's own time to its minimum, per fold.
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


def time_to_target(records: list[dict], curve: str = "eval", baseline: str = "random") -> list[TimeToTarget]:
    """Time-to-target of every method, per (model, dataset).

    Parameters
    ----------
    records : list of dict
        Records of one configuration.
    curve : {"eval", "batches"}
        Which training-loss curve (module docstring).
    baseline : str
        Method whose minimum defines the target.

    Returns
    -------
    list of TimeToTarget
        Empty when no baseline run exists (or the curve was not logged).
    """
    if curve not in _CURVES:
        raise ValueError(f"curve must be one of {sorted(_CURVES)}, got {curve!r}")
    field = _CURVES[curve]
    runs = {}
    for r in records:
        k = r["key"]
        runs[(k["model"], k["dataset"], k["seed"], k["fold"], k["method"])] = r["result"]["curves"]
    out: dict[tuple, tuple[list, list]] = {}
    for (model, dataset, seed, fold, method), curves in sorted(runs.items()):
        base = runs.get((model, dataset, seed, fold, baseline))
        if base is None or any(v is None for v in base[field]) or not base[field]:
            continue
        target = min(base[field])
        _, t_random = first_time_below(base[field], base["train_time"], target)
        _, t = first_time_below(curves[field], curves["train_time"], target)
        times, randoms = out.setdefault((model, dataset, method), ([], []))
        times.append(t)
        randoms.append(t_random)
    return [TimeToTarget(m, d, a, curve, tuple(ts), tuple(rs)) for (m, d, a), (ts, rs) in out.items()]
