"""Dataset registry: data-directory resolution, error messages, bundled copies (mostly offline)."""
from __future__ import annotations

import hashlib
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlbs.data import REGISTRY, DatasetMismatchError, DatasetNotFoundError, candidate_data_dirs, load_dataset
from mlbs.data.registry import BUNDLED_DIR


def test_missing_dataset_error_says_where_and_what(tmp_path):
    with pytest.raises(DatasetNotFoundError) as exc:
        load_dataset("bibtex", tmp_path, cache_dir=tmp_path / "c")
    msg = str(exc.value)
    assert str(tmp_path / "bibtex") in msg and "bibtex.arff" in msg and "bibtex.xml" in msg
    assert "MLBS_DATA" in msg


def test_environment_variable_and_explicit_folder_are_the_only_candidates(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBS_DATA", str(tmp_path))
    assert candidate_data_dirs() == [tmp_path]
    assert candidate_data_dirs("elsewhere") == [Path("elsewhere")]
    monkeypatch.delenv("MLBS_DATA")
    assert candidate_data_dirs() == []


def test_no_lookup_relative_to_the_working_directory(tmp_path, monkeypatch):
    """A MULAN-style folder under the working directory is never used: only the bundle answers."""
    monkeypatch.delenv("MLBS_DATA", raising=False)
    fake = tmp_path / "work" / ".." / "shared" / "data" / "mulan" / "yeast"
    fake.mkdir(parents=True)
    (fake / "yeast.arff").write_text("not an ARFF file")
    shutil.copy(BUNDLED_DIR / "yeast.xml", fake / "yeast.xml")
    (tmp_path / "work").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / "work")
    data = load_dataset("yeast", cache_dir=tmp_path / "c")
    assert data.info["origin"] == "bundled"
    with pytest.raises(DatasetNotFoundError, match="No data folder is set"):
        load_dataset("enron", cache_dir=tmp_path / "c")


@pytest.mark.parametrize("name", [s.name for s in REGISTRY.values() if s.bundled])
def test_bundled_copies_are_the_mulan_files(name):
    spec = REGISTRY[name]
    raw = lzma.open(BUNDLED_DIR / f"{spec.union}.xz").read()
    assert hashlib.sha256(raw).hexdigest() == spec.sha256
    assert (BUNDLED_DIR / f"{spec.union}.xz").stat().st_size < 2_100_000


def test_bundled_fallback_works_offline(tmp_path):
    data = load_dataset("yeast", tmp_path / "nothing-here", cache_dir=tmp_path / "c")
    assert data.info["origin"] == "bundled" and (data.n, data.d, data.q) == (2417, 103, 14)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("yeast", tmp_path / "nothing-here", allow_bundled=False)


def test_shape_check_rejects_a_wrong_file(tmp_path):
    folder = tmp_path / "yeast"
    folder.mkdir()
    lines = lzma.open(BUNDLED_DIR / "yeast.arff.xz").read().decode().splitlines()
    last = max(i for i, line in enumerate(lines) if line.strip())
    (folder / "yeast.arff").write_text("\n".join(lines[:last]) + "\n")  # one data row fewer
    shutil.copy(BUNDLED_DIR / "yeast.xml", folder / "yeast.xml")
    with pytest.raises(DatasetMismatchError, match="expected"):
        load_dataset("yeast", tmp_path, cache_dir=tmp_path / "c")
    data = load_dataset("yeast", tmp_path, cache_dir=tmp_path / "c", check=False)
    assert data.n == 2416


def test_aliases_and_unknown_names(tmp_path):
    with pytest.raises(KeyError, match="unknown dataset"):
        load_dataset("no-such-data", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="yahoo-Arts1"):
        load_dataset("arts1", tmp_path)


def test_bundled_equals_shared_copy(tmp_path):
    from test_data_realdata import real_data_dir

    shared = load_dataset("scene", real_data_dir(), allow_bundled=False, cache_dir=tmp_path / "s")
    bundled = load_dataset("scene", tmp_path / "empty", cache_dir=tmp_path / "c")
    assert np.array_equal(shared.X, bundled.X) and (shared.Y != bundled.Y).nnz == 0
