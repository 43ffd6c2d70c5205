"""One entry point for multi-label data files: :func:`load_path`.

Formats, chosen from the file name unless ``format=`` is given:

========== ======================================= ==========================================
format     file names                              reader and its options
========== ======================================= ==========================================
arff       ``.arff``, ``.arff.gz``, ``.arff.xz``   :func:`~mlbs.data.arff.load_arff`: ``xml``,
                                                   ``label_names``, ``label_count`` (last
                                                   attributes), ``sparse``
npz        ``.npz``                                :func:`~mlbs.data.npz.load_npz` (keys ``X``,
                                                   ``Y`` dense or CSR, names)
csv        ``.csv``, ``.tsv`` (``.gz``, ``.xz``)   :func:`~mlbs.data.delimited.load_csv`:
                                                   ``label_names``, ``label_prefix``,
                                                   ``label_count``, ``delimiter``
svmlight   ``.svm``, ``.svmlight``, ``.libsvm``,   :func:`~mlbs.data.svmlight.load_svmlight`:
           ``.txt`` (``.gz``, ``.xz``)             ``zero_based``
========== ======================================= ==========================================

Every reader also takes ``allow_missing`` (keep missing feature values as NaN
instead of refusing them). An option a format does not know is refused.

:func:`dataset_name` gives a file a stable name for tables and result records:
its stem and 8 hex digits of a sha256 over the bytes of every file read (the
ARFF's XML included) and the options, e.g. ``mydata-1a2b3c4d``. The same file
read the same way always gets the same name; another file, or the same file
with other label columns, another one.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .arff import MultiLabelData, beside_xml, load_arff
from .cache import file_sha256
from .delimited import load_csv
from .npz import load_npz
from .svmlight import load_svmlight

__all__ = ["FORMATS", "detect_format", "load_path", "dataset_name"]

#: Options of each format (``allow_missing`` is common to all).
FORMATS = {
    "arff": ("xml", "label_names", "label_count", "sparse"),
    "npz": (),
    "csv": ("label_names", "label_prefix", "label_count", "delimiter"),
    "svmlight": ("zero_based",),
}

_SUFFIXES = {".arff": "arff", ".npz": "npz", ".csv": "csv", ".tsv": "csv", ".svm": "svmlight",
             ".svmlight": "svmlight", ".libsvm": "svmlight", ".txt": "svmlight"}


def _plain_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".xz"):
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def detect_format(path) -> str:
    """The format of a data file from its name (see the module docstring).

    Raises
    ------
    ValueError
        Unknown file name ending; the message lists the known ones.
    """
    suffix = _plain_suffix(Path(path))
    if suffix not in _SUFFIXES:
        raise ValueError(f"{path}: cannot tell the format from the name (known endings: "
                         f"{', '.join(sorted(_SUFFIXES))}, optionally .gz/.xz); give format= one of {list(FORMATS)}")
    return _SUFFIXES[suffix]


#: Option values that mean "not given" (left out of the options, hence of the name).
_UNSET = {"allow_missing": False, "zero_based": "auto"}


def _clean_options(fmt: str, options: dict) -> dict:
    options = {k: v for k, v in options.items() if v is not None and not (k in _UNSET and v == _UNSET[k])}
    unknown = sorted(set(options) - set(FORMATS[fmt]) - {"allow_missing"})
    if unknown:
        raise ValueError(f"option(s) {unknown} do not apply to {fmt} files; {fmt} takes "
                         f"{list(FORMATS[fmt]) + ['allow_missing']}")
    if "label_names" in options:
        options["label_names"] = [str(v) for v in options["label_names"]]
    return options


def _files_read(path: Path, fmt: str, options: dict) -> list[Path]:
    if fmt != "arff":
        return [path]
    if options.get("xml") is not None:
        return [path, Path(options["xml"])]
    if options.get("label_names") is None and options.get("label_count") is None:
        found = beside_xml(path)
        return [path] if found is None else [path, found]
    return [path]


def dataset_name(path, format: str | None = None, **options) -> str:
    """Stable name of a data file read with ``options`` (see the module docstring).

    Parameters
    ----------
    path : str or Path
    format : str, optional
        Default: :func:`detect_format`.
    **options
        The reader options, as given to :func:`load_path`.
    """
    path = Path(path)
    fmt = format or detect_format(path)
    options = _clean_options(fmt, options)
    digests = [file_sha256(p) for p in _files_read(path, fmt, options)]
    payload = json.dumps({"format": fmt, "files": digests,
                          "options": {k: v for k, v in options.items() if k != "xml"}}, sort_keys=True)
    stem = path.name
    while Path(stem).suffix.lower() in (".gz", ".xz", *_SUFFIXES):
        stem = Path(stem).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "data"
    return f"{stem}-{hashlib.sha256(payload.encode()).hexdigest()[:8]}"


def load_path(path, *, format: str | None = None, **options) -> MultiLabelData:
    """Read a multi-label data file in any supported format.

    Parameters
    ----------
    path : str or Path
    format : {"arff", "npz", "csv", "svmlight"}, optional
        Default: from the file name (:func:`detect_format`).
    **options
        Reader options (see the module docstring); ``None`` values are ignored.

    Returns
    -------
    MultiLabelData
        ``info`` holds ``format``, ``options``, ``files`` (every file read) and
        ``name`` (:func:`dataset_name`).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    DataFormatError
        Malformed content, naming the file and the line where known.
    ValueError
        Unknown format or an option the format does not take.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} does not exist")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    options = _clean_options(fmt, options)
    if fmt == "arff":
        args = dict(options)
        if "label_count" in args:
            args["n_labels"] = args.pop("label_count")
        data = load_arff(path, **args)
    elif fmt == "npz":
        data = load_npz(path, **options)
    elif fmt == "csv":
        data = load_csv(path, **options)
    else:
        data = load_svmlight(path, **options)
    data.info.update(format=fmt, options={k: (str(v) if k == "xml" else v) for k, v in options.items()},
                     files=[str(p) for p in _files_read(path, fmt, options)],
                     name=dataset_name(path, fmt, **options))
    return data
