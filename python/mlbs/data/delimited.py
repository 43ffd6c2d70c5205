"""Multi-label data in a CSV (or TSV) file with a header row.

Layout: the first non-empty line names the columns; every other line is one
instance. Values may be quoted (Python's :mod:`csv` dialect: double quotes,
doubled to escape). Which columns are labels is given by exactly one of

* ``label_names``: the label columns by name;
* ``label_prefix``: every column whose name starts with the prefix;
* ``label_count``: the last ``label_count`` columns.

Every other column is a numeric feature. Labels must be ``0`` or ``1``. An
empty feature cell or ``nan`` is a missing value, refused unless
``allow_missing=True``; other text (``NA``, a category name) is refused as not a
number, so encode categorical columns as numbers first; infinite or
float32-overflowing numbers are always refused. The file may be compressed
(``.gz``, ``.xz``) and may start with a UTF-8 byte-order mark. The delimiter is
a tab for ``.tsv`` files and a comma otherwise, unless ``delimiter`` is given.

Errors are :class:`~mlbs.data.arff.DataFormatError` with the file name, the
1-based line and the column name.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .arff import DataFormatError, MultiLabelData, _read_lines, identifier_columns
from .arrays import from_arrays

__all__ = ["load_csv"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _label_columns(header: list[str], path, line: int, label_names, label_prefix, label_count) -> list[int]:
    given = [k for k, v in (("label_names", label_names), ("label_prefix", label_prefix),
                            ("label_count", label_count)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"{path}: say which columns are labels with exactly one of label_names, label_prefix or "
                         f"label_count (got {given or 'none'}); the columns are {header}")
    index = {name: j for j, name in enumerate(header)}
    if label_names is not None:
        missing = [nm for nm in label_names if nm not in index]
        if missing:
            raise DataFormatError(path, line, f"label column(s) {missing} not in the header {header}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"{path}: a label column is named twice in {list(label_names)}")
        cols = sorted(index[nm] for nm in label_names)
    elif label_prefix is not None:
        cols = [j for j, name in enumerate(header) if name.startswith(label_prefix)]
        if not cols:
            raise DataFormatError(path, line, f"no column name starts with {label_prefix!r}; the columns are "
                                  f"{header}")
    else:
        q = int(label_count)
        if not 0 < q < len(header):
            raise DataFormatError(path, line, f"label_count {q} for {len(header)} columns (at least one feature "
                                  "column is needed)")
        cols = list(range(len(header) - q, len(header)))
    if len(cols) == len(header):
        raise DataFormatError(path, line, "every column is a label; no feature column is left")
    return cols


def _to_float(cells: np.ndarray, header, lines, path) -> np.ndarray:
    """Convert a (rows, columns) array of text; on failure name the first bad cell."""
    try:
        return np.where(cells == "", "nan", cells).astype(np.float64)
    except ValueError:
        pass
    for r in range(cells.shape[0]):
        for c in range(cells.shape[1]):
            text = cells[r, c]
            if text == "":
                continue
            try:
                float(text)
            except ValueError:
                raise DataFormatError(path, lines[r], f"value {str(text)!r} of column {header[c]!r} is not a "
                                      "number (encode categorical columns as numbers)") from None
    raise AssertionError("unreachable: some cell failed to convert")  # pragma: no cover


def load_csv(path, *, label_names: Sequence[str] | None = None, label_prefix: str | None = None,
             label_count: int | None = None, delimiter: str | None = None,
             allow_missing: bool = False) -> MultiLabelData:
    """Read a multi-label CSV/TSV file (layout and rules: see the module docstring).

    Parameters
    ----------
    path : str or Path
    label_names : sequence of str, optional
        The label columns by name.
    label_prefix : str, optional
        The label columns are those whose name starts with this.
    label_count : int, optional
        The label columns are the last ``label_count``.
    delimiter : str, optional
        Default: tab for ``.tsv`` (also ``.tsv.gz``, ``.tsv.xz``), comma otherwise.
    allow_missing : bool
        Keep empty / ``nan`` feature cells as NaN instead of refusing them.

    Returns
    -------
    MultiLabelData

    Raises
    ------
    DataFormatError
        With the file, line and column of the first problem.
    ValueError
        The label columns are not given by exactly one option.
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if ".tsv" in path.suffixes else ","
    text_lines = _read_lines(path)
    numbered = [(ln, s) for ln, s in enumerate(text_lines, start=1) if s.strip()]
    if not numbered:
        raise DataFormatError(path, None, "empty file")
    rows = csv.reader([s for _, s in numbered], delimiter=delimiter, strict=True)
    try:
        parsed = list(rows)
    except csv.Error as exc:
        raise DataFormatError(path, numbered[rows.line_num - 1][0], f"malformed CSV: {exc}") from None
    header_line = numbered[0][0]
    header = [h.strip() for h in parsed[0]]
    seen = {}
    for j, name in enumerate(header):
        if name == "":
            raise DataFormatError(path, header_line, f"column {j + 1} of the header has no name")
        if name in seen:
            raise DataFormatError(path, header_line, f"column name {name!r} appears twice")
        seen[name] = j
    lines = [ln for ln, _ in numbered[1:]]
    body = parsed[1:]
    if not body:
        raise DataFormatError(path, header_line, "a header but no data row")
    for ln, row in zip(lines, body):
        if len(row) != len(header):
            raise DataFormatError(path, ln, f"expected {len(header)} values (as in the header), found {len(row)}")
    label_cols = _label_columns(header, path, header_line, label_names, label_prefix, label_count)
    cells = np.char.strip(np.asarray(body, dtype=str))
    values = _to_float(cells, header, lines, path)
    is_label = np.zeros(len(header), dtype=bool)
    is_label[label_cols] = True
    Y, X = values[:, is_label], values[:, ~is_label]
    bad = np.argwhere(~np.isin(Y, (0.0, 1.0)))
    if bad.size:
        r, c = bad[0]
        raise DataFormatError(path, lines[r], f"label column {header[label_cols[c]]!r} has value "
                              f"{str(cells[r, label_cols[c]])!r}; labels must be 0 or 1")
    feature_cols = np.flatnonzero(~is_label)
    if not allow_missing:
        bad = np.argwhere(np.isnan(X))
        if bad.size:
            r, c = bad[0]
            raise DataFormatError(path, lines[r], f"missing value {str(cells[r, feature_cols[c]])!r} in column "
                                  f"{header[feature_cols[c]]!r} (pass allow_missing=True to keep it as NaN)")
    with np.errstate(invalid="ignore"):
        bad = np.argwhere(np.abs(X) > _FLOAT32_MAX)
    if bad.size:
        r, c = bad[0]
        raise DataFormatError(path, lines[r], f"value {str(cells[r, feature_cols[c]])!r} in column "
                              f"{header[feature_cols[c]]!r} is infinite or beyond the float32 range")
    names = [header[j] for j in feature_cols]
    suspects = [names[j] for j in identifier_columns(X, np.zeros(X.shape[1], dtype=bool))]
    if suspects:
        warnings.warn(f"{path}: column(s) {suspects[:5]} count the rows (a distinct integer per row): probably "
                      "an identifier, which a model can only memorise; consider removing it", UserWarning,
                      stacklevel=2)
    return from_arrays(X, Y, feature_names=names, label_names=[header[j] for j in label_cols], source=str(path),
                       allow_missing=allow_missing)
