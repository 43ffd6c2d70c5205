"""Iterative stratification, validation splits and preprocessing."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.data.preprocess import MinMaxScaler, frequent_labels, nonempty_rows, preprocess, top_features_by_sum
from mlbs.data.splits import iterative_stratification, stratified_kfold, validation_split


def label_deviation(Y, folds, k):
    """Mean over folds and labels of |positive share in fold - share in the whole data|."""
    Y = sp.csr_matrix(Y)
    whole = np.asarray(Y.mean(axis=0)).ravel()
    return np.mean([np.abs(np.asarray(Y[folds == j].mean(axis=0)).ravel() - whole) for j in range(k)])


def test_partition_and_sizes():
    rng = np.random.default_rng(0)
    Y = (rng.random((503, 9)) < np.linspace(0.02, 0.4, 9)).astype(int)
    folds = iterative_stratification(Y, 5, seed=1)
    assert folds.shape == (503,) and set(folds.tolist()) == set(range(5))
    splits = stratified_kfold(Y, 5, seed=1)
    all_test = np.sort(np.concatenate([te for _, te in splits]))
    np.testing.assert_array_equal(all_test, np.arange(503))
    for tr, te in splits:
        assert np.intersect1d(tr, te).size == 0 and tr.size + te.size == 503
        assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)


def test_seeded_and_deterministic():
    rng = np.random.default_rng(1)
    Y = (rng.random((300, 6)) < 0.2).astype(int)
    a = iterative_stratification(Y, 5, seed=7)
    assert np.array_equal(a, iterative_stratification(Y, 5, seed=7))
    assert not np.array_equal(a, iterative_stratification(Y, 5, seed=8))


def test_rare_label_spread_over_folds():
    Y = np.zeros((100, 2), dtype=int)
    Y[:5, 0] = 1   # 5 positives, 5 folds: one per fold
    Y[:, 1] = np.arange(100) % 2
    folds = iterative_stratification(Y, 5, seed=0)
    assert sorted(folds[:5].tolist()) == [0, 1, 2, 3, 4]


def test_empty_rows_balance_fold_sizes():
    Y = np.zeros((50, 3), dtype=int)
    Y[:10, 0] = 1
    folds = iterative_stratification(Y, 5, seed=0)
    assert np.bincount(folds).tolist() == [10] * 5


def test_proportions():
    rng = np.random.default_rng(2)
    Y = (rng.random((1000, 5)) < 0.3).astype(int)
    part = iterative_stratification(Y, proportions=[0.9, 0.1], seed=0)
    assert abs((part == 1).sum() - 100) <= 5
    with pytest.raises(ValueError):
        iterative_stratification(Y, proportions=[0.5, 0.6])


@pytest.mark.parametrize("name", ["yeast", "scene", "enron", "Corel5k", "bibtex", "tmc2007-500", "delicious"])
def test_closer_to_whole_data_than_random_kfold(name):
    from test_data_realdata import real_dataset

    Y = real_dataset(name).Y
    n, k = Y.shape[0], 5
    strat = label_deviation(Y, iterative_stratification(Y, k, seed=0), k)
    rng = np.random.default_rng(0)
    random_dev = np.mean([label_deviation(Y, rng.permutation(np.arange(n) % k), k) for _ in range(3)])
    assert strat < random_dev, (strat, random_dev)


def test_zhou2024_validation_split_matches_sklearn():
    from sklearn.model_selection import train_test_split

    held = np.arange(1000, 1101)  # odd size
    train = np.arange(10)
    tr, val, test = validation_split("zhou2024", train, held)
    sk_val, sk_test = train_test_split(held, test_size=0.5, random_state=42)
    np.testing.assert_array_equal(val, sk_val)
    np.testing.assert_array_equal(test, sk_test)
    assert val.size == 50 and test.size == 51 and tr is not None


def test_d2ace_validation_split_matches_torch():
    import torch
    from torch.utils.data import random_split

    train = np.arange(500, 747)
    held = np.arange(5)
    tr, val, test = validation_split("d2ace", train, held)
    n_val = int(np.floor(0.1 * train.size))
    a, b = random_split(train.tolist(), [train.size - n_val, n_val], generator=torch.Generator().manual_seed(55))
    np.testing.assert_array_equal(tr, [train[i] for i in a.indices])
    np.testing.assert_array_equal(val, [train[i] for i in b.indices])
    np.testing.assert_array_equal(test, held)


def test_stratified_validation_split():
    rng = np.random.default_rng(3)
    Y = (rng.random((600, 8)) < np.linspace(0.03, 0.4, 8)).astype(int)
    train, held = np.arange(0, 500), np.arange(500, 600)
    tr, val, test = validation_split("stratified", train, held, Y, seed=0)
    assert np.union1d(tr, val).tolist() == train.tolist() and np.intersect1d(tr, val).size == 0
    assert abs(val.size - 50) <= 5 and np.array_equal(test, held)
    with pytest.raises(ValueError, match="needs Y"):
        validation_split("stratified", train, held)
    with pytest.raises(ValueError, match="unknown"):
        validation_split("other", train, held)


# --------------------------------------------------------------------------- preprocessing
def test_top_features_ties_and_order():
    X = np.array([[1, 5, 5, 0, 2], [1, 0, 0, 0, 2]], dtype=float)  # sums 2, 5, 5, 0, 4
    np.testing.assert_array_equal(top_features_by_sum(X, 0.4), [1, 2])
    np.testing.assert_array_equal(top_features_by_sum(X, 0.2), [1])  # tie 1 vs 2 -> lower index
    np.testing.assert_array_equal(top_features_by_sum(sp.csr_matrix(X), 0.6), [1, 2, 4])
    np.testing.assert_array_equal(top_features_by_sum(X, 1.0), np.arange(5))


def test_label_filter_and_empty_rows():
    Y = np.zeros((30, 3), dtype=int)
    Y[:21, 0] = 1
    Y[:20, 1] = 1
    Y[25, 2] = 1
    np.testing.assert_array_equal(frequent_labels(Y, 20), [0])
    np.testing.assert_array_equal(nonempty_rows(Y[:, [0]]), np.arange(21))


def test_minmax_scaler_dense_and_sparse():
    X = np.array([[0, 1, 3], [2, 1, 5], [4, 1, 4]], dtype=np.float32)
    s = MinMaxScaler().fit(X)
    np.testing.assert_allclose(s.transform(X), [[0, 0, 0], [0.5, 0, 1], [1, 0, 0.5]])
    np.testing.assert_allclose(s.transform(np.array([[8, 7, 1]], dtype=np.float32)), [[2, 0, -1]])  # no clipping
    Xs = sp.csr_matrix(np.array([[0, 2], [4, 0], [2, 1]], dtype=np.float32))
    out = MinMaxScaler().fit_transform(Xs)
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), [[0, 1], [1, 0], [0.5, 0.5]])
    neg = sp.csr_matrix(np.array([[-1, 0], [1, 2]], dtype=np.float32))
    dense = MinMaxScaler().fit_transform(neg)
    assert not sp.issparse(dense)
    np.testing.assert_allclose(dense, [[0, 0], [1, 1]])


def test_preprocess_records_steps_on_real_rcv1():
    from test_data_realdata import real_dataset

    data = real_dataset("rcv1subset1")
    out = preprocess(data, feature_fraction=0.02, drop_empty_rows=False, scale_fit="all")
    rec = out.info["preprocess"]
    assert (out.n, out.d, out.q) == (6000, 944, 80)  # the MULAN copy after the papers' preprocessing
    assert round(out.cardinality, 3) == 2.840
    assert rec["kept_features"].size == 944 and rec["kept_labels"].size == 80 and rec["n_empty_rows"] == 0
    X = out.X.toarray() if sp.issparse(out.X) else out.X
    assert X.min() >= 0 and X.max() <= 1 and np.isclose(X.max(axis=0), 1).sum() > 900


def test_preprocess_drop_empty_rows_on_real_birds():
    from test_data_realdata import real_dataset

    data = real_dataset("birds")
    out = preprocess(data, drop_empty_rows=True, scale_fit=None)
    assert out.q == 11 and out.n == 645 - 323  # 323 rows have no label left after the filter
    assert round(out.cardinality, 3) == 1.724
