"""MULAN / MEKA ARFF loader for multi-label data.

The loader reads dense and sparse ARFF files (optionally compressed with xz or
gzip) and returns a :class:`MultiLabelData`: features as dense ``float32`` or
``scipy.sparse.csr_matrix`` (``float32``), a binary label matrix as
``csr_matrix`` (``uint8``) and the attribute names.

Which attributes are labels is decided, in this order, by

1. the names of a MULAN XML label file (``xml=``), or ``label_names=``;
2. ``n_labels=`` (the last ``n_labels`` attributes, or the first with
   ``label_location="start"``);
3. the MULAN XML file of the same name beside the ARFF: ``<stem>.xml``, else
   the XML of the stem without its last ``-part`` (``yeast-train.arff`` and
   ``Corel5k-sparse.arff`` use ``yeast.xml`` and ``Corel5k.xml``), as MULAN
   ships every dataset with its XML;
4. the MEKA ``-C`` option of the ``@relation`` line: ``-C -q`` means the last
   ``q`` attributes, ``-C q`` the first ``q``. This option is often stale
   (MULAN's ``medical.arff`` says ``-C 45`` where its labels are the last 45
   attributes), so using it warns, naming the attributes taken as labels.

``info["labels_from"]`` records which rule applied (with the XML's path).
Labels keep the order of the ARFF attributes (not the order of the XML file,
which differs for yeast).

Attribute handling
------------------
* ``numeric``/``real``/``integer``: parsed as float. A missing value ``?`` or
  a NaN is refused unless ``allow_missing=True`` (then it is kept as NaN, in
  features only); infinities and numbers beyond the float32 range are always
  refused.
* nominal ``{a,b,...}``: encoded as the 0-based index of the value in the
  declaration (the convention of liac-arff ``encode_nominal=True`` used by the
  published code). Omitted entries of a sparse row take code 0, as in Weka.
* ``string`` and ``date`` attributes (for example a per-row identifier) are
  dropped with a :class:`UserWarning`. A nominal feature with a different value
  in every row (at least :data:`IDENTIFIER_MIN_ROWS` rows), or an integer
  feature counting the rows (distinct consecutive integers), is kept but warned
  about as a likely identifier (genbase's ``protein``).
* A label must be nominal with values ``{0,1}`` or numeric with values 0/1.
* Two attributes with the same name are refused.
* A UTF-8 byte-order mark at the start of the file is ignored.

Every malformed input raises :class:`DataFormatError` carrying the file name
and the 1-based line number.
"""
from __future__ import annotations

import gzip
import lzma
import re
import warnings
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Attribute",
    "DataFormatError",
    "IDENTIFIER_MIN_ROWS",
    "MultiLabelData",
    "beside_xml",
    "identifier_columns",
    "load_arff",
    "read_label_xml",
]

_NUMERIC, _NOMINAL, _DROPPED = 0, 1, 2
_FLUSH_TOKENS = 1_000_000  # values converted per block (bounds peak memory)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Fewest rows for which a feature with a distinct value per row is reported as an identifier.
IDENTIFIER_MIN_ROWS = 20


class DataFormatError(ValueError):
    """Malformed ARFF or label XML input.

    Attributes
    ----------
    path : str
        The offending file.
    line : int or None
        1-based line number, when known.
    """

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Attribute:
    """One ``@attribute`` declaration.

    Attributes
    ----------
    name : str
    kind : {"numeric", "nominal", "string", "date"}
    values : tuple of str or None
        Declared values of a nominal attribute (code = index in this tuple).
    line : int
        Line of the declaration.
    """

    name: str
    kind: str
    values: tuple | None
    line: int


@dataclass
class MultiLabelData:
    """A parsed multi-label dataset.

    Attributes
    ----------
    X : numpy.ndarray or scipy.sparse.csr_matrix
        ``(n, d)`` float32 features; CSR when the file is sparse (or when
        ``sparse=True`` was requested).
    Y : scipy.sparse.csr_matrix
        ``(n, q)`` uint8 binary labels with sorted indices and no explicit
        zeros.
    feature_names, label_names : list of str
    relation : str
        The ``@relation`` name.
    source : str
        Where the data came from (file path, or ``"bundled:<name>"``).
    dropped : list of str
        Names of string/date attributes that were dropped.
    nominal_features : dict
        ``feature name -> declared values`` for nominal features (codes index
        these tuples).
    info : dict
        Free-form provenance (sha256, cache hit, preprocessing record...).
    """

    X: np.ndarray | sp.csr_matrix
    Y: sp.csr_matrix
    feature_names: list
    label_names: list
    relation: str = ""
    source: str = ""
    dropped: list = field(default_factory=list)
    nominal_features: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of instances."""
        return self.Y.shape[0]

    @property
    def d(self) -> int:
        """Number of features."""
        return self.X.shape[1]

    @property
    def q(self) -> int:
        """Number of labels."""
        return self.Y.shape[1]

    @property
    def cardinality(self) -> float:
        """Label cardinality ``Card = (1/n) sum_i |Y_i|``."""
        return float(self.Y.nnz) / self.n if self.n else 0.0


# --------------------------------------------------------------------------- text helpers
def _read_lines(path: Path) -> list[str]:
    """Return the lines of a (possibly xz/gzip-compressed) text file."""
    name = path.name.lower()
    if name.endswith(".xz"):
        raw = lzma.open(path, "rb").read()
    elif name.endswith(".gz"):
        raw = gzip.open(path, "rb").read()
    else:
        raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
        raw = raw[3:]
    return raw.decode("utf-8", errors="surrogateescape").splitlines()


def _split_quoted(text: str, path, line: int) -> list[str]:
    """Split ``text`` on commas outside quotes; strip blanks and quotes.

    ARFF values may be quoted with ``'`` or ``"``; a backslash escapes the next
    character inside quotes.
    """
    if "'" not in text and '"' not in text:
        return [t.strip() for t in text.split(",")]
    out: list[str] = []
    buf: list[str] = []
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote is not None:
            if c == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            else:
                buf.append(c)
        elif c in "'\"":
            quote = c
        elif c == ",":
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(c)
        i += 1
    if quote is not None:
        raise DataFormatError(path, line, "unterminated quoted value")
    out.append("".join(buf).strip())
    return out


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1].replace("\\'", "'").replace('\\"', '"')
    return token


_ATTR_RE = re.compile(
    r"""^@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.*?)\s*$""",
    re.IGNORECASE,
)
_MEKA_C_RE = re.compile(r"-C\s+(-?\d+)")


def _parse_attribute(text: str, path, line: int) -> Attribute:
    m = _ATTR_RE.match(text)
    if not m:
        raise DataFormatError(path, line, f"cannot parse attribute declaration {text!r}")
    name, spec = _unquote(m.group(1)), m.group(2)
    low = spec.lower()
    if spec.startswith("{"):
        if not spec.endswith("}"):
            raise DataFormatError(path, line, f"unterminated nominal declaration of {name!r}")
        values = tuple(_unquote(v) for v in _split_quoted(spec[1:-1], path, line))
        return Attribute(name, "nominal", values, line)
    if low in ("numeric", "real", "integer"):
        return Attribute(name, "numeric", None, line)
    if low == "string":
        return Attribute(name, "string", None, line)
    if low.startswith("date"):
        return Attribute(name, "date", None, line)
    raise DataFormatError(path, line, f"unsupported type {spec!r} of attribute {name!r}")


# --------------------------------------------------------------------------- XML label file
def read_label_xml(path) -> list[tuple[str, int]]:
    """Read the label names of a MULAN XML label file.

    Parameters
    ----------
    path : str or Path
        The XML file (``<labels><label name="..."/>...</labels>``; nested
        hierarchical labels are flattened in document order).

    Returns
    -------
    list of (name, line)
        Each label name with the line it is declared on.

    Raises
    ------
    DataFormatError
        On malformed XML (with line number) or when no label is declared.
    """
    path = Path(path)
    labels: list[tuple[str, int]] = []
    parser = xml.parsers.expat.ParserCreate()

    def start(tag, attrs):
        local = tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
        if local == "label":
            if "name" not in attrs:
                raise DataFormatError(path, parser.CurrentLineNumber, "<label> without a name")
            labels.append((attrs["name"], parser.CurrentLineNumber))

    parser.StartElementHandler = start
    try:
        parser.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as exc:
        raise DataFormatError(path, exc.lineno, f"malformed XML: {exc}") from None
    if not labels:
        raise DataFormatError(path, None, "no <label> element found")
    return labels


# --------------------------------------------------------------------------- value conversion
def _is_number(token: str) -> bool:
    if token == "?":
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


class _Values:
    """Accumulates (row, attribute, text) triplets and converts them in blocks."""

    def __init__(self, attrs: list[Attribute], path, label_idx, allow_missing: bool):
        self.attrs = attrs
        self.allow_missing = allow_missing
        self.label_set = set(label_idx)
        self.path = path
        self.kind = np.array(
            [_NUMERIC if a.kind == "numeric" else _NOMINAL if a.kind == "nominal" else _DROPPED for a in attrs],
            dtype=np.int8,
        )
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.text: list[str] = []
        self.line_of_row: list[int] = []
        self.out_rows, self.out_cols, self.out_vals = [], [], []

    def add(self, row_cols, row_text, line: int) -> None:
        r = len(self.line_of_row)
        self.line_of_row.append(line)
        self.rows.extend([r] * len(row_text))
        self.cols.extend(row_cols)
        self.text.extend(row_text)
        if len(self.text) >= _FLUSH_TOKENS:
            self.flush()

    def _fail(self, rows, message_of):
        """Raise for the first offending triplet (``rows`` sorted by position)."""
        k = int(rows[0])
        raise DataFormatError(self.path, self.line_of_row[self._rows_np[k]], message_of(k))

    def flush(self) -> None:
        if not self.text:
            return
        rows = np.asarray(self.rows, dtype=np.int64)
        cols = np.asarray(self.cols, dtype=np.int64)
        text = np.asarray(self.text, dtype=str)
        self._rows_np = rows
        self.rows, self.cols, self.text = [], [], []
        A = len(self.attrs)
        bad = np.flatnonzero((cols < 0) | (cols >= A))
        if bad.size:
            self._fail(bad, lambda k: f"unknown attribute index {cols[k]} (the file declares {A} attributes)")
        kind = self.kind[cols]
        vals = np.full(rows.shape, np.nan)
        num = np.flatnonzero(kind == _NUMERIC)
        if num.size:
            t = text[num]
            miss = t == "?"
            t = np.where(miss, "nan", t)
            try:
                vals[num] = t.astype(np.float64)
            except ValueError:
                for k in num:
                    if not _is_number(text[k]):
                        self._fail([k], lambda k: f"value {str(text[k])!r} of numeric attribute "
                                   f"{self.attrs[cols[k]].name!r} is not a number")
            v = vals[num]
            if not self.allow_missing:
                bad = np.flatnonzero(np.isnan(v) & ~np.isin(cols[num], list(self.label_set)))
                if bad.size:
                    self._fail(num[bad], lambda k: f"missing value {str(text[k])!r} of numeric attribute "
                               f"{self.attrs[cols[k]].name!r} (pass allow_missing=True to keep it as NaN)")
            bad = np.flatnonzero(np.abs(v) > _FLOAT32_MAX)
            if bad.size:
                self._fail(num[bad], lambda k: f"value {str(text[k])!r} of numeric attribute "
                           f"{self.attrs[cols[k]].name!r} is infinite or beyond the float32 range")
        nom = np.flatnonzero(kind == _NOMINAL)
        if nom.size:
            t, c = text[nom], cols[nom]
            codes = np.full(nom.shape, -1.0)
            codes[t == "?"] = np.nan
            if not self.allow_missing:
                bad = np.flatnonzero((t == "?") & ~np.isin(c, list(self.label_set)))
                if bad.size:
                    self._fail(nom[bad], lambda k: f"missing value '?' of nominal attribute "
                               f"{self.attrs[cols[k]].name!r} (pass allow_missing=True to keep it as NaN)")
            uniq, inv = np.unique(t, return_inverse=True)
            for u_index, u in enumerate(uniq):
                if u == "?":
                    continue
                hit = inv == u_index
                lookup = {a: self.attrs[a].values.index(u) for a in np.unique(c[hit]).tolist()
                          if u in self.attrs[a].values}
                if lookup:
                    keys = np.fromiter(lookup.keys(), dtype=np.int64)
                    table = np.fromiter(lookup.values(), dtype=np.float64)
                    order = np.argsort(keys)
                    pos = np.searchsorted(keys[order], c[hit]).clip(0, len(keys) - 1)
                    ok = keys[order][pos] == c[hit]
                    sub = codes[hit]
                    sub[ok] = table[order][pos[ok]]
                    codes[hit] = sub
            bad = np.flatnonzero(codes == -1)
            if bad.size:
                k = nom[bad[0]]
                a = self.attrs[cols[k]]
                if cols[k] in self.label_set:
                    self._fail([k], lambda k: f"label {a.name!r} has value {str(text[k])!r}; labels must be 0 or 1")
                self._fail([k], lambda k: f"value {str(text[k])!r} is not among the declared values "
                           f"{{{','.join(a.values)}}} of attribute {a.name!r}")
            vals[nom] = codes
        self.out_rows.append(rows)
        self.out_cols.append(cols)
        self.out_vals.append(vals)
        self._rows_np = None

    def triplets(self):
        self.flush()
        if not self.out_rows:
            e = np.empty(0, dtype=np.int64)
            return e, e.copy(), np.empty(0)
        return (np.concatenate(self.out_rows), np.concatenate(self.out_cols), np.concatenate(self.out_vals))


# --------------------------------------------------------------------------- main entry point
def _arff_stem(path: Path) -> str:
    name = path.name
    for suffix in (".xz", ".gz"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name[:-5] if name.lower().endswith(".arff") else Path(name).stem


def beside_xml(path) -> Path | None:
    """The MULAN XML label file that belongs to an ARFF file, if there is one beside it.

    ``<folder>/<stem>.xml``, else the XML of the stem cut before its last
    ``-`` (repeatedly): ``yeast-train.arff`` -> ``yeast.xml``,
    ``Corel5k-sparse.arff`` -> ``Corel5k.xml``.

    Returns
    -------
    Path or None
    """
    path = Path(path)
    stem = _arff_stem(path)
    while stem:
        candidate = path.with_name(stem + ".xml")
        if candidate.is_file():
            return candidate
        if "-" not in stem:
            return None
        stem = stem.rsplit("-", 1)[0]
    return None


def _choose_labels(attrs, relation, path, xml, label_names, n_labels, label_location, rel_line):
    """Return the sorted attribute indices of the labels and where that choice came from."""
    names = [a.name for a in attrs]
    index = {nm: i for i, nm in enumerate(names)}
    found = None
    if xml is None and label_names is None and n_labels is None:
        found = beside_xml(path)
        xml = found
    if xml is not None or label_names is not None:
        entries = read_label_xml(xml) if xml is not None else [(nm, None) for nm in label_names]
        source = Path(xml) if xml is not None else "label_names"
        idx = []
        for nm, line in entries:
            if nm not in index:
                raise DataFormatError(source, line, f"label {nm!r} is not an attribute of {path}")
            idx.append(index[nm])
        if len(set(idx)) != len(idx):
            raise DataFormatError(source, None, "a label is named twice")
        origin = (f"xml beside the ARFF: {xml}" if found is not None else f"xml: {xml}" if xml is not None
                  else "label_names")
        return sorted(idx), origin
    if n_labels is None:
        m = _MEKA_C_RE.search(relation)
        if m is None:
            raise DataFormatError(path, rel_line, "cannot tell which attributes are labels: no MULAN XML file "
                                  "beside it; give the XML (xml=), label_names=, n_labels=, or a MEKA '-C' "
                                  "relation option")
        c = int(m.group(1))
        q, at_end = abs(c), c < 0
        origin = f"relation option -C {c}"
    else:
        q = int(n_labels)
        if label_location not in ("end", "start"):
            raise ValueError("label_location must be 'end' or 'start'")
        at_end = label_location == "end"
        origin = f"n_labels={q} at the {label_location}"
    if not 0 < q <= len(attrs):
        raise DataFormatError(path, rel_line, f"invalid number of labels {q} for {len(attrs)} attributes")
    idx = list(range(len(attrs) - q, len(attrs))) if at_end else list(range(q))
    if n_labels is None:
        shown = ", ".join(repr(names[i]) for i in idx[:3]) + (", ..., " + repr(names[idx[-1]]) if q > 3 else "")
        warnings.warn(f"{path}: no label XML beside it; the labels are the {'last' if at_end else 'first'} {q} "
                      f"attributes ({shown}), from the relation's MEKA option '-C {c}' (-C q: first q attributes, "
                      "-C -q: last q). This option is often stale: give the MULAN XML file to be sure.",
                      UserWarning, stacklevel=3)
    return idx, origin


def _check_label_attribute(a: Attribute, path, origin: str) -> None:
    if a.kind == "numeric":
        return
    if a.kind != "nominal" or not set(a.values) <= {"0", "1"}:
        raise DataFormatError(path, a.line, f"label {a.name!r} must be nominal {{0,1}} or numeric, "
                              f"found {a.kind} {a.values or ''} (labels chosen by {origin})")


def load_arff(
    path,
    xml=None,
    *,
    label_names: Sequence[str] | None = None,
    n_labels: int | None = None,
    label_location: str = "end",
    sparse: bool | None = None,
    allow_missing: bool = False,
) -> MultiLabelData:
    """Parse a multi-label ARFF file.

    Parameters
    ----------
    path : str or Path
        ARFF file, plain or compressed (``.xz``, ``.gz``).
    xml : str or Path, optional
        MULAN XML label file naming the labels.
    label_names : sequence of str, optional
        Label attribute names, instead of ``xml``.
    n_labels : int, optional
        Number of label attributes, located by ``label_location``
        (``"end"``: last ``n_labels`` attributes, ``"start"``: first).
    label_location : {"end", "start"}
    sparse : bool, optional
        Force CSR (True) or dense (False) features. Default: CSR iff the first
        data row is in sparse ``{index value, ...}`` form.
    allow_missing : bool
        Keep missing feature values (``?``, NaN) as NaN instead of refusing
        them. Labels may never be missing; infinite or float32-overflowing
        numbers are always refused.

    Returns
    -------
    MultiLabelData
        ``info["labels_from"]`` says how the labels were chosen (see the
        module docstring).

    Raises
    ------
    DataFormatError
        Malformed input: truncated file, wrong number of values in a row,
        unknown attribute index in a sparse row, label value other than 0/1,
        XML label missing from the ARFF, undeclared nominal value, duplicate
        attribute name, missing/NaN (unless ``allow_missing``), infinite or
        overflowing number, ...

    Warns
    -----
    UserWarning
        Labels taken from the relation's ``-C`` option; string/date attributes
        dropped; a feature that looks like a row identifier.
    """
    path = Path(path)
    lines = _read_lines(path)
    attrs: list[Attribute] = []
    relation, rel_line, data_line = "", None, None
    for ln, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s or s.startswith("%"):
            continue
        low = s[:10].lower()
        if low.startswith("@relation"):
            relation, rel_line = _unquote(s[len("@relation"):].strip()), ln
        elif low.startswith("@attribute"):
            attrs.append(_parse_attribute(s, path, ln))
        elif low.startswith("@data"):
            data_line = ln
            break
        else:
            raise DataFormatError(path, ln, f"unexpected header line {s[:60]!r}")
    if data_line is None:
        raise DataFormatError(path, len(lines), "no @data section (truncated file?)")
    if not attrs:
        raise DataFormatError(path, data_line, "no @attribute declared")
    first_line: dict[str, int] = {}
    for a in attrs:
        if a.name in first_line:
            raise DataFormatError(path, a.line, f"attribute {a.name!r} is declared twice (first on line "
                                  f"{first_line[a.name]})")
        first_line[a.name] = a.line
    label_idx, labels_from = _choose_labels(attrs, relation, path, xml, label_names, n_labels, label_location,
                                            rel_line)
    for j in label_idx:
        _check_label_attribute(attrs[j], path, labels_from)
        if attrs[j].kind == "nominal" and attrs[j].values[0] == "1":
            raise DataFormatError(path, attrs[j].line, f"label {attrs[j].name!r} declares '1' as its first "
                                  "value; only {0,1} is supported")

    A = len(attrs)
    all_cols = list(range(A))
    acc = _Values(attrs, path, label_idx, bool(allow_missing))
    first_sparse = None
    for ln in range(data_line + 1, len(lines) + 1):
        s = lines[ln - 1].strip()
        if not s or s.startswith("%"):
            continue
        if s.startswith("{"):
            if first_sparse is None:
                first_sparse = True
            if not s.endswith("}"):
                msg = ("instance weights are not supported" if "},{" in s.replace(" ", "")
                       else "sparse row without closing '}' (truncated file?)")
                raise DataFormatError(path, ln, msg)
            body = s[1:-1].strip()
            if not body:
                acc.add([], [], ln)
                continue
            if "'" in body or '"' in body:
                entries = _split_quoted(body, path, ln)
                pairs = [e.split(None, 1) for e in entries]
                if any(len(p) != 2 for p in pairs):
                    raise DataFormatError(path, ln, "malformed sparse entry (expected 'index value')")
                idx_text = [p[0] for p in pairs]
                val_text = [_unquote(p[1]) for p in pairs]
            else:
                parts = body.replace(",", " ").split()
                if len(parts) != 2 * (body.count(",") + 1):
                    raise DataFormatError(path, ln, "malformed sparse entry (expected 'index value')")
                idx_text, val_text = parts[0::2], parts[1::2]
            try:
                idx = [int(t) for t in idx_text]
            except ValueError:
                raise DataFormatError(path, ln, "non-integer attribute index in sparse row") from None
            if len(set(idx)) != len(idx):
                raise DataFormatError(path, ln, "attribute index repeated in sparse row")
            acc.add(idx, val_text, ln)
        else:
            if first_sparse is None:
                first_sparse = False
            tokens = _split_quoted(s, path, ln)
            if len(tokens) != A:
                hint = " (truncated file?)" if ln == len(lines) else ""
                raise DataFormatError(path, ln, f"expected {A} values, found {len(tokens)}{hint}")
            if "'" in s or '"' in s:
                tokens = [_unquote(t) for t in tokens]
            acc.add(all_cols, tokens, ln)
    n = len(acc.line_of_row)
    rows, cols, vals = acc.triplets()
    data = _assemble(attrs, label_idx, rows, cols, vals, n, acc.line_of_row, path, relation,
                     bool(first_sparse) if sparse is None else bool(sparse), labels_from)
    data.info["labels_from"] = labels_from
    _warn_identifiers(data, path)
    return data


def identifier_columns(X, nominal) -> np.ndarray:
    """Indices of the columns that take a different value in every row, like a row identifier.

    A column qualifies when the data has at least :data:`IDENTIFIER_MIN_ROWS`
    rows, its values are all finite and distinct, and it is nominal
    (``nominal[j]``) or holds consecutive integers (a row counter). A real-valued
    measurement with distinct values does not qualify.

    Parameters
    ----------
    X : ndarray or sparse matrix, shape (n, d)
    nominal : array of bool, shape (d,)
    """
    n, d = X.shape
    nominal = np.asarray(nominal, dtype=bool)
    if n < IDENTIFIER_MIN_ROWS or d == 0:
        return np.empty(0, dtype=np.int64)
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        cand = np.flatnonzero(np.diff(X.indptr) >= n - 1)  # at most one zero in a column of distinct values
        cols = X[:, cand].toarray()
    else:
        cols = np.asarray(X)
        with np.errstate(invalid="ignore"):  # n distinct integers (codes) span at least n - 1
            cand = np.flatnonzero(np.nan_to_num(np.ptp(cols, axis=0), nan=0.0) >= n - 1)
        cols = cols[:, cand]
    if cand.size == 0:
        return cand
    cols = np.sort(cols.astype(np.float64, copy=False), axis=0)
    finite = np.isfinite(cols).all(axis=0)
    distinct = (np.diff(cols, axis=0) > 0).all(axis=0)
    counter = (cols == np.round(cols)).all(axis=0) & (cols[-1] - cols[0] == n - 1)
    return cand[finite & distinct & (nominal[cand] | counter)]


def _warn_identifiers(data: MultiLabelData, path) -> None:
    nominal = np.array([name in data.nominal_features for name in data.feature_names], dtype=bool)
    suspects = [data.feature_names[j] for j in identifier_columns(data.X, nominal)]
    if suspects:
        warnings.warn(f"{path}: feature(s) {', '.join(map(repr, suspects[:5]))} take a different value in every "
                      "row: probably an identifier (such as a protein id), which a model can only memorise; "
                      "consider removing it", UserWarning, stacklevel=3)


def _assemble(attrs, label_idx, rows, cols, vals, n, line_of_row, path, relation, sparse_out, labels_from):
    A = len(attrs)
    is_label = np.zeros(A, dtype=bool)
    is_label[label_idx] = True
    dropped = [a for i, a in enumerate(attrs) if a.kind in ("string", "date") and not is_label[i]]
    if dropped:
        warnings.warn(f"{path}: dropping {len(dropped)} string/date attribute(s) (identifiers?): "
                      f"{', '.join(a.name for a in dropped[:5])}", UserWarning, stacklevel=3)
    keep = np.array([not is_label[i] and attrs[i].kind in ("numeric", "nominal") for i in range(A)])
    feat_of = np.cumsum(keep) - 1
    lab_of = np.cumsum(is_label) - 1

    lab = is_label[cols]
    lr, lc, lv = rows[lab], cols[lab], vals[lab]
    bad = np.flatnonzero(~((lv == 0) | (lv == 1)))
    if bad.size:
        k = bad[0]
        a = attrs[lc[k]]
        shown = "missing '?'" if np.isnan(lv[k]) else f"{float(lv[k]):g}"
        raise DataFormatError(path, line_of_row[lr[k]], f"label {a.name!r} has value {shown}; labels must be 0 or 1 "
                              f"(labels chosen by {labels_from})")
    pos = lv == 1
    Y = sp.csr_matrix((np.ones(int(pos.sum()), dtype=np.uint8), (lr[pos], lab_of[lc[pos]])),
                      shape=(n, len(label_idx)))
    Y.sum_duplicates()
    Y.sort_indices()

    f = keep[cols]
    fr, fc, fv = rows[f], feat_of[cols[f]], vals[f].astype(np.float32)
    d = int(keep.sum())
    if sparse_out:
        nz = fv != 0
        X = sp.csr_matrix((fv[nz], (fr[nz], fc[nz])), shape=(n, d), dtype=np.float32)
        X.sort_indices()
    else:
        X = np.zeros((n, d), dtype=np.float32)
        X[fr, fc] = fv
    feature_names = [a.name for i, a in enumerate(attrs) if keep[i]]
    return MultiLabelData(
        X=X,
        Y=Y,
        feature_names=feature_names,
        label_names=[attrs[i].name for i in label_idx],
        relation=relation,
        source=str(path),
        dropped=[a.name for a in dropped],
        nominal_features={a.name: a.values for i, a in enumerate(attrs) if keep[i] and a.kind == "nominal"},
    )
