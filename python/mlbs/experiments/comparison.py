"""Compare batch-selection methods on one's own data from Python: :func:`compare`.

.. code-block:: python

    from mlbs.experiments import compare

    result = compare(X, Y, methods=["random", "adaptive"], models=["mlp"], folds=5, epochs=50)
    print(result.summary)          # one table per (model, dataset): metrics x methods, mean ± std
    result.records                 # one dict per (dataset, model, method, fold, seed)
    result.cells                   # (model, dataset, method, metric) -> fold values, mean, std

The data are ``(X, Y)`` arrays (dense or sparse; ``Y`` binary), files (``data=``: any format of
:func:`mlbs.data.load_path`) and registered dataset names (``datasets=``), in any combination.
Each becomes one dataset of the grid, named as :mod:`mlbs.experiments.datasets` says. The runs
follow the same protocol as ``mlbs compare`` (folds by iterative stratification, labels with few
positives dropped, min-max scaling fitted on each training part, best-validation checkpoint) and
go to a :class:`~mlbs.experiments.store.ResultStore`: ``out=`` keeps it (an interrupted call
resumes; two processes share it), by default a temporary folder is used and removed.
"""
from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["DEFAULT_METHODS", "DEFAULT_MODELS", "Comparison", "compare"]

#: Methods and models compared when none are named (here and by ``mlbs compare``).
DEFAULT_METHODS = ("random", "adaptive", "d2ace")
DEFAULT_MODELS = ("mlp",)


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` returns.

    Attributes
    ----------
    config : ExperimentConfig
        The settings of every run.
    datasets, models, methods : tuple of str
        The grid, as named in the records.
    records : list of dict
        One per finished run: ``key`` (dataset, model, method, fold, seed), ``config`` and
        ``result`` (test metrics, best epoch, per-epoch curves, timings; see
        :func:`mlbs.experiments.loop.run_fold`).
    cells : dict
        ``(model, dataset, method, metric) -> Cell`` with the per-fold values, mean and std
        (:func:`mlbs.experiments.aggregate.aggregate`).
    summary : str
        Markdown: a table per (model, dataset), a row per metric, a column per method.
    store : Path or None
        The result store folder, when ``out`` was given.
    """

    config: object
    datasets: tuple
    models: tuple
    methods: tuple
    records: list
    cells: dict
    summary: str
    store: Path | None

    def table(self, model: str | None = None, dataset: str | None = None) -> str:
        """Markdown table of one (model, dataset) (default: the first of each)."""
        from .report import dataset_table_markdown

        return dataset_table_markdown(self.cells, model or self.models[0], dataset or self.datasets[0],
                                      list(self.methods))


def compare(X=None, Y=None, *, data: str | Path | Sequence = (), datasets: Sequence[str] = (),
            methods: Sequence[str] = DEFAULT_METHODS, models: Sequence[str] = DEFAULT_MODELS,
            folds: int | None = None, only_folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
            out=None, name: str | None = None, protocol: str = "mlbs", data_options: dict | None = None,
            progress=None, **settings) -> Comparison:
    """Run methods x models over the folds of the given data and return the comparison.

    Parameters
    ----------
    X, Y : array-like or sparse matrix, optional
        Features ``(n, d)`` and binary labels ``(n, q)`` of one dataset.
    data : path or sequence of paths
        Data files (:func:`mlbs.data.load_path`), read with ``data_options``.
    datasets : sequence of str
        Registered dataset names (``mlbs datasets``).
    methods, models : sequence of str
        Batch-selection methods and models (``mlbs compare --help`` lists them).
    folds : int, optional
        Number of cross-validation folds (default: the protocol's).
    only_folds : sequence of int, optional
        Run only these held-out folds.
    seeds : sequence of int, optional
        Default: the protocol's seed.
    out : path, optional
        Result store folder to keep (resumable, shareable between processes).
    name : str, optional
        Name of the ``(X, Y)`` dataset (default ``arrays-<hash>``).
    protocol : {"mlbs", "paper-code"}
    data_options : dict, optional
        Reader options for the files (``label_names``, ``label_count``, ``label_prefix``, ...).
    progress : callable, optional
        ``progress(key, epoch, epochs)`` after every epoch.
    **settings
        Any field of :class:`~mlbs.experiments.config.ExperimentConfig` (``epochs``, ``lr``,
        ``batch_size``, ...).

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        No data, bad arrays or options, unknown method/model, a run that failed.
    """
    from .aggregate import aggregate
    from .config import ExperimentConfig
    from .datasets import add_arrays, add_file, canonical_dataset, data_sources
    from .report import dataset_table_markdown
    from .runner import Grid, run_grid
    from .store import ResultStore

    if (X is None) != (Y is None):
        raise ValueError("give both X and Y, or neither")
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    names = []
    if X is not None:
        names.append(add_arrays(X, Y, name=name))
    names += [add_file(p, **(data_options or {})) for p in paths]
    names += [canonical_dataset(d) for d in datasets]
    if not names:
        raise ValueError("no data: give X and Y, data= files or datasets= names")
    seed = None if not seeds else int(seeds[0])
    config = ExperimentConfig.for_protocol(protocol, n_folds=folds, seed=seed, **settings)
    grid = Grid(tuple(names), tuple(models), tuple(methods),
                tuple(range(config.n_folds) if only_folds is None else only_folds),
                tuple(seeds) if seeds else (config.seed,))
    with tempfile.TemporaryDirectory(prefix="mlbs-compare-") as scratch:
        store = ResultStore(out if out is not None else scratch)
        for source in data_sources(grid.datasets):
            store.save_dataset(source.describe())
        summary = run_grid(grid, config, store, on_epoch=progress)
        if summary.get("failed"):
            raise ValueError("runs failed: " + "; ".join(f"{f.key.label()}: {f.message.strip().splitlines()[-1]}"
                                                         for f in summary["failed"]))
        if summary.get("busy"):
            warnings.warn(f"{len(summary['busy'])} runs are being trained by another process on {store.root}; "
                          "they are missing from this comparison (call again when it is done)", RuntimeWarning,
                          stacklevel=2)
        wanted = {tuple(k.as_dict().values()) for k in grid.keys()}
        records = [r for r in store.load(summary["config_hash"]) if tuple(r["key"].values()) in wanted]
    cells = aggregate(records)
    text = "\n\n".join(f"### {model} on {dataset}\n\n"
                         + dataset_table_markdown(cells, model, dataset, list(grid.methods))
                         for model in grid.models for dataset in grid.datasets)
    return Comparison(config, grid.datasets, grid.models, grid.methods, records, cells, text,
                      None if out is None else Path(out))
