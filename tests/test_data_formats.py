"""Own-data readers (npz, CSV, LibSVM/svmlight, ARFF through load_path) on files the tests write."""
from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.data import DataFormatError
from mlbs.data.arrays import from_arrays
from mlbs.data.files import dataset_name, detect_format, load_path

RNG = np.random.default_rng(0)
X = np.round(RNG.normal(size=(30, 4)), 4)
Y = (RNG.random((30, 3)) < 0.4).astype(np.uint8)
Y[0] = 0  # one row without labels


def same(data, X_ref=X, Y_ref=Y):
    Xd = data.X.toarray() if sp.issparse(data.X) else data.X
    np.testing.assert_allclose(Xd, X_ref, rtol=1e-6)
    assert data.X.dtype == np.float32 and data.Y.dtype == np.uint8 and data.Y.format == "csr"
    np.testing.assert_array_equal(data.Y.toarray(), Y_ref)


def csv_text(sep=",", header=("f0", "f1", "f2", "f3", "y_a", "y_b", "y_c")):
    rows = [sep.join(header)] + [sep.join([*(repr(float(v)) for v in x), *(str(int(v)) for v in y)])
                                 for x, y in zip(X, Y)]
    return "\n".join(rows) + "\n"


def svm_text(header=True):
    lines = [f"{len(X)} {X.shape[1]} {Y.shape[1]}"] if header else []
    for x, y in zip(X, Y):
        labels = ",".join(str(j) for j in np.flatnonzero(y))
        feats = " ".join(f"{i}:{float(x[i])!r}" for i in range(X.shape[1]) if x[i] != 0)
        lines.append(f"{labels} {feats}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- npz
@pytest.mark.parametrize("x_sparse, y_sparse", [(False, False), (True, False), (False, True), (True, True)])
def test_npz_dense_or_csr(tmp_path, x_sparse, y_sparse):
    arrays = {}
    for name, M, sparse in (("X", X, x_sparse), ("Y", Y, y_sparse)):
        if sparse:
            S = sp.csr_matrix(M)
            arrays.update({f"{name}_data": S.data, f"{name}_indices": S.indices, f"{name}_indptr": S.indptr,
                           f"{name}_shape": np.array(S.shape)})
        else:
            arrays[name] = M
    np.savez(tmp_path / "d.npz", **arrays, label_names=np.array(["a", "b", "c"]))
    data = load_path(tmp_path / "d.npz")
    same(data)
    assert sp.issparse(data.X) == x_sparse
    assert data.label_names == ["a", "b", "c"] and data.feature_names == ["x0", "x1", "x2", "x3"]
    assert data.info["format"] == "npz" and data.info["name"].startswith("d-")


@pytest.mark.parametrize("arrays, pattern", [
    ({"X": X}, "no 'Y'"),
    ({"X": X, "Y": Y, "Z": Y}, r"unexpected key\(s\) \['Z'\]"),
    ({"X": X, "Y": Y[:-1]}, "X has 30 rows but Y has 29"),
    ({"X": X, "Y": Y * 2}, r"label Y\[\d+, \d+\] = 2"),
    ({"X": np.where(np.arange(4) == 2, np.nan, X), "Y": Y}, r"X\[0, 2\] is missing"),
    ({"X": np.where(np.arange(4) == 1, np.inf, X), "Y": Y}, r"X\[0, 1\] = inf is infinite"),
    ({"X": X, "Y": Y, "label_names": np.array(["a", "b", "c"], dtype=object)}, "unicode string array"),
    ({"X": X, "Y_data": np.ones(3), "Y_indices": np.array([0, 1, 2])}, "lacks"),
])
def test_npz_bad_archives(tmp_path, arrays, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_path(path)
    assert exc.value.path == str(path)


def test_npz_that_is_not_an_archive(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"plain text")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        load_path(tmp_path / "x.npz")


def test_from_arrays_names_the_offending_value():
    with pytest.raises(ValueError, match=r"label Y\[2, 1\] = 0.5"):
        from_arrays(X[:3], np.array([[0, 1], [1, 0], [0, 0.5]]))
    with pytest.raises(ValueError, match="two-dimensional"):
        from_arrays(X[:, 0], Y)
    with pytest.raises(ValueError, match="label name 'a' is given twice"):
        from_arrays(X, Y, label_names=["a", "a", "b"])
    d = from_arrays(X, Y.astype(bool))
    same(d)


# ----------------------------------------------------------------------------- csv
@pytest.mark.parametrize("how", [{"label_names": ["y_a", "y_b", "y_c"]}, {"label_prefix": "y_"},
                                 {"label_count": 3}])
def test_csv_label_columns(tmp_path, how):
    path = tmp_path / "d.csv"
    path.write_text(csv_text())
    data = load_path(path, **how)
    same(data)
    assert data.feature_names == ["f0", "f1", "f2", "f3"] and data.label_names == ["y_a", "y_b", "y_c"]


def test_csv_labels_in_the_middle_tsv_gzip_and_quotes(tmp_path):
    header = ("y_a", "f0", "f1", "y_b", "f2", "f3", "y_c")
    rows = ['"y_a"\t"f0"\tf1\ty_b\tf2\tf3\ty_c'] + [
        "\t".join([str(y[0]), *(repr(float(v)) for v in x[:2]), str(y[1]), *(repr(float(v)) for v in x[2:]), str(y[2])])
        for x, y in zip(X, Y)]
    path = tmp_path / "d.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    data = load_path(path, label_names=["y_a", "y_b", "y_c"])
    same(data)
    assert data.feature_names == [h for h in header if h.startswith("f")]


def test_csv_label_choice_is_required_and_unique(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(csv_text())
    with pytest.raises(ValueError, match="exactly one of label_names, label_prefix or label_count"):
        load_path(path)
    with pytest.raises(ValueError, match="exactly one"):
        load_path(path, label_prefix="y", label_count=3)
    with pytest.raises(DataFormatError, match=r"label column\(s\) \['y_z'\] not in the header") as exc:
        load_path(path, label_names=["y_a", "y_z"])
    assert exc.value.line == 1


@pytest.mark.parametrize("row, line, pattern", [
    ("1,2,3", 3, "expected 7 values"),
    ("1,2,abc,4,0,1,0", 3, "value 'abc' of column 'f2' is not a number"),
    ("1,2,3,4,0,2,0", 3, "label column 'y_b' has value '2'"),
    ("1,,3,4,0,1,0", 3, "missing value '' in column 'f1'"),
    ("1,nan,3,4,0,1,0", 3, "missing value 'nan' in column 'f1'"),
    ("1,2,1e39,4,0,1,0", 3, "'1e39' in column 'f2' is infinite or beyond the float32 range"),
    ('1,"2,3,4,0,1,0', 3, "malformed CSV|expected 7 values"),
])
def test_csv_bad_rows_name_line_and_column(tmp_path, row, line, pattern):
    path = tmp_path / "bad.csv"
    path.write_text("f0,f1,f2,f3,y_a,y_b,y_c\n0,1,2,3,1,0,0\n" + row + "\n")
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_path(path, label_prefix="y_")
    assert exc.value.line == line and f"bad.csv:{line}:" in str(exc.value)


def test_csv_missing_values_opt_in_and_bad_header(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("a,b,y\n1,,1\n2,3,0\n")
    d = load_path(path, label_names=["y"], allow_missing=True)
    assert np.isnan(d.X[0, 1]) and d.X[1, 1] == 3
    (tmp_path / "h.csv").write_text("a,a,y\n1,2,1\n")
    with pytest.raises(DataFormatError, match="column name 'a' appears twice"):
        load_path(tmp_path / "h.csv", label_names=["y"])


# ----------------------------------------------------------------------------- svmlight
@pytest.mark.parametrize("header", [True, False])
def test_svmlight_multilabel(tmp_path, header):
    path = tmp_path / "train.txt"
    path.write_text(svm_text(header))
    data = load_path(path, zero_based=True) if not header else load_path(path)
    if header:
        same(data)
    else:  # without the header q is the largest label id + 1, d the largest index + 1
        same(data, X[:, : data.d], Y[:, : data.q])
    assert sp.issparse(data.X) and data.info["format"] == "svmlight"


@pytest.mark.parametrize("line, pattern", [
    ("1,x 0:1.0", "labels '1,x' are not comma-separated non-negative integers"),
    ("1 0:1.0 2", "feature '2' is not 'index:value'"),
    ("1 0:abc", "feature value 'abc' is not a number"),
    ("1 2:1.0 1:1.0", "feature index 1 after 2"),
    ("1 0:nan", "feature 0 is missing"),
    ("1 0:inf", "feature 0 is infinite"),
    ("7 0:1.0", "label id 7 but the header announces 3 labels"),
])
def test_svmlight_bad_lines(tmp_path, line, pattern):
    path = tmp_path / "bad.svm"
    path.write_text("3 4 3\n0,1 0:1.5 3:2\n# a comment\n" + line + "\n 1:1\n")
    with pytest.raises(DataFormatError, match=pattern) as exc:
        load_path(path)
    assert exc.value.line == 4


def test_svmlight_header_disagrees(tmp_path):
    path = tmp_path / "h.svm"
    path.write_text("5 4 3\n0 0:1\n1 1:1\n")
    with pytest.raises(DataFormatError, match="announces 5 instances, the file holds 2") as exc:
        load_path(path)
    assert exc.value.line == 1


# ----------------------------------------------------------------------------- load_path and names
def test_arff_through_load_path_with_label_count_or_names(tmp_path):
    text = "@relation r\n@attribute f numeric\n@attribute g numeric\n@attribute A {0,1}\n@attribute B {0,1}\n@data\n"
    text += "".join(f"{float(x[0])!r},{float(x[1])!r},{y[0]},{y[1]}\n" for x, y in zip(X, Y))
    path = tmp_path / "own.arff"
    path.write_text(text)
    a = load_path(path, label_count=2)
    b = load_path(path, label_names=["A", "B"])
    same(a, X[:, :2], Y[:, :2])
    assert (a.Y != b.Y).nnz == 0 and a.info["name"] != b.info["name"]
    with pytest.raises(ValueError, match=r"option\(s\) \['label_prefix'\] do not apply to arff"):
        load_path(path, label_prefix="A")


def test_format_detection_and_unknown_endings(tmp_path):
    assert [detect_format(n) for n in ("a.arff.xz", "b.NPZ", "c.tsv.gz", "train.txt", "d.libsvm")] == \
        ["arff", "npz", "csv", "svmlight", "svmlight"]
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_path(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_path(tmp_path / "missing.csv", label_count=1)


def test_dataset_name_is_stable_and_follows_content_and_options(tmp_path):
    path = tmp_path / "my data.csv"
    path.write_text(csv_text())
    name = dataset_name(path, label_prefix="y_")
    assert name.startswith("my_data-") and len(name) == len("my_data-") + 8
    assert dataset_name(path, label_prefix="y_", allow_missing=False) == name  # a default changes nothing
    assert dataset_name(path, label_count=2) != name
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "my data.csv").write_text(csv_text())
    assert dataset_name(copy / "my data.csv", label_prefix="y_") == name  # content, not location
    path.write_text(csv_text().replace("\n1", "\n2", 1))
    assert dataset_name(path, label_prefix="y_") != name


def test_no_warning_on_clean_own_files(tmp_path):
    (tmp_path / "d.csv").write_text(csv_text())
    (tmp_path / "d.svm").write_text(svm_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_path(tmp_path / "d.csv", label_prefix="y_")
        load_path(tmp_path / "d.svm")


def test_csv_row_counter_column_warns(tmp_path):
    path = tmp_path / "id.csv"
    path.write_text("id,f,y\n" + "".join(f"{i + 7},{float(v)!r},{i % 2}\n" for i, v in enumerate(X[:, 0])))
    with pytest.warns(UserWarning, match=r"\['id'\] count the rows"):
        load_path(path, label_names=["y"])


def test_svmlight_one_based_file_with_header(tmp_path):
    path = tmp_path / "one.svm"
    path.write_text("2 3 2\n0 1:1 3:2\n1 2:1\n")
    with pytest.raises(DataFormatError, match="contains 4 features.*0-based.*zero_based=False"):
        load_path(path)
    data = load_path(path, zero_based=False)
    np.testing.assert_array_equal(data.X.toarray(), [[1, 0, 2], [0, 1, 0]])
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1]])
