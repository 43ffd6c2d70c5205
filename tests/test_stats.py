"""Label statistics against dense loop references and the recorded statistics of the registered datasets."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.statistics.labels import (cardinality, cooccurrence_matrix, density, irlbl, label_counts, label_stats, mean_ir,
                        minority_labels)


def reference_A(Y: np.ndarray) -> np.ndarray:
    """Appendix matrix A by explicit loops."""
    n, q = Y.shape
    A = np.zeros((q, q))
    for j in range(q):
        for k in range(q):
            nj, nk = Y[:, j].sum(), Y[:, k].sum()
            if j != k and nj > 0 and nk > 0:
                c = sum(1 for i in range(n) if Y[i, j] and Y[i, k])
                A[j, k] = 0.5 * (c / nj + c / nk)
    return A


def reference_irlbl(Y: np.ndarray, eps: float = 0.0) -> np.ndarray:
    counts = [sum(Y[:, j]) for j in range(Y.shape[1])]
    top = max(counts)
    if eps:
        return np.array([top / (c + eps) for c in counts])
    return np.array([top / c if c else np.nan for c in counts])


@pytest.fixture
def Y():
    rng = np.random.default_rng(11)
    Y = (rng.random((200, 15)) < np.linspace(0.01, 0.5, 15)).astype(np.int8)
    Y[:, 3] = 0  # a label without positives
    Y[7] = 0     # an empty row
    return Y


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
def test_basic_statistics(Y, fmt):
    M = Y if fmt == "dense" else sp.csr_matrix(Y) if fmt == "csr" else sp.csc_matrix(Y)
    np.testing.assert_array_equal(label_counts(M), Y.sum(0))
    assert cardinality(M) == pytest.approx(Y.sum() / 200)
    assert density(M) == pytest.approx(Y.sum() / 200 / 15)
    np.testing.assert_allclose(irlbl(M), reference_irlbl(Y), equal_nan=True)
    ref = reference_irlbl(Y)
    assert mean_ir(M) == pytest.approx(np.nanmean(ref))
    np.testing.assert_array_equal(minority_labels(M), [j for j in range(15) if ref[j] > np.nanmean(ref)])
    assert 3 not in minority_labels(M)


def test_irlbl_code_compat_eps(Y):
    np.testing.assert_allclose(irlbl(Y, eps=1e-6), reference_irlbl(Y, 1e-6))
    # the label without positives gets an enormous IRLbl and inflates MeanIR (the code of Zhou et al. 2024)
    assert mean_ir(Y, eps=1e-6) > 1e5 and 3 in minority_labels(Y, eps=1e-6)


def test_cooccurrence_matches_reference(Y):
    A = cooccurrence_matrix(sp.csr_matrix(Y))
    np.testing.assert_allclose(A, reference_A(Y))
    np.testing.assert_allclose(A, A.T)
    assert np.all(np.diag(A) == 0) and np.all(A[3] == 0)
    As = cooccurrence_matrix(Y, dense=False)
    assert sp.issparse(As)
    np.testing.assert_allclose(As.toarray(), A)


def test_cooccurrence_large_q_sparse():
    q, n = 10_000, 5_000
    rng = np.random.default_rng(12)
    rows = np.repeat(np.arange(n), 3)
    cols = rng.integers(0, q, rows.size)
    Y = sp.csr_matrix((np.ones(rows.size, dtype=np.uint8), (rows, cols)), shape=(n, q))
    Y.data[:] = 1  # duplicates summed -> back to binary
    A = cooccurrence_matrix(Y)
    assert sp.issparse(A) and A.shape == (q, q)
    assert A.nnz <= 6 * n and abs(A - A.T).max() < 1e-12
    # spot check a co-occurring pair against the definition
    j, k = A.tocoo().row[0], A.tocoo().col[0]
    Yd = Y.tocsc()
    yj, yk = Yd[:, j].toarray().ravel() > 0, Yd[:, k].toarray().ravel() > 0
    c = np.sum(yj & yk)
    assert A[j, k] == pytest.approx(0.5 * (c / yj.sum() + c / yk.sum()))


def test_uint8_labels_do_not_overflow():
    Y = sp.csr_matrix(np.ones((300, 2), dtype=np.uint8))
    A = cooccurrence_matrix(Y)
    assert A[0, 1] == 1.0 and label_counts(Y).tolist() == [300, 300]


def test_label_stats_summary(Y):
    s = label_stats(Y)
    assert (s.n, s.q, s.n_empty_rows, s.n_labels_without_positives) == (200, 15, int((Y.sum(1) == 0).sum()), 1)


# Recorded per dataset: q after the <= 20 positives label filter, then Card, MeanIR and the number of
# minority labels after the filter
PROTOCOL_2_3 = {
    "emotions": (6, 1.868, 1.48, 4), "scene": (6, 1.074, 1.25, 2), "yeast": (14, 4.237, 7.20, 2),
    "birds": (11, 0.860, 2.40, 5), "enron": (33, 3.258, 16.69, 12), "cal500": (119, 24.859, 7.68, 45),
    "Corel5k": (149, 3.158, 23.40, 66), "bibtex": (159, 2.402, 12.50, 85), "LLOG-F": (22, 0.911, 3.92, 8),
    "rcv1subset1": (80, 2.840, 16.84, 29), "rcv1subset2": (81, 2.591, 18.24, 33),
    "rcv1subset3": (82, 2.579, 18.87, 32), "yahoo-Arts1": (24, 1.653, 13.29, 8),
    "yahoo-Business1": (25, 1.595, 105.52, 7), "tmc2007-500": (22, 2.158, 15.16, 9),
}


@pytest.mark.parametrize("name", sorted(PROTOCOL_2_3))
def test_statistics_after_label_filter_match_protocol(name):
    from test_data_realdata import real_dataset

    from mlbs.data.preprocess import frequent_labels

    Y = real_dataset(name).Y
    Yf = Y[:, frequent_labels(Y, 20)]
    q, card, mir, n_min = PROTOCOL_2_3[name]
    s = label_stats(Yf)
    assert s.q == q
    assert round(s.card, 3) == pytest.approx(card, abs=1e-9)
    assert round(s.mean_ir, 2) == pytest.approx(mir, abs=1e-9)
    assert s.minority.size == n_min


def test_published_meanir_of_raw_files():
    """Zhou et al. 2024, Table 1: raw MeanIR of Corel5k 189.57 and cal500 20.58."""
    from test_data_realdata import real_dataset

    assert round(mean_ir(real_dataset("Corel5k").Y), 2) == 189.57
    assert round(mean_ir(real_dataset("cal500").Y), 2) == 20.58
