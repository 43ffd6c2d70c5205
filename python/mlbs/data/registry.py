"""Registry of the standard MULAN datasets and the :func:`load_dataset` entry point.

Each :class:`DatasetSpec` records the files of one dataset (MULAN layout:
``<folder>/<file>.arff`` plus ``<folder>/<name>.xml``) and the expected shape
``n, d, q`` and label cardinality of the union file as published with the
MULAN files. :func:`load_dataset` checks them on every load and raises
:class:`DatasetMismatchError` on a difference.

Where the files are looked for (first match wins):

1. the ``data_dir`` argument (``mlbs --data-dir``), or else the folder named by
   the ``MLBS_DATA`` environment variable;
2. for the datasets bundled with the package (yeast, scene, emotions), the
   xz-compressed copies in ``mlbs/data/bundled`` (same bytes as the MULAN
   files, verified by sha256), so the library works offline.

Nothing else is searched: in particular no folder relative to the current
working directory, so the data a run uses never depends on where it was
started. Files outside this layout are read with
:func:`mlbs.data.files.load_path`.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from .arff import MultiLabelData, load_arff
from .cache import cached

__all__ = ["DatasetSpec", "DatasetMismatchError", "DatasetNotFoundError", "REGISTRY", "candidate_data_dirs",
           "find_dataset_files", "load_dataset", "BUNDLED_DIR"]

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the searched folders."""


class DatasetMismatchError(ValueError):
    """A loaded dataset does not have the registered n, d, q or cardinality."""


@dataclass(frozen=True)
class DatasetSpec:
    """A standard dataset.

    Attributes
    ----------
    name : str
        Registry name (``load_dataset(name)``).
    folder : str
        Folder under the data directory.
    union : str
        The union ARFF file name.
    xml : str
        The MULAN label XML file name.
    n, d, q : int
        Expected shape of the union file (``d`` counts every non-label
        attribute, nominal ones included).
    cardinality : float
        Expected label cardinality of the union file, as published with it;
        it is checked to the precision printed (half a unit of the last digit).
    sha256 : str
        sha256 of the MULAN union ARFF; a mismatch only warns.
    train, test : str or None
        Standard train/test files, when MULAN provides them.
    n_train, n_test : int or None
    bundled : bool
        An xz copy of the union file ships with the package.
    """

    name: str
    folder: str
    union: str
    xml: str
    n: int
    d: int
    q: int
    cardinality: float
    sha256: str
    train: str | None = None
    test: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    bundled: bool = False

    def expected_n(self, part: str) -> int:
        """Expected number of rows of ``part`` ("union", "train" or "test")."""
        return {"union": self.n, "train": self.n_train, "test": self.n_test}[part]


def _spec(name, folder, stem, xml, n, d, q, card, sha, split=None, bundled=False):
    train, test, n_train, n_test = (None, None, None, None) if split is None else (
        f"{stem}-train.arff", f"{stem}-test.arff", split[0], split[1])
    return DatasetSpec(name, folder, f"{stem}.arff", xml, n, d, q, card, sha, train, test, n_train, n_test, bundled)


#: The standard MULAN datasets (union files).
REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in [
    _spec("scene", "scene", "scene", "scene.xml", 2407, 294, 6, 1.074,
          "5905548975b69b639ab31a295f7bf1ab7379a3f016450012722d28f660f4b143", (1211, 1196), bundled=True),
    _spec("yeast", "yeast", "yeast", "yeast.xml", 2417, 103, 14, 4.2371,
          "55c07a3b6ff885ae338fb6987a1d57f55572b29809922c2822c4885c61230dd7", (1500, 917), bundled=True),
    _spec("emotions", "emotions", "emotions", "emotions.xml", 593, 72, 6, 1.8685,
          "6f2f790047073d1293ac0872c0d55f2dc98b6177802fc96c6b66b309dfee1e4b", (391, 202), bundled=True),
    _spec("enron", "enron", "enron", "enron.xml", 1702, 1001, 53, 3.3784,
          "d0889ef0576d4e7b5ec0df3b3e4760e476ac11a6e7d7ddeee4c4a34470dedf97", (1123, 579)),
    _spec("birds", "birds", "birds", "birds.xml", 645, 260, 19, 1.014,
          "07c0f4f504458b8f1064371bde126371fe501886d8c684b5b5199fd9e2e1ff9a", (322, 323)),
    _spec("cal500", "cal500", "cal500", "cal500.xml", 502, 68, 174, 26.0438,
          "cfe6097ba5fd6e8584e54911ab9783dcab34e898446b7c9370c71d477eae56d3"),
    _spec("Corel5k", "Corel5k", "Corel5k", "Corel5k.xml", 5000, 499, 374, 3.522,
          "1c1a6055ca5dda024c8e88a00c68710b9f0acd54a0c1df7f2406ee2ea56565dd", (4500, 500)),
    _spec("bibtex", "bibtex", "bibtex", "bibtex.xml", 7395, 1836, 159, 2.4019,
          "a282a6d1fb3cdaf39bde3f81cd4e6079850a7a538a6bc44f8b4ed95dfe1e5014", (4880, 2515)),
    _spec("rcv1subset1", "rcv1subset1", "rcv1subset1", "rcv1subset1.xml", 6000, 47236, 101, 2.8797,
          "7c7aa2443d08b2acff05c78fd834a642ee8d8809671d0153cd07d508fce53357"),
    _spec("rcv1subset2", "rcv1subset2", "rcv1subset2", "rcv1subset2.xml", 6000, 47236, 101, 2.6342,
          "79a65633948479538172964f2f418f7a3677c590744f7741abbfed5b49e24231"),
    _spec("rcv1subset3", "rcv1subset3", "rcv1subset3", "rcv1subset3.xml", 6000, 47236, 101, 2.6142,
          "9095bdbeded11461b51216c04a69753a8fa0524363b4f19fd71bbf4fe06f72d3"),
    _spec("yahoo-Arts1", "yahoo-Arts1", "Arts1", "Arts1.xml", 7484, 23146, 26, 1.6539,
          "f0790e36cb54d39a2f9428ad927ba96f869a765fb069c9587065d76ee82e184e"),
    _spec("yahoo-Business1", "yahoo-Business1", "Business1", "Business1.xml", 11214, 21924, 30, 1.599,
          "733c7e2eb27a3e60b9e5f13d0a3f328a797f72102d6e326577ae38905f74d51a"),
    _spec("tmc2007-500", "tmc2007-500", "tmc2007-500", "tmc2007-500.xml", 28596, 500, 22, 2.1579,
          "3ea7e95dd80a78a3e7d521d77c3371bfef888da1d364b5a3bb71c7222ad7f013", (21519, 7077)),
    _spec("LLOG-F", "LLOG-F", "LLOG-F", "LLOG-F.xml", 1460, 1004, 75, 1.1801,
          "224d2c6306c9b9dc1644606235d769e3229d1e2ec60585e66359ae497477d3eb"),
    _spec("delicious", "delicious", "delicious", "delicious.xml", 16105, 500, 983, 19.02,
          "b944de0bca910050c11d97eed57d17b073110ea3646a587f3d15d127cf581aab", (12920, 3185)),
]}

_ALIASES = {"arts1": "yahoo-Arts1", "business1": "yahoo-Business1", "tmc2007": "tmc2007-500",
            "corel5k": "Corel5k", "llog": "LLOG-F", "langlog": "LLOG-F"}


def _lookup(name: str) -> DatasetSpec:
    if name in REGISTRY:
        return REGISTRY[name]
    low = {k.lower(): k for k in REGISTRY}
    key = low.get(name.lower()) or _ALIASES.get(name.lower())
    if key is None:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[key]


def candidate_data_dirs(data_dir=None) -> list[Path]:
    """Folders searched for dataset files (bundled copies excluded).

    Parameters
    ----------
    data_dir : path, optional
        Explicit folder; when given it is the only candidate.

    Returns
    -------
    list of Path
        ``[data_dir]``, else ``[$MLBS_DATA]``, else empty (only the bundled
        copies are available).
    """
    if data_dir is not None:
        return [Path(data_dir)]
    env = os.environ.get("MLBS_DATA")
    return [Path(env)] if env else []


def find_dataset_files(name: str, part: str = "union", data_dir=None, allow_bundled: bool = True):
    """Locate the ARFF and XML files of a dataset.

    Returns
    -------
    (arff, xml, origin) : (Path, Path, str)
        ``origin`` is the data folder, or ``"bundled"``.

    Raises
    ------
    DatasetNotFoundError
        Naming every folder that was searched and the files expected there.
    """
    spec = _lookup(name)
    fname = {"union": spec.union, "train": spec.train, "test": spec.test}.get(part, "?")
    if fname is None or fname == "?":
        raise ValueError(f"dataset {spec.name!r} has no {part!r} file (parts: union"
                         f"{', train, test' if spec.train else ''})")
    dirs = candidate_data_dirs(data_dir)
    for base in dirs:
        arff, xml = base / spec.folder / fname, base / spec.folder / spec.xml
        if arff.is_file() and xml.is_file():
            return arff, xml, str(base)
    if allow_bundled and spec.bundled and part == "union":
        return BUNDLED_DIR / (fname + ".xz"), BUNDLED_DIR / spec.xml, "bundled"
    where = ("Looked for {} and {} in:\n{}\n".format(fname, spec.xml, "\n".join(f"  - {b / spec.folder}" for b in dirs))
             if dirs else "No data folder is set and the package bundles only "
             f"{', '.join(s.name for s in REGISTRY.values() if s.bundled)} (union files).\n")
    raise DatasetNotFoundError(
        f"dataset {spec.name!r} ({part}) not found. {where}"
        f"Put the MULAN files in a folder as {spec.folder}/{fname} and {spec.folder}/{spec.xml} and point the "
        "MLBS_DATA environment variable, `mlbs --data-dir` or the data_dir argument at that folder "
        "(the folder that holds the dataset folders).")


def load_dataset(name: str, data_dir=None, *, part: str = "union", cache: bool = True, cache_dir=None,
                 check: bool = True, allow_bundled: bool = True) -> MultiLabelData:
    """Load a registered dataset, through the parse cache, and check its shape.

    Parameters
    ----------
    name : str
        Registry name (case-insensitive; aliases such as ``"Arts1"`` accepted).
    data_dir : path, optional
        Folder holding the dataset folders (default: ``MLBS_DATA``; see the
        module docstring).
    part : {"union", "train", "test"}
    cache : bool
        Use the sha256-keyed parse cache (:mod:`mlbs.data.cache`).
    cache_dir : path or "source", optional
        Cache folder (default: ``MLBS_CACHE`` or the user cache folder;
        ``"source"``: next to the ARFF file).
    check : bool
        Verify ``n``, ``d``, ``q`` (and, for the union, the label cardinality)
        against the registry.
    allow_bundled : bool
        Fall back to the copies shipped in the package.

    Returns
    -------
    MultiLabelData
        ``info`` holds ``dataset``, ``part``, ``origin`` and the cache fields.

    Raises
    ------
    DatasetNotFoundError, DatasetMismatchError, DataFormatError
    """
    spec = _lookup(name)
    arff, xml, origin = find_dataset_files(spec.name, part, data_dir, allow_bundled)
    data = cached(lambda: load_arff(arff, xml), [arff, xml], {"parser": "load_arff"},
                  cache_dir=cache_dir, use_cache=cache)
    data.info.update(dataset=spec.name, part=part, origin=origin)
    if check:
        _check(spec, part, data)
    if part == "union" and "sha256" in data.info and data.info["sha256"][0] != spec.sha256 \
            and not str(arff).endswith(".xz"):
        warnings.warn(f"{arff}: sha256 differs from the registered MULAN file", UserWarning, stacklevel=2)
    return data


def _check(spec: DatasetSpec, part: str, data: MultiLabelData) -> None:
    got = (data.n, data.d, data.q)
    want = (spec.expected_n(part), spec.d, spec.q)
    if got != want:
        raise DatasetMismatchError(f"{spec.name} ({part}, {data.source}): (n, d, q) = {got}, expected {want}")
    decimals = len(repr(spec.cardinality).split(".")[1])
    if part == "union" and abs(data.cardinality - spec.cardinality) > 0.5 * 10.0 ** -decimals + 1e-9:
        raise DatasetMismatchError(f"{spec.name} ({data.source}): label cardinality {data.cardinality:.4f}, "
                                   f"expected {spec.cardinality}")
