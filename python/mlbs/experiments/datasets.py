"""Datasets as the experiments use them: loaded, preprocessed and split into folds.

Feature retention follows the papers' code (``docs/protocol.md`` §2.2): 2 % of the features for
the rcv1 subsets, 5 % for the yahoo datasets, all features elsewhere (tmc2007-500 keeps its 500,
§2.3). The label filter (at most 20 positives dropped) and the folds use all rows (§3, §4).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from mlbs.data import load_dataset
from mlbs.data.preprocess import MinMaxScaler, preprocess
from mlbs.data.registry import REGISTRY, _lookup
from mlbs.data.splits import stratified_kfold, validation_split

from .config import ExperimentConfig

__all__ = ["FEATURE_FRACTION", "PreparedData", "FoldData", "dataset_names", "canonical_dataset", "prepare",
           "fold_data"]

#: Feature retention p per dataset (1 when absent).
FEATURE_FRACTION = {"rcv1subset1": 0.02, "rcv1subset2": 0.02, "rcv1subset3": 0.02,
                    "yahoo-Arts1": 0.05, "yahoo-Business1": 0.05}


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return sorted(REGISTRY)


def canonical_dataset(name: str) -> str:
    """Registry spelling of a dataset name.

    Raises
    ------
    ValueError
        Unknown name; the message lists the registered ones.
    """
    try:
        return _lookup(name).name
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; expected one of {dataset_names()}") from None


@dataclass(frozen=True)
class PreparedData:
    """A preprocessed dataset and its cross-validation folds.

    Attributes
    ----------
    name : str
    X : ndarray (float32) or csr_matrix, shape (n, d)
        Scaled when ``scale_fit == "all"``, raw otherwise.
    Y : ndarray of float32, shape (n, q)
    folds : list of (train, test) index arrays
    """

    name: str
    X: object
    Y: np.ndarray
    folds: list


@dataclass(frozen=True)
class FoldData:
    """Dense float32 arrays of one fold after the validation split and scaling."""

    X_train: np.ndarray
    Y_train: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray


@lru_cache(maxsize=4)
def _prepare_cached(name: str, scale_fit: str, drop_empty_rows: bool, n_folds: int, seed: int) -> PreparedData:
    data = preprocess(load_dataset(name), feature_fraction=FEATURE_FRACTION.get(name, 1.0),
                      drop_empty_rows=drop_empty_rows, scale_fit=scale_fit)
    Y = np.asarray(data.Y.toarray(), dtype=np.float32)
    folds = stratified_kfold(data.Y, n_splits=n_folds, seed=seed)
    return PreparedData(name, data.X, Y, folds)


def prepare(dataset: str, config: ExperimentConfig, seed: int) -> PreparedData:
    """Load and preprocess ``dataset`` and build its folds (cached per process).

    Parameters
    ----------
    dataset : str
        Registered name (any case; see :func:`canonical_dataset`).
    config : ExperimentConfig
        ``scale_fit``, ``drop_empty_rows`` and ``n_folds`` are used.
    seed : int
        Seed of the iterative stratification.
    """
    return _prepare_cached(canonical_dataset(dataset), config.scale_fit, bool(config.drop_empty_rows),
                           config.n_folds, int(seed))


def _dense(X, rows: np.ndarray) -> np.ndarray:
    part = X[rows]
    part = part.toarray() if sp.issparse(part) else np.asarray(part)
    return np.ascontiguousarray(part, dtype=np.float32)


def fold_data(prepared: PreparedData, fold: int, config: ExperimentConfig, seed: int) -> FoldData:
    """Training, validation and test arrays of one fold (``docs/protocol.md`` §5).

    Parameters
    ----------
    prepared : PreparedData
    fold : int
        Index of the held-out fold, ``0 <= fold < n_folds``.
    config : ExperimentConfig
        ``validation``, ``validation_fraction`` and ``scale_fit`` are used.
    seed : int
        Seed of the validation split (``zhou2024`` and ``d2ace`` use their papers' seeds when the
        protocol sets them; ``stratified`` uses it as given).
    """
    if not 0 <= fold < len(prepared.folds):
        raise ValueError(f"fold must be in [0, {len(prepared.folds)}), got {fold}")
    train, held_out = prepared.folds[fold]
    tr, va, te = validation_split(config.validation, train, held_out, prepared.Y, seed=seed,
                                  fraction=config.validation_fraction)
    Xtr, Xva, Xte = (_dense(prepared.X, r) for r in (tr, va, te))
    if config.scale_fit == "train":
        scaler = MinMaxScaler().fit(Xtr)
        Xtr, Xva, Xte = (scaler.transform(a) for a in (Xtr, Xva, Xte))
    Y = prepared.Y
    return FoldData(Xtr, Y[tr], Xva, Y[va], Xte, Y[te])
