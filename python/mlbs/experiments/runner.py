"""Running a grid of datasets x models x methods x folds into a :class:`ResultStore`, with resume.

Runs whose record exists are skipped, so a grid that was interrupted continues where it stopped.
The runs are trained by an executor (:mod:`mlbs.experiments.executors`: this process, worker
processes, a Ray cluster); this module alone writes the store, one record as each run finishes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

from .config import ExperimentConfig
from .datasets import canonical_dataset
from .executors import RunFailure, RunTask, SerialExecutor
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


def run_grid(grid: Grid, config: ExperimentConfig, store: ResultStore, *, executor=None,
             on_start: Callable[[RunKey], None] | None = None,
             on_epoch: Callable[[RunKey, int, int], None] | None = None,
             on_done: Callable[[RunKey, dict], None] | None = None) -> dict:
    """Run every key of ``grid`` that has no record yet, saving each record as it finishes.

    Parameters
    ----------
    grid : Grid
    config : ExperimentConfig
    store : ResultStore
    executor : optional
        Where the runs are trained (:mod:`mlbs.experiments.executors`); default: this process,
        one run at a time.
    on_start, on_epoch, on_done : callable, optional
        Progress hooks: ``on_start(key)``, ``on_epoch(key, epoch, epochs)`` (not called by
        executors that cannot report epochs), ``on_done(key, result)``.

    Returns
    -------
    dict
        ``config_hash``, ``done`` (keys run now, in the order they finished), ``skipped`` (keys
        that had a record), ``busy`` (keys another process was running: left to it), ``failed``
        (:class:`~mlbs.experiments.executors.RunFailure` of the runs that did not finish; they
        have no record).
    """
    bad = [f for f in grid.folds if not 0 <= f < config.n_folds]
    if bad:
        raise ValueError(f"folds {bad} are outside [0, {config.n_folds})")
    config_hash = store.save_config(config)
    store.clean_temporaries()
    executor = SerialExecutor() if executor is None else executor
    done, skipped, busy, failed, pending = [], [], [], [], []
    for key in grid.keys():
        (skipped if store.has(config, key) else pending).append(key)
    claims = {}

    def claimed_tasks():
        # Each run is claimed when the executor takes it (ResultStore.try_claim), so another
        # process on the same store skips the runs this one holds and the two share the grid.
        for key in pending:
            claim = store.try_claim(config, key)
            if claim is None:
                (skipped if store.has(config, key) else busy).append(key)
                continue
            claims[key] = claim
            yield RunTask(key, config)

    try:
        for key, outcome in executor.run(claimed_tasks(), on_start=on_start, on_epoch=on_epoch):
            with claims.pop(key):
                if isinstance(outcome, RunFailure):
                    failed.append(outcome)
                    continue
                store.save(config, key, outcome)
            done.append(key)
            if on_done is not None:
                on_done(key, outcome)
    finally:
        for claim in claims.values():
            claim.release()
    return {"config_hash": config_hash, "done": done, "skipped": skipped, "busy": busy, "failed": failed}
