"""Datasets as the experiments use them: loaded, preprocessed and split into folds.

A dataset is named either by the registry (``"yeast"``, read by :func:`mlbs.data.load_dataset`)
or by a :class:`DataSource` added in this process: a file (:func:`add_file`, any format of
:func:`mlbs.data.load_path`; named by :func:`mlbs.data.dataset_name`, e.g. ``mydata-1a2b3c4d``)
or arrays (:func:`add_arrays`). A source's name then works wherever a registered name does
(:class:`~mlbs.experiments.runner.Grid`, :func:`~mlbs.experiments.loop.run_fold`). Sources live in
the process that added them. Worker processes started afterwards (``--jobs``, a local Ray) find
the *files* through the environment variable :data:`FILES_VARIABLE`, which :func:`add_file` keeps
up to date: a worker reads the file again on first use and checks that it still has the same name
(content). Arrays and remote workers need the sources passed explicitly: :func:`data_sources`
in the parent, :func:`register_source` in the worker (a source pickles with its data).

Feature retention follows the papers' code: 2 % of the features for the rcv1 subsets, 5 % for
the yahoo datasets, all features elsewhere (tmc2007-500 keeps its 500); own data keeps all
features. The label filter (at most 20 positives dropped) and the folds use all rows, for own data
too.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mlbs.data import MultiLabelData, from_arrays, load_dataset, load_path
from mlbs.data.preprocess import MinMaxScaler, preprocess
from mlbs.data.registry import REGISTRY, _lookup
from mlbs.data.splits import stratified_kfold, validation_split

from .config import ExperimentConfig

__all__ = ["FEATURE_FRACTION", "FILES_VARIABLE", "DataSource", "PreparedData", "FoldData",
           "dataset_names", "canonical_dataset", "add_file", "add_arrays", "register_source", "data_sources",
           "load_named", "prepare", "fold_data"]

#: Feature retention p per dataset (1 when absent).
FEATURE_FRACTION = {"rcv1subset1": 0.02, "rcv1subset2": 0.02, "rcv1subset3": 0.02,
                    "yahoo-Arts1": 0.05, "yahoo-Business1": 0.05}


@dataclass(frozen=True)
class DataSource:
    """A dataset outside the registry, known in this process by its name.

    Attributes
    ----------
    name : str
        The name used in grids, records and tables.
    origin : str
        The file's path, or ``"arrays"``.
    format : str or None
        The file format (:data:`mlbs.data.files.FORMATS`), None for arrays.
    options : tuple of (str, value)
        The reader options, sorted.
    data : MultiLabelData
        The data as read (not compared, not shown).
    """

    name: str
    origin: str
    format: str | None
    options: tuple
    data: MultiLabelData = field(compare=False, repr=False)

    def describe(self) -> dict:
        """JSON-compatible provenance: name, origin, format, options, n, d, q, files read."""
        return {"name": self.name, "origin": self.origin, "format": self.format, "options": dict(self.options),
                "n": self.data.n, "d": self.data.d, "q": self.data.q,
                "files": list(self.data.info.get("files", [])), "labels_from": self.data.info.get("labels_from")}


_SOURCES: dict[str, DataSource] = {}

#: Environment variable listing the files added by :func:`add_file` (JSON: name, path, format,
#: options), inherited by the worker processes started later.
FILES_VARIABLE = "MLBS_DATA_FILES"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def dataset_names() -> list[str]:
    """Registered dataset names."""
    return sorted(REGISTRY)


def canonical_dataset(name: str) -> str:
    """The name of a dataset as records carry it: a source's name, or the registry's spelling.

    Raises
    ------
    ValueError
        Unknown name; the message lists the registered ones and the sources of this process.
    """
    if name in _SOURCES:
        return name
    inherited = {e["name"]: e for e in json.loads(os.environ.get(FILES_VARIABLE) or "[]")}
    if name in inherited:
        entry = inherited[name]
        found = add_file(entry["path"], format=entry["format"], **entry["options"])
        if found != name:
            raise ValueError(f"{entry['path']} changed since it was read as {name} (it now reads as {found})")
        return name
    try:
        return _lookup(name).name
    except KeyError:
        own = f"; own data of this process: {sorted(_SOURCES)}" if _SOURCES else \
            " (or give own data as a file: --data PATH / add_file)"
        raise ValueError(f"unknown dataset {name!r}; expected one of {dataset_names()}{own}") from None


def register_source(source: DataSource) -> str:
    """Make ``source`` known under its name; return the name.

    Raises
    ------
    ValueError
        The name is a registered dataset's, not a plain file-system name, or already names other data.
    """
    name = source.name
    if not _NAME.match(name):
        raise ValueError(f"dataset name {name!r} must start with a letter or digit and use only letters, "
                         "digits, '.', '_' and '-'")
    try:
        _lookup(name)
    except KeyError:
        pass
    else:
        raise ValueError(f"dataset name {name!r} is a registered dataset's; choose another")
    known = _SOURCES.get(name)
    if known is not None and _fingerprint(known.data) != _fingerprint(source.data):
        raise ValueError(f"dataset name {name!r} already names other data ({known.origin}); choose another")
    _SOURCES[name] = source
    return name


def data_sources(names=None) -> list[DataSource]:
    """The sources added in this process, in order; only those of ``names`` when given."""
    return [s for s in _SOURCES.values() if names is None or s.name in names]


def _fingerprint(data: MultiLabelData) -> str:
    """sha256 of the features and labels (values, sparsity structure and shapes)."""
    h = hashlib.sha256()
    for M in (data.X, data.Y):
        h.update(repr((M.shape, str(M.dtype), sp.issparse(M))).encode())
        if sp.issparse(M):
            M = sp.csr_matrix(M)
            for part in (M.indptr, M.indices, M.data):
                h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(np.ascontiguousarray(M).tobytes())
    return h.hexdigest()


def add_file(path, *, format: str | None = None, **options) -> str:
    """Read a data file (:func:`mlbs.data.load_path`) and make it a dataset of this process.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        Default: from the file name.
    **options
        Reader options (``label_names``, ``label_count``, ``label_prefix``, ``xml``, ...).

    Returns
    -------
    str
        The dataset's name, ``<stem>-<8 hex digits>`` (:func:`mlbs.data.dataset_name`).
    """
    data = load_path(path, format=format, **options)
    options = tuple(sorted(data.info["options"].items()))
    source = DataSource(data.info["name"], str(Path(path).resolve()), data.info["format"], options, data)
    name = register_source(source)
    files = [e for e in json.loads(os.environ.get(FILES_VARIABLE) or "[]") if e["name"] != name]
    files.append({"name": name, "path": source.origin, "format": source.format, "options": dict(options)})
    os.environ[FILES_VARIABLE] = json.dumps(files)
    return name


def add_arrays(X, Y, *, name: str | None = None, feature_names=None, label_names=None,
               allow_missing: bool = False) -> str:
    """Make arrays a dataset of this process (checked by :func:`mlbs.data.from_arrays`).

    Parameters
    ----------
    X : array-like or sparse matrix, shape (n, d)
    Y : array-like or sparse matrix, shape (n, q)
        Binary labels.
    name : str, optional
        Default: ``arrays-<8 hex digits of a sha256 of X and Y>``.
    feature_names, label_names : sequence of str, optional
    allow_missing : bool
        Accept NaN features.

    Returns
    -------
    str
        The dataset's name.
    """
    data = from_arrays(X, Y, feature_names=feature_names, label_names=label_names, allow_missing=allow_missing)
    name = name or f"arrays-{_fingerprint(data)[:8]}"
    return register_source(DataSource(name, "arrays", None, (), data))


def load_named(name: str) -> MultiLabelData:
    """The raw data of a dataset name: a source of this process, else the registry's files."""
    source = _SOURCES.get(name)
    return source.data if source is not None else load_dataset(name)


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
    raw = load_named(name)
    data = preprocess(raw, feature_fraction=FEATURE_FRACTION.get(name, 1.0), drop_empty_rows=drop_empty_rows,
                      scale_fit=scale_fit)
    if data.q == 0:
        limit = data.info["preprocess"]["max_positives_dropped"]
        raise ValueError(f"{name}: no label has more than {limit} positives (of {raw.q} labels, {raw.n} rows), so "
                         "none is left to learn; the experiments drop rarer labels")
    if data.n < n_folds:
        raise ValueError(f"{name}: {data.n} rows cannot make {n_folds} folds")
    Y = np.asarray(data.Y.toarray(), dtype=np.float32)
    folds = stratified_kfold(data.Y, n_splits=n_folds, seed=seed)
    return PreparedData(name, data.X, Y, folds)


def prepare(dataset: str, config: ExperimentConfig, seed: int) -> PreparedData:
    """Load and preprocess ``dataset`` and build its folds (cached per process).

    Parameters
    ----------
    dataset : str
        Registered name (any case) or the name of a source of this process (see
        :func:`canonical_dataset`).
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
    """Training, validation and test arrays of one fold.

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
