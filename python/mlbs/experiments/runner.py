"""Running a grid of datasets x models x methods x folds into a :class:`ResultStore`, with resume.

Runs whose record exists are skipped, so a grid that was interrupted continues where it stopped;
each finished run is saved before the next one starts.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

from .config import ExperimentConfig
from .datasets import canonical_dataset
from .loop import run_fold
from .methods import get_method
from .store import ResultStore, RunKey

__all__ = ["Grid", "run_grid"]


def _model_name(name: str) -> str:
    from mlbs.models import MODELS

    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return key


@dataclass(frozen=True)
class Grid:
    """The runs of a comparison; names are validated and canonicalised on construction.

    Parameters
    ----------
    datasets, models, methods : sequence of str
    folds : sequence of int
        Held-out folds to run (each in ``[0, config.n_folds)``).
    seeds : sequence of int
    """

    datasets: tuple
    models: tuple
    methods: tuple
    folds: tuple
    seeds: tuple = field(default=(0,))

    def __post_init__(self) -> None:
        for name in ("datasets", "models", "methods", "folds", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"the grid needs at least one of {name}")
        object.__setattr__(self, "datasets", tuple(dict.fromkeys(canonical_dataset(d) for d in self.datasets)))
        object.__setattr__(self, "models", tuple(dict.fromkeys(_model_name(m) for m in self.models)))
        object.__setattr__(self, "methods", tuple(dict.fromkeys(get_method(m).name for m in self.methods)))
        object.__setattr__(self, "folds", tuple(dict.fromkeys(int(f) for f in self.folds)))
        object.__setattr__(self, "seeds", tuple(dict.fromkeys(int(s) for s in self.seeds)))

    def keys(self) -> list[RunKey]:
        """All run keys, dataset-major (a dataset's folds are prepared once)."""
        return [RunKey(d, m, a, f, s) for d, m, s, f, a in
                itertools.product(self.datasets, self.models, self.seeds, self.folds, self.methods)]


def run_grid(grid: Grid, config: ExperimentConfig, store: ResultStore, *,
             on_start: Callable[[RunKey], None] | None = None,
             on_epoch: Callable[[RunKey, int, int], None] | None = None,
             on_done: Callable[[RunKey, dict], None] | None = None) -> dict:
    """Run every key of ``grid`` that has no record yet, saving each record as it finishes.

    Parameters
    ----------
    grid : Grid
    config : ExperimentConfig
    store : ResultStore
    on_start, on_epoch, on_done : callable, optional
        Progress hooks: ``on_start(key)``, ``on_epoch(key, epoch, epochs)``, ``on_done(key, result)``.

    Returns
    -------
    dict
        ``config_hash``, ``done`` (keys run now), ``skipped`` (keys that had a record).
    """
    bad = [f for f in grid.folds if not 0 <= f < config.n_folds]
    if bad:
        raise ValueError(f"folds {bad} are outside [0, {config.n_folds})")
    config_hash = store.save_config(config)
    done, skipped = [], []
    for key in grid.keys():
        if store.has(config, key):
            skipped.append(key)
            continue
        if on_start is not None:
            on_start(key)
        hook = None if on_epoch is None else (lambda e, n, _k=key: on_epoch(_k, e, n))
        result = run_fold(key.dataset, key.model, key.method, key.fold, config, seed=key.seed, progress=hook)
        store.save(config, key, result)
        done.append(key)
        if on_done is not None:
            on_done(key, result)
    return {"config_hash": config_hash, "done": done, "skipped": skipped}
