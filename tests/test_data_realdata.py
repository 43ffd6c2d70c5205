"""Real MULAN datasets: shape and cardinality of every dataset against SOURCES.md.

Also the shared helpers of the real-data tests (imported by the other
``test_data_*``, ``test_stats`` and ``test_knn`` modules):

* :func:`real_data_dir` — ``MLBS_DATA`` or ``<repo>/../shared/data/mulan``;
  skips with a reason when absent, but **fails** when ``CI=true``.
* :func:`real_dataset` — loads a dataset once per test session (in-process
  memo on top of the on-disk sha256 cache); the datasets bundled with the
  package come from the bundle when the folder is absent, so their tests run
  on any clone.
"""
from __future__ import annotations

import functools
import os
import re
import time
from pathlib import Path

import pytest

from mlbs.data import REGISTRY, load_dataset

_DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mulan"


def _data_path() -> Path:
    env = os.environ.get("MLBS_DATA")
    return Path(env) if env else _DEFAULT


def real_data_dir() -> Path:
    """Folder of the real datasets; skip (or fail under CI=true) when missing."""
    path = _data_path()
    if not path.is_dir():
        msg = (f"real MULAN data not found at {path} (set MLBS_DATA or provide ../shared/data/mulan "
               "relative to the repository root)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; CI=true, so this is an error, not a skip")
        pytest.skip(msg)
    return path


@functools.lru_cache(maxsize=None)
def _load(name: str, folder: Path | None):
    return load_dataset(name, folder)


def real_dataset(name: str):
    """The union file of a registered dataset, loaded once per session (bundled ones from the bundle
    when there is no data folder)."""
    if REGISTRY[name].bundled and not _data_path().is_dir():
        return _load(name, _data_path())  # an absent folder: load_dataset falls back to the bundle
    return _load(name, real_data_dir())


def _sources_table() -> dict:
    """Parse the summary table of SOURCES.md: name -> (n, d, q, card)."""
    text = (real_data_dir() / "SOURCES.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 10 and re.fullmatch(r"\d+", cells[4] or "") and re.fullmatch(r"\d+", cells[5]):
            rows[cells[0]] = (int(cells[4]), int(cells[5]), int(cells[6]), float(cells[7]))
    return rows


def test_registry_matches_sources_md():
    table = _sources_table()
    assert set(table) == set(REGISTRY), "registry and SOURCES.md list different datasets"
    for name, (n, d, q, card) in table.items():
        spec = REGISTRY[name]
        assert (spec.n, spec.d, spec.q, spec.cardinality) == (n, d, q, card), name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_dataset_shape_and_cardinality(name):
    n, d, q, card = _sources_table()[name]
    data = real_dataset(name)
    assert (data.n, data.d, data.q) == (n, d, q)
    decimals = len(str(card).split(".")[1])
    assert round(data.cardinality, decimals) == pytest.approx(card, abs=10.0 ** -decimals / 2 + 1e-12)
    assert data.Y.dtype.kind in "ub" and set(data.Y.data.tolist()) <= {1}
    assert data.X.dtype.name == "float32"
    assert len(data.label_names) == q and len(data.feature_names) == d


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_sha256_of_sources_matches_sources_md(name):
    data = load_dataset(name, real_data_dir(), allow_bundled=False)  # the bundle's sha256 is checked elsewhere
    assert data.info["sha256"][0] == REGISTRY[name].sha256


def test_train_test_parts_union():
    data_dir = real_data_dir()
    union = real_dataset("scene")
    train = load_dataset("scene", data_dir, part="train")
    test = load_dataset("scene", data_dir, part="test")
    assert train.n + test.n == union.n
    # scene's union is train rows followed by test rows (SOURCES.md)
    assert (union.X[: train.n] == train.X).all() and (union.Y[train.n:] != test.Y).nnz == 0


def test_corel5k_dense_and_sparse_copies_agree():
    """The dense and the sparse MULAN copies of Corel5k parse to the same matrices."""
    from mlbs.data import load_arff

    folder = real_data_dir() / "Corel5k"
    dense = real_dataset("Corel5k")
    sparse = load_arff(folder / "Corel5k-sparse.arff", folder / "Corel5k.xml")
    assert (sparse.X.toarray() == dense.X).all()
    assert (sparse.Y != dense.Y).nnz == 0
    assert sparse.label_names == dense.label_names


def test_birds_nominal_feature_codes():
    data = real_dataset("birds")
    values = data.nominal_features["location"]
    assert values[0] == "2"
    col = data.feature_names.index("location")
    codes = data.X[:, col]
    assert codes.min() >= 0 and codes.max() <= len(values) - 1 and (codes == codes.astype(int)).all()


def test_second_load_of_largest_dataset_is_fast(tmp_path):
    data_dir = real_data_dir()
    largest = max(REGISTRY.values(), key=lambda s: (data_dir / s.folder / s.union).stat().st_size)
    first = load_dataset(largest.name, data_dir, cache_dir=tmp_path)
    t = time.perf_counter()
    second = load_dataset(largest.name, data_dir, cache_dir=tmp_path)
    elapsed = time.perf_counter() - t
    assert not first.info["cache_hit"] and second.info["cache_hit"]
    assert elapsed < 1.0, f"cached load of {largest.name} took {elapsed:.2f} s"
    assert (first.Y != second.Y).nnz == 0
