"""Selection-pressure and mixture schedules over epochs (Liu et al. 2026; Song et al. 2020).

A schedule maps an epoch index e (0-based) to a value. The history-based policies refresh P at
the end of every epoch; the epoch at which the schedule is read is

- ``"lagged"`` (default; the code of Zhou et al. 2024b and Liu et al. 2026): the epoch e whose
  end triggers the refresh, P being used in epoch e + 1;
- ``"current"``: the epoch e + 1 that P will be used in.

See :func:`evaluation_epoch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULE_EVALS = ("lagged", "current")


def _finite(name: str, value) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True)
class Const:
    """s(e) = value for every epoch."""

    value: float

    def __post_init__(self):
        _finite("value", self.value)

    def __call__(self, epoch: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class ExpDecay:
    """Geometric interpolation from s0 (epoch e0) to s1 (epoch e1).

    s(e) = s0 * (s1 / s0) ** ((e - e0) / (e1 - e0)), then s(e) = max(s(e), floor) when ``floor``
    is set. With ``hold=True`` s(e) = s0 for e < e0; ``hold=False``
    extrapolates before e0 too (the schedule in the code of Zhou et al. 2024b, whose swapped arguments
    e0 = 100, e1 = 10 make it *increase*: s(e) = 8 * 8 ** ((e - 100) / 90)).

    Parameters
    ----------
    s0, s1 : float
        Values at e0 and e1, both > 0.
    e0, e1 : float
        Anchor epochs, e0 != e1.
    floor : float, optional
        Lower bound (D2ACE: 1).
    hold : bool
        Keep s0 before e0.
    """

    s0: float
    s1: float
    e0: float
    e1: float
    floor: float | None = None
    hold: bool = True

    def __post_init__(self):
        for name in ("s0", "s1"):
            if not _finite(name, getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if _finite("e0", self.e0) == _finite("e1", self.e1):
            raise ValueError(f"e0 and e1 must differ, got {self.e0!r} for both")
        if self.floor is not None:
            _finite("floor", self.floor)

    def __call__(self, epoch: int) -> float:
        if self.hold and epoch < self.e0:
            value = float(self.s0)
        else:
            value = self.s0 * (self.s1 / self.s0) ** ((epoch - self.e0) / (self.e1 - self.e0))
        return value if self.floor is None else max(value, float(self.floor))


@dataclass(frozen=True)
class Linear:
    """b(e) = b0 + (b1 - b0) * (clip(e, e0, e1) - e0) / (e1 - e0)."""

    b0: float
    b1: float
    e0: float
    e1: float

    def __post_init__(self):
        for name in ("b0", "b1"):
            _finite(name, getattr(self, name))
        if not _finite("e0", self.e0) < _finite("e1", self.e1):
            raise ValueError(f"linear schedule needs e0 < e1, got e0={self.e0!r}, e1={self.e1!r}")

    def __call__(self, epoch: int) -> float:
        t = (min(max(epoch, self.e0), self.e1) - self.e0) / (self.e1 - self.e0)
        return self.b0 + (self.b1 - self.b0) * t


def d2ace_pressure() -> ExpDecay:
    """8 -> 1 over epochs 10 -> 100, floor 1 (the code of Liu et al. 2026; also the default of
    Uncertain and ActiveBias)."""
    return ExpDecay(8.0, 1.0, 10, 100, floor=1.0)


def d2ace_beta() -> Linear:
    """beta 0.7 -> 0.3 over epochs 10 -> 70 (the code of Liu et al. 2026)."""
    return Linear(0.7, 0.3, 10, 70)


def evaluation_epoch(finished_epochs: int, mode: str = "lagged") -> int:
    """Epoch at which the schedules are read for a refresh after ``finished_epochs`` epochs.

    ``"lagged"``: finished_epochs - 1 (the epoch that just ended; -1 before any, which reads
    the schedules' initial value); ``"current"``: finished_epochs (the epoch about to be sampled).
    """
    if mode not in SCHEDULE_EVALS:
        raise ValueError(f"schedule_eval must be one of {SCHEDULE_EVALS}, got {mode!r}")
    return finished_epochs - 1 if mode == "lagged" else finished_epochs


def check_schedule(name: str, schedule, *, number_above: float | None = None):
    """A schedule is any callable epoch -> float; a number means a constant schedule (which must
    exceed ``number_above`` when given: a constant selection pressure is > 1)."""
    if isinstance(schedule, (int, float)):
        if number_above is not None and not (math.isfinite(schedule) and schedule > number_above):
            raise ValueError(f"{name} must be a finite number > {number_above:g} or a schedule, got {schedule!r}")
        return Const(float(schedule))
    if not callable(schedule):
        raise TypeError(f"{name} must be a number or a callable epoch -> value, got {type(schedule).__name__}")
    return schedule
