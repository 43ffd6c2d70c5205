"""Multi-label LibSVM / svmlight files, the format of the Extreme Classification Repository.

One instance per line::

    l1,l2,...  i:v  i:v ...

labels as comma-separated integer ids (none at all: the line starts with a
blank or directly with the features), then ``index:value`` features with
increasing indices. Blank lines and ``#`` comments are skipped. The
repository's files start with a header line ``n d q`` (instances, features,
labels); when present it is checked against the data.

Indices: with the header, feature indices are 0-based (the repository's
convention) unless ``zero_based=False``; without it ``zero_based="auto"``
follows scikit-learn (1-based unless an index 0 appears). Label id ``j`` is
column ``j`` of ``Y`` (0-based), and ``q`` is the header's, else the largest
id plus one (a column of an unused id stays empty; the experiments' label
filter drops it).

The numbers are parsed by scikit-learn's ``load_svmlight_file(multilabel=True)``
(compiled, fast on large files). scikit-learn is imported only here, so the rest
of ``mlbs.data`` does not need it. When that parser rejects the file, the lines
are scanned again to name the first offending one.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .arff import DataFormatError, MultiLabelData
from .arrays import from_arrays

__all__ = ["load_svmlight"]

_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$")
_FEATURE = re.compile(r"^(\d+):(\S+)$")
_LABELS = re.compile(r"^\d+(,\d+)*$")


def _read_bytes(path: Path) -> bytes:
    import gzip
    import lzma

    name = path.name.lower()
    opener = lzma.open if name.endswith(".xz") else gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return fh.read()


def _line_problem(text: str) -> str | None:
    """Why one data line is malformed, or None."""
    body = text.split("#", 1)[0]
    if not body.strip():
        return None
    tokens = body.split()
    if not body[0].isspace() and ":" not in tokens[0]:
        if not _LABELS.match(tokens[0]):
            return f"labels {tokens[0]!r} are not comma-separated non-negative integers"
        tokens = tokens[1:]
    last = -1
    for tok in tokens:
        m = _FEATURE.match(tok)
        if m is None:
            return f"feature {tok!r} is not 'index:value'"
        try:
            float(m.group(2))
        except ValueError:
            return f"feature value {m.group(2)!r} is not a number"
        index = int(m.group(1))
        if index <= last:
            return f"feature index {index} after {last}: indices must increase"
        last = index
    return None


def _data_lines(lines: list[str], first: int) -> list[int]:
    """1-based line numbers of the instances (the lines scikit-learn turns into rows)."""
    return [ln for ln, s in enumerate(lines, start=first) if s.split("#", 1)[0].strip()]


def load_svmlight(path, *, zero_based="auto", allow_missing: bool = False) -> MultiLabelData:
    """Read a multi-label LibSVM / svmlight file (format: see the module docstring).

    Parameters
    ----------
    path : str or Path
        Plain or compressed (``.gz``, ``.xz``).
    zero_based : bool or "auto"
        Whether feature indices start at 0. ``"auto"``: 0-based when the file
        has the repository's header, else scikit-learn's guess.
    allow_missing : bool
        Accept ``nan`` feature values (kept as NaN).

    Returns
    -------
    MultiLabelData

    Raises
    ------
    DataFormatError
        With the line of the first malformed instance, a header that disagrees
        with the data, label ids that are not non-negative integers, NaN
        (unless ``allow_missing``), infinite or float32-overflowing values.
    ImportError
        scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError as exc:  # pragma: no cover - scikit-learn is declared by the experiments extra
        raise ImportError("reading LibSVM/svmlight files needs scikit-learn: pip install scikit-learn "
                          "(it comes with `pip install mlbs[experiments]`)") from exc
    path = Path(path)
    raw = _read_bytes(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    first_line, rest = (raw.split(b"\n", 1) + [b""])[:2]
    header = _HEADER.match(first_line)
    body, body_start = (rest, 2) if header else (raw, 1)
    n_h, d_h, q_h = (int(v) for v in header.groups()) if header else (None, None, None)
    if zero_based == "auto" and header:
        zero_based = True

    def lines() -> list[str]:
        return body.decode("utf-8", errors="replace").split("\n")

    try:
        X, labels = load_svmlight_file(io.BytesIO(body), multilabel=True, zero_based=zero_based,
                                       n_features=d_h, dtype=np.float64)
    except ValueError as exc:
        for ln, text in enumerate(lines(), start=body_start):
            problem = _line_problem(text)
            if problem is not None:
                raise DataFormatError(path, ln, problem) from None
        hint = (" (with the header line, feature indices are taken as 0-based; for a 1-based file pass "
                "zero_based=False, or --one-based to mlbs)" if header and zero_based is True else "")
        raise DataFormatError(path, None, f"{exc}{hint}") from None
    n = X.shape[0]
    if n == 0:
        raise DataFormatError(path, None, "no instance in the file")
    if header and n != n_h:
        raise DataFormatError(path, 1, f"the header announces {n_h} instances, the file holds {n}")
    if header and X.shape[1] != d_h:
        raise DataFormatError(path, 1, f"the header announces {d_h} features, the data index {X.shape[1]}")
    counts = np.fromiter((len(t) for t in labels), dtype=np.int64, count=n)
    ids = np.fromiter((v for t in labels for v in t), dtype=np.float64, count=int(counts.sum()))
    bad = np.flatnonzero((ids < 0) | (ids != np.round(ids)))
    if bad.size:
        row = int(np.searchsorted(np.cumsum(counts), bad[0], side="right"))
        raise DataFormatError(path, _data_lines(lines(), body_start)[row],
                              f"label id {ids[bad[0]]:g} is not a non-negative integer")
    q = q_h if header else (int(ids.max()) + 1 if ids.size else 0)
    if q == 0:
        raise DataFormatError(path, None, "no label in the file")
    if ids.size and ids.max() >= q:
        k = int(np.argmax(ids))
        row = int(np.searchsorted(np.cumsum(counts), k, side="right"))
        raise DataFormatError(path, _data_lines(lines(), body_start)[row],
                              f"label id {int(ids[k])} but the header announces {q} labels")
    rows = np.repeat(np.arange(n), counts)
    Y = sp.csr_matrix((np.ones(ids.size, dtype=np.uint8), (rows, ids.astype(np.int64))), shape=(n, q))
    Y.sum_duplicates()
    Y.data[:] = 1
    X = sp.csr_matrix(X)
    for kind, mask in (("missing (nan)", None if allow_missing else np.isnan(X.data)),
                       ("infinite or beyond the float32 range", np.abs(X.data) > np.finfo(np.float32).max)):
        if mask is not None and mask.any():
            k = int(np.flatnonzero(mask)[0])
            row = int(np.searchsorted(X.indptr, k, side="right") - 1)
            hint = " (pass allow_missing=True to keep it as NaN)" if kind.startswith("missing") else ""
            raise DataFormatError(path, _data_lines(lines(), body_start)[row],
                                  f"feature {X.indices[k]} is {kind}{hint}")
    try:
        return from_arrays(X, Y, source=str(path), allow_missing=allow_missing,
                           label_names=[str(j) for j in range(q)])
    except ValueError as exc:
        raise DataFormatError(path, None, str(exc)) from None
