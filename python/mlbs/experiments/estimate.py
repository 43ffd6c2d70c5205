"""The bill of a grid before it runs: CPU time of the runs still to do, from measured epoch costs.

The costs come from ``epoch_costs.json`` beside this module, written by ``bench/epoch_costs.py``
(one thread per run): for each measured (model, dataset), the seconds of one epoch of the Random
baseline (training steps and the per-epoch evaluation) and of a run's setup (data, folds, model);
for each selective method and measured dataset, the seconds its sampler adds to an epoch once
selection has started, and the seconds of building its policy (kNN graphs). A run is estimated as

    setup(model, dataset) + policy(method, dataset)
        + epochs * epoch(model, dataset) + (epochs - warm-up(method)) * sampler(method, dataset),

an upper bound when the protocol stops early. A cell that was not measured is scaled from the
same model's measured cells by the work of a dense layer pass, ``n_train * (d + q)`` (median of
the measured ratios), and a method's costs from the same method's measured datasets by
``n_train * q``. A model with no measured cell cannot be estimated (the estimate says so).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import ExperimentConfig
from .store import RunKey

__all__ = ["COSTS_FILE", "EpochCosts", "GridEstimate", "dataset_size", "estimate_runs"]

#: The measured costs shipped with the package.
COSTS_FILE = Path(__file__).with_name("epoch_costs.json")


def dataset_size(name: str, config: ExperimentConfig) -> tuple[float, int, int]:
    """(training rows per fold, features kept, labels) of a registered dataset, from the registry
    (raw label count: the label filter is not applied, so q is an upper bound)."""
    from mlbs.data.registry import REGISTRY

    from .datasets import FEATURE_FRACTION

    spec = REGISTRY[name]
    n_train = spec.n * (1 - 1 / config.n_folds) * (1 - config.validation_fraction)
    return n_train, max(1, int(spec.d * FEATURE_FRACTION.get(name, 1.0))), spec.q


@dataclass
class EpochCosts:
    """Measured seconds per (model, dataset) and sampler seconds per (method, dataset).

    Attributes
    ----------
    epoch_s, setup_s : dict model -> dict dataset -> float
    sampler_s : dict method -> dict dataset -> float
        Seconds a selective method adds to an epoch after its warm-up (>= 0).
    policy_s : dict method -> dict dataset -> float
        Seconds of building the method's policy from the training fold.
    meta : dict
        How the figures were measured.
    """

    epoch_s: dict = field(default_factory=dict)
    setup_s: dict = field(default_factory=dict)
    sampler_s: dict = field(default_factory=dict)
    policy_s: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path=COSTS_FILE) -> "EpochCosts":
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(values["epoch_s"], values["setup_s"], values["sampler_s"], values["policy_s"],
                   values.get("meta", {}))

    def save(self, path=COSTS_FILE) -> None:
        payload = {"meta": self.meta, "epoch_s": self.epoch_s, "setup_s": self.setup_s,
                   "sampler_s": self.sampler_s, "policy_s": self.policy_s}
        Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @staticmethod
    def _scaled(table: dict, dataset: str, size_of) -> tuple[float, bool] | None:
        """(value, measured?) from ``table`` (dataset -> seconds), scaled by ``size_of`` if absent."""
        if dataset in table:
            return table[dataset], True
        ratios = [s / size_of(d) for d, s in table.items() if size_of(d) > 0]
        if not ratios:
            return None
        return statistics.median(ratios) * size_of(dataset), False

    def run_seconds(self, key: RunKey, config: ExperimentConfig) -> tuple[float, bool] | None:
        """(estimated CPU seconds, every part measured?) of one run; None if its model was never
        measured."""
        def layer_work(d):
            n, dim, q = dataset_size(d, config)
            return n * (dim + q)

        def label_work(d):
            n, _, q = dataset_size(d, config)
            return n * q

        epoch = self._scaled(self.epoch_s.get(key.model, {}), key.dataset, layer_work)
        setup = self._scaled(self.setup_s.get(key.model, {}), key.dataset, layer_work)
        if epoch is None or setup is None:
            return None
        from .methods import get_method

        spec = get_method(key.method)
        if spec.name == "random":
            sampler = policy = (0.0, True)
        else:
            sampler = self._scaled(self.sampler_s.get(spec.name, {}), key.dataset, label_work) or (0.0, False)
            policy = self._scaled(self.policy_s.get(spec.name, {}), key.dataset, label_work) or (0.0, False)
        selective_epochs = max(0, config.epochs - spec.warmup_epochs)
        seconds = setup[0] + policy[0] + config.epochs * epoch[0] + selective_epochs * sampler[0]
        return seconds, epoch[1] and setup[1] and sampler[1] and policy[1]


@dataclass
class GridEstimate:
    """The estimate of a list of runs.

    Attributes
    ----------
    rows : list of (model, dataset, runs, seconds or None, measured)
        Per (model, dataset): runs to do, their estimated CPU seconds, whether every figure was
        measured (False: scaled from other datasets).
    total_s : float
        Sum over the rows that could be estimated.
    unknown : int
        Runs of models without any measurement.
    """

    rows: list
    total_s: float
    unknown: int

    def table(self) -> str:
        """Markdown table of the rows and the total."""
        lines = ["| model | dataset | runs to do | estimated CPU time | source |", "|---|---|---|---|---|"]
        for model, dataset, runs, seconds, measured in self.rows:
            cost = "unknown (model never measured)" if seconds is None else _duration(seconds)
            source = "–" if seconds is None else ("measured" if measured else "scaled")
            lines.append(f"| {model} | {dataset} | {runs} | {cost} | {source} |")
        lines.append(f"| **total** | | {sum(r[2] for r in self.rows)} | **{_duration(self.total_s)}**"
                     f"{f' + {self.unknown} runs unknown' if self.unknown else ''} | |")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_runs(keys: list[RunKey], config: ExperimentConfig, costs: EpochCosts | None = None) -> GridEstimate:
    """Estimated CPU time of ``keys`` under ``config`` (see the module docstring for the rule)."""
    costs = EpochCosts.load() if costs is None else costs
    cells: dict[tuple[str, str], list] = {}
    for key in keys:
        cell = cells.setdefault((key.model, key.dataset), [0, 0.0, True, False])
        cell[0] += 1
        estimate = costs.run_seconds(key, config)
        if estimate is None:
            cell[3] = True
            continue
        cell[1] += estimate[0]
        cell[2] = cell[2] and estimate[1]
    rows, total, unknown = [], 0.0, 0
    for (model, dataset), (runs, seconds, measured, missing) in cells.items():
        if missing:
            rows.append((model, dataset, runs, None, False))
            unknown += runs
        else:
            rows.append((model, dataset, runs, seconds, measured))
            total += seconds
    return GridEstimate(rows, total, unknown)
