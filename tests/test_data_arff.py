"""ARFF loader and parse cache on small synthetic files (no real data needed)."""
from __future__ import annotations

import gzip
import lzma
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.data import DataFormatError, load_arff, read_label_xml
from mlbs.data.arff import IDENTIFIER_MIN_ROWS
from mlbs.data.cache import cached

DENSE = textwrap.dedent("""\
    % a comment
    @relation toy

    @attribute f1 numeric
    @attribute 'f 2' real
    @attribute colour {red,green,blue}
    @attribute L1 {0,1}
    @attribute L2 {0,1}
    @attribute L3 numeric

    @data
    1.5,2,green,1,0,1
    -1,?,blue,0,0,0
    0,3e2,red,1,1,0
    """)

SPARSE = textwrap.dedent("""\
    @relation 'toy: -C -3'
    @attribute a numeric
    @attribute b numeric
    @attribute c {x,y}
    @attribute L1 {0,1}
    @attribute L2 {0,1}
    @attribute L3 {0,1}
    @data
    {0 1.5,3 1}
    {}
    {1 -2, 2 y, 4 1,5 1}
    """)

XML = textwrap.dedent("""\
    <?xml version="1.0" encoding="utf-8"?>
    <labels xmlns="http://mulan.sourceforge.net/labels">
    <label name="L2"></label>
    <label name="L1"></label>
    <label name="L3"></label>
    </labels>
    """)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_dense_with_xml(tmp_path):
    d = load_arff(write(tmp_path, "t.arff", DENSE), write(tmp_path, "t.xml", XML), allow_missing=True)
    assert d.feature_names == ["f1", "f 2", "colour"]
    assert d.label_names == ["L1", "L2", "L3"]  # ARFF order, not XML order
    assert isinstance(d.X, np.ndarray) and d.X.dtype == np.float32
    np.testing.assert_array_equal(d.X[0], [1.5, 2, 1])
    assert np.isnan(d.X[1, 1]) and d.X[1, 2] == 2 and d.X[2, 1] == 300
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0, 1], [0, 0, 0], [1, 1, 0]])
    assert d.nominal_features == {"colour": ("red", "green", "blue")}
    assert d.relation == "toy"


def test_sparse_with_meka_option(tmp_path):
    with pytest.warns(UserWarning, match=r"last 3 attributes \('L1', 'L2', 'L3'\).*'-C -3'"):
        d = load_arff(write(tmp_path, "s.arff", SPARSE))
    assert d.info["labels_from"] == "relation option -C -3"
    assert d.label_names == ["L1", "L2", "L3"]
    assert d.X.format == "csr" and d.X.dtype == np.float32
    np.testing.assert_array_equal(d.X.toarray(), [[1.5, 0, 0], [0, 0, 0], [0, -2, 1]])
    np.testing.assert_array_equal(d.Y.toarray(), [[1, 0, 0], [0, 0, 0], [0, 1, 1]])


def test_meka_option_positive_means_first(tmp_path):
    text = "@relation 'x: -C 2'\n@attribute A {0,1}\n@attribute B {0,1}\n@attribute f numeric\n@data\n1,0,3.5\n"
    with pytest.warns(UserWarning, match="first 2 attributes"):
        d = load_arff(write(tmp_path, "m.arff", text))
    assert d.label_names == ["A", "B"] and d.feature_names == ["f"]


def test_n_labels_and_dense_sparse_agree(tmp_path):
    p = write(tmp_path, "t.arff", DENSE.replace("?", "0"))
    a = load_arff(p, n_labels=3)
    b = load_arff(p, n_labels=3, sparse=True)
    np.testing.assert_array_equal(a.X, b.X.toarray())


def test_compressed_files(tmp_path):
    raw = DENSE.encode()
    (tmp_path / "t.arff.xz").write_bytes(lzma.compress(raw))
    (tmp_path / "t.arff.gz").write_bytes(gzip.compress(raw))
    plain = load_arff(write(tmp_path, "t.arff", DENSE), n_labels=3, allow_missing=True)
    for name in ("t.arff.xz", "t.arff.gz"):
        d = load_arff(tmp_path / name, n_labels=3, allow_missing=True)
        np.testing.assert_array_equal(d.X, plain.X)
        assert (d.Y != plain.Y).nnz == 0


def test_string_identifier_dropped_with_warning(tmp_path):
    text = ("@relation r\n@attribute id string\n@attribute f numeric\n@attribute L {0,1}\n@data\n"
            "'row, one',1,1\n\"r2\",2,0\n")
    with pytest.warns(UserWarning, match="dropping 1 string"):
        d = load_arff(write(tmp_path, "id.arff", text), n_labels=1)
    assert d.feature_names == ["f"] and d.dropped == ["id"]
    np.testing.assert_array_equal(d.X.ravel(), [1, 2])


def test_quoted_names_and_values(tmp_path):
    text = ("@relation r\n@attribute 'Brown Creeper' {0,1}\n@attribute \"it's\" {'a b','c'}\n"
            "@attribute f numeric\n@data\n1,'a b',2\n0,c,3\n")
    d = load_arff(write(tmp_path, "q.arff", text), n_labels=1, label_location="start")
    assert d.label_names == ["Brown Creeper"]
    np.testing.assert_array_equal(d.X, [[0, 2], [1, 3]])


@pytest.mark.parametrize("body, line, pattern", [
    ("1,2,red,1,0,1\n1,2,red,1,0\n", 13, "expected 6 values, found 5"),          # wrong count
    ("1,2,red,1,0,1\n1,2,red,2,0,1\n", 13, "label 'L1' has value '2'; labels must be 0 or 1"),           # bad nominal label value
    ("1,2,red,1,0,0.5\n", 12, "label 'L3' has value 0.5"),                        # bad numeric label value
    ("1,2,purple,1,0,1\n", 12, "'purple' is not among the declared values"),     # undeclared nominal
    ("1,abc,red,1,0,1\n", 12, "'abc' of numeric attribute 'f 2' is not a number"),
    ("1,2,red,?,0,1\n", 12, "label 'L1' has value missing"),
])
def test_malformed_dense_rows(tmp_path, body, line, pattern):
    text = DENSE.split("@data")[0] + "@data\n" + body
    p = write(tmp_path, "bad.arff", text)
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_arff(p, n_labels=3)
    assert exc.value.line == line and exc.value.path == str(p)
    assert f"bad.arff:{line}:" in str(exc.value)


def test_bad_label_value_in_nominal_declared_label(tmp_path):
    text = DENSE.replace("@attribute L1 {0,1}", "@attribute L1 {0,1,2}")
    with pytest.raises(DataFormatError, match="label 'L1' must be nominal") as exc:
        load_arff(write(tmp_path, "b.arff", text), n_labels=3)
    assert exc.value.line == 7


@pytest.mark.parametrize("row, pattern", [
    ("{0 1.5,9 1}", "unknown attribute index 9"),
    ("{0 1.5,3 1", "without closing"),
    ("{0 1.5,3}", "malformed sparse entry"),
    ("{0 1,0 2}", "repeated"),
    ("{x 1}", "non-integer attribute index"),
    ("{3 7}", "label 'L1' has value '7'"),
    ("{2 z}", "'z' is not among the declared values"),
])
def test_malformed_sparse_rows(tmp_path, row, pattern):
    text = SPARSE.split("@data")[0] + "@data\n{0 1}\n" + row + "\n"
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_arff(write(tmp_path, "bad.arff", text), n_labels=3)
    assert exc.value.line == 10


def test_truncated_files(tmp_path):
    cut_header = DENSE[: DENSE.index("@data")]
    with pytest.raises(DataFormatError, match="no @data section"):
        load_arff(write(tmp_path, "h.arff", cut_header), n_labels=3)
    cut_row = DENSE[:-6]  # last row loses its final values
    with pytest.raises(DataFormatError, match="truncated file") as exc:
        load_arff(write(tmp_path, "r.arff", cut_row), n_labels=3)
    assert exc.value.line == 14


def test_xml_errors(tmp_path):
    arff = write(tmp_path, "t.arff", DENSE)
    missing = XML.replace('<label name="L3"></label>', '<label name="L9"></label>')
    with pytest.raises(DataFormatError, match="label 'L9' is not an attribute") as exc:
        load_arff(arff, write(tmp_path, "m.xml", missing))
    assert exc.value.line == 5 and exc.value.path.endswith("m.xml")
    with pytest.raises(DataFormatError, match="malformed XML") as exc:
        read_label_xml(write(tmp_path, "broken.xml", XML[:-10]))
    assert exc.value.line is not None


def test_labels_unknown_without_hint(tmp_path):
    with pytest.raises(DataFormatError, match="cannot tell which attributes are labels"):
        load_arff(write(tmp_path, "t.arff", DENSE))


# --------------------------------------------------------------------------- cache
def test_cache_roundtrip_and_key(tmp_path):
    src = write(tmp_path, "s.arff", SPARSE)
    calls = []

    def parse():
        calls.append(1)
        return load_arff(src, n_labels=3)

    a = cached(parse, [src], {"v": 1}, cache_dir=tmp_path / "c")
    b = cached(parse, [src], {"v": 1}, cache_dir=tmp_path / "c")
    assert len(calls) == 1 and not a.info["cache_hit"] and b.info["cache_hit"]
    assert (a.X != b.X).nnz == 0 and (a.Y != b.Y).nnz == 0 and a.label_names == b.label_names
    # changing one byte of the source changes the key: no stale read
    src.write_text(SPARSE.replace("1.5", "2.5"))
    c = cached(parse, [src], {"v": 1}, cache_dir=tmp_path / "c")
    assert len(calls) == 2 and not c.info["cache_hit"] and c.X[0, 0] == 2.5
    assert c.info["sha256_key"] != a.info["sha256_key"]


def test_nothing_cached_on_malformed_input(tmp_path):
    src = write(tmp_path, "bad.arff", SPARSE.replace("{1 -2", "{1 -2 7"))
    with pytest.raises(DataFormatError):
        cached(lambda: load_arff(src, n_labels=3), [src], {}, cache_dir=tmp_path / "c")
    leftovers = list((tmp_path / "c").glob("*")) if (tmp_path / "c").exists() else []
    assert leftovers == []


def test_corrupt_cache_entry_is_ignored(tmp_path):
    src = write(tmp_path, "s.arff", SPARSE)
    a = cached(lambda: load_arff(src, n_labels=3), [src], {}, cache_dir=tmp_path / "c")
    with open(a.info["cache_file"], "wb") as fh:
        fh.write(b"not a zip file")
    b = cached(lambda: load_arff(src, n_labels=3), [src], {}, cache_dir=tmp_path / "c")
    assert not b.info["cache_hit"] and (a.Y != b.Y).nnz == 0


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    src = write(tmp_path, "s.arff", SPARSE)
    monkeypatch.setenv("MLBS_CACHE", str(tmp_path / "envcache"))
    d = cached(lambda: load_arff(src, n_labels=3), [src], {})
    assert d.info["cache_file"].startswith(str(tmp_path / "envcache"))


def test_no_warning_on_clean_file(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_arff(write(tmp_path, "t.arff", DENSE.replace("?", "0")), n_labels=3)


# --------------------------------------------------------------------------- label choice and value checks
def medical_like(tmp_path, with_xml=True):
    """A small file shaped like MULAN's medical.arff: binary word features first, the labels last,
    and a stale MEKA option ``-C 3`` that would take the first three word features as labels."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5)]
    labels = ["Class-0", "Class-1", "Class-2"]
    header = ["@relation 'medical: -C 3'"] + [f"@attribute {w} {{0,1}}" for w in words] + \
             [f"@attribute {c} {{0,1}}" for c in labels] + ["@data"]
    W = rng.integers(0, 2, (30, 5))
    L = rng.integers(0, 2, (30, 3))
    rows = [",".join(map(str, np.r_[w, lab])) for w, lab in zip(W, L)]
    path = write(tmp_path, "medical.arff", "\n".join(header + rows) + "\n")
    if with_xml:
        write(tmp_path, "medical.xml", '<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">'
              + "".join(f'<label name="{c}"></label>' for c in labels) + "</labels>\n")
    return path, W, L


def test_the_xml_beside_the_arff_decides_the_labels_not_a_stale_meka_option(tmp_path):
    path, W, L = medical_like(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_arff(path)
    assert d.label_names == ["Class-0", "Class-1", "Class-2"]
    np.testing.assert_array_equal(d.Y.toarray(), L)
    np.testing.assert_array_equal(d.X, W)
    assert d.info["labels_from"] == f"xml beside the ARFF: {tmp_path / 'medical.xml'}"


def test_labels_from_the_meka_option_alone_warn_naming_them(tmp_path):
    path, W, _ = medical_like(tmp_path, with_xml=False)
    with pytest.warns(UserWarning, match=r"first 3 attributes \('w0', 'w1', 'w2'\).*'-C 3'.*-C q: first q"):
        d = load_arff(path)
    assert d.label_names == ["w0", "w1", "w2"] and d.info["labels_from"] == "relation option -C 3"


def test_xml_of_a_train_or_sparse_part_is_the_datasets(tmp_path):
    from mlbs.data import beside_xml

    write(tmp_path, "yeast.xml", XML)
    for name in ("yeast.arff", "yeast-train.arff", "yeast-test.arff.xz", "yeast-sparse-train.arff"):
        assert beside_xml(tmp_path / name) == tmp_path / "yeast.xml", name
    assert beside_xml(tmp_path / "emotions-train.arff") is None


def test_non_binary_attribute_chosen_as_label_is_refused(tmp_path):
    text = "@relation 'r: -C -1'\n@attribute f numeric\n@attribute g numeric\n@data\n1,0.5\n2,1\n"
    with pytest.warns(UserWarning), pytest.raises(DataFormatError, match=r"label 'g' has value 0\.5.*-C -1") as exc:
        load_arff(write(tmp_path, "r.arff", text))
    assert exc.value.line == 5
    text = "@relation 'r: -C -1'\n@attribute f numeric\n@attribute g {a,b}\n@data\n1,a\n"
    with pytest.warns(UserWarning), pytest.raises(DataFormatError, match="label 'g' must be nominal") as exc:
        load_arff(write(tmp_path, "s.arff", text))
    assert exc.value.line == 3


def test_duplicate_attribute_names_are_refused(tmp_path):
    text = DENSE.replace("@attribute 'f 2' real", "@attribute 'f1' real")
    with pytest.raises(DataFormatError, match=r"attribute 'f1' is declared twice \(first on line 4\)") as exc:
        load_arff(write(tmp_path, "d.arff", text), n_labels=3)
    assert exc.value.line == 5


@pytest.mark.parametrize("value, missing", [("?", True), ("nan", True), ("NaN", True), ("inf", False),
                                            ("-Infinity", False), ("1e39", False), ("1e999", False)])
def test_missing_infinite_and_overflowing_numbers(tmp_path, value, missing):
    body = f"1,2,red,1,0,1\n1,{value},red,1,0,1\n"
    p = write(tmp_path, "v.arff", DENSE.split("@data")[0] + "@data\n" + body)
    pattern = "missing value" if missing else "infinite or beyond the float32 range"
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_arff(p, n_labels=3)
    assert exc.value.line == 13 and repr(value) in str(exc.value)
    if missing:
        d = load_arff(p, n_labels=3, allow_missing=True)
        assert np.isnan(d.X[1, 1]) and d.X[0, 1] == 2
    else:
        with pytest.raises(DataFormatError, match="infinite"):
            load_arff(p, n_labels=3, allow_missing=True)


def test_missing_nominal_feature_and_missing_label(tmp_path):
    p = write(tmp_path, "n.arff", DENSE.split("@data")[0] + "@data\n1,2,?,1,0,1\n")
    with pytest.raises(DataFormatError, match="missing value '\\?' of nominal attribute 'colour'"):
        load_arff(p, n_labels=3)
    assert np.isnan(load_arff(p, n_labels=3, allow_missing=True).X[0, 2])
    p = write(tmp_path, "l.arff", DENSE.split("@data")[0] + "@data\n1,2,red,1,0,?\n")
    with pytest.raises(DataFormatError, match="label 'L3' has value missing"):
        load_arff(p, n_labels=3, allow_missing=True)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.arff"
    p.write_bytes(b"\xef\xbb\xbf" + DENSE.replace("?", "0").encode())
    d = load_arff(p, n_labels=3)
    assert d.relation == "toy" and d.X.shape == (3, 3)


def test_identifier_feature_warns(tmp_path):
    n = 25
    ids = [f"P{i:04d}" for i in range(n)]
    header = ("@relation genbase-like\n@attribute protein {" + ",".join(ids) + "}\n@attribute counter numeric\n"
              "@attribute x numeric\n@attribute L {0,1}\n@data\n")
    rng = np.random.default_rng(1)
    rows = "".join(f"{ids[i]},{100 + i},{rng.normal():.6f},{i % 2}\n" for i in rng.permutation(n))
    with pytest.warns(UserWarning, match=r"'protein', 'counter' take a different value in every row"):
        d = load_arff(write(tmp_path, "g.arff", header + rows), n_labels=1)
    assert d.feature_names == ["protein", "counter", "x"]  # kept, only warned about
    few = header + "".join(rows.splitlines(keepends=True)[:IDENTIFIER_MIN_ROWS - 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # too few rows to tell; a distinct real value per row is normal
        load_arff(write(tmp_path, "few.arff", few), n_labels=1)


def test_identifier_columns_dense_and_sparse_agree():
    from mlbs.data.arff import identifier_columns

    n = 30
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.permutation(n) + 5,            # a row counter (shuffled)
                         rng.normal(size=n),                 # distinct reals: a measurement
                         rng.integers(0, 2, n),              # binary
                         rng.permutation(n) * 2,             # distinct integers with gaps: not a counter
                         rng.permutation(n)])                # codes of a nominal attribute, one per row
    nominal = np.array([False, False, False, False, True])
    assert identifier_columns(X, nominal).tolist() == [0, 4]
    assert identifier_columns(sp.csr_matrix(X), nominal).tolist() == [0, 4]  # column 4 holds one zero
    assert identifier_columns(X[: IDENTIFIER_MIN_ROWS - 1], nominal).tolist() == []
