"""Experiments: the papers' training protocol, a resumable result store and the reports.

Modules
-------
config
    :class:`ExperimentConfig` (protocols ``"mlbs"`` and ``"paper-code"``, stable hash).
datasets
    Datasets preprocessed as in the papers (registered or own files and arrays), folds, validation splits.
methods
    The batch-selection methods by name and how to build their policies.
optim
    Adam and the linear learning-rate warm-up.
evaluate
    Probabilities, test metrics, validation score.
loop
    :func:`run_fold`: one (dataset, model, method, fold, seed) run.
store
    :class:`ResultStore`: one atomically written JSON record per finished run; claims between processes.
comparison
    :func:`compare`: methods x models on one's own arrays or files, from Python.
runner
    :func:`run_grid`: a grid of runs with resume.
aggregate, wilcoxon, timing, plots, report
    Fold means and stds, the signed-rank test, time to target, convergence PNGs, Markdown/CSV.
"""
from importlib import import_module

__all__ = ["PROTOCOLS", "ExperimentConfig", "METHODS", "get_method", "run_fold", "Grid", "run_grid",
           "ResultStore", "RunKey", "compare", "Comparison"]

_WHERE = {"PROTOCOLS": "config", "ExperimentConfig": "config", "METHODS": "methods", "get_method": "methods",
          "run_fold": "loop", "Grid": "runner", "run_grid": "runner", "ResultStore": "store", "RunKey": "store",
          "compare": "comparison", "Comparison": "comparison"}


def __getattr__(name):
    # Submodules are imported on first use, so that ``mlbs.experiments.config`` loads without torch.
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
