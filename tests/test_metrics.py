"""Metrics: agreement with scikit-learn on random inputs, hand-made degenerate cases, pair-loop references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from mlbs import metrics as M


def random_case(seed, n=60, q=7, ties=False, empty_rows=True):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.3).astype(int)
    Y[:, 0] = 1
    Y[0, 0] = 0  # keep every label two-class for sklearn
    Y[:, 1] = 0
    Y[1, 1] = 1
    if empty_rows:
        Y[2] = 0
    F = rng.random((n, q))
    if ties:
        F = np.round(F * 4) / 4
    return Y, F


SEEDS = range(6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_agreement_with_sklearn(seed, ties):
    Y, F = random_case(seed, ties=ties)
    P = M.binarize(F)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert M.macro_f1(Y, P) == pytest.approx(skm.f1_score(Y, P, average="macro", zero_division=0))
        assert M.micro_f1(Y, P) == pytest.approx(skm.f1_score(Y, P, average="micro", zero_division=0))
        assert M.hamming_loss(Y, P) == pytest.approx(skm.hamming_loss(Y, P))
        assert M.subset_accuracy(Y, P) == pytest.approx(skm.accuracy_score(Y, P))
        assert M.macro_auc(Y, F, "sklearn", "raise") == pytest.approx(skm.roc_auc_score(Y, F, average="macro"))
        assert M.macro_auc(Y, F, "d2ace_test") == pytest.approx(skm.roc_auc_score(Y, F, average="macro"))
        assert M.micro_auc(Y, F) == pytest.approx(skm.roc_auc_score(Y, F, average="micro"))
        assert M.ranking_loss(Y, F) == pytest.approx(skm.label_ranking_loss(Y, F))
        assert M.coverage(Y, F) == pytest.approx(skm.coverage_error(Y, F))
        assert M.average_precision(Y, F) == pytest.approx(skm.label_ranking_average_precision_score(Y, F))
        ap_rows = [skm.average_precision_score(Y[i], F[i]) if Y[i].any() else 0.0 for i in range(len(Y))]
        assert M.average_precision(Y, F, "samples") == pytest.approx(np.mean(ap_rows))


def test_sklearn_samples_ap_without_empty_rows():
    Y, F = random_case(3, empty_rows=False)
    Y[Y.sum(1) == 0, 2] = 1
    assert M.average_precision(Y, F, "samples") == pytest.approx(skm.average_precision_score(Y, F, average="samples"))


def pairs_reference(Y, F, tie_error=lambda j, k: True):
    """Ranking loss by enumerating all (relevant, irrelevant) pairs."""
    total = 0.0
    for y, f in zip(Y, F):
        pos, neg = np.flatnonzero(y), np.flatnonzero(y == 0)
        if len(pos) == 0 or len(neg) == 0:
            continue
        bad = sum(1 for j in pos for k in neg if f[k] > f[j] or (f[k] == f[j] and tie_error(j, k)))
        total += bad / (len(pos) * len(neg))
    return total / len(Y)


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_loss_conventions_against_pair_loops(seed):
    Y, F = random_case(seed, ties=True)
    assert M.ranking_loss(Y, F, "cqupt") == pytest.approx(pairs_reference(Y, F))
    assert M.ranking_loss(Y, F, "mulan") == pytest.approx(pairs_reference(Y, F, lambda j, k: k > j))


@pytest.mark.parametrize("seed", SEEDS)
def test_cqupt_auc_against_pair_loop(seed):
    Y, F = random_case(seed, ties=True)
    Y[:, 3] = 0  # an invalid label: contributes 0, counts in q
    per = []
    for j in range(Y.shape[1]):
        pos, neg = F[Y[:, j] == 1, j], F[Y[:, j] == 0, j]
        per.append(0.0 if len(pos) == 0 or len(neg) == 0 else
                   sum(1 for a in pos for b in neg if b <= a) / (len(pos) * len(neg)))
    assert M.macro_auc(Y, F, "cqupt") == pytest.approx(np.mean(per))


def test_auc_conventions_on_degenerate_labels():
    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    F = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.5], [0.5, 0.2, 0.5], [0.5, 0.4, 0.5]])
    # label 0: pos {0.9, 0.5}, neg {0.2, 0.5}; ties half -> (2 + 1 + 0.5)/4 ; ties full -> 4/4
    r = M.macro_auc(Y, F, "cqupt", return_details=True)
    assert r.value == pytest.approx(1.0 / 3) and r.n_valid == 1 and r.invalid_labels.tolist() == [1, 2]
    assert M.macro_auc(Y, F, "d2ace_test") == pytest.approx(0.875)
    assert M.macro_auc(Y, F, "sklearn", "skip") == pytest.approx(0.875)
    assert np.isnan(M.macro_auc(Y, F, "sklearn", "nan"))
    assert np.isnan(M.macro_auc(Y, F, "mulan"))
    with pytest.raises(ValueError, match="single class"):
        M.macro_auc(Y, F, "sklearn", "raise")
    assert np.isnan(M.macro_auc(np.zeros((3, 2)), np.ones((3, 2)), "d2ace_test"))
    assert np.isnan(M.micro_auc(np.zeros((3, 2)), np.ones((3, 2))))


def test_macro_f1_conventions():
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    P = np.array([[1, 0], [0, 0], [0, 0]])  # label 1 absent and never predicted
    assert M.macro_f1(Y, P, "cqupt") == pytest.approx((2 / 3 + 0.0) / 2)  # label 0: TP 1, FN 1
    assert M.macro_f1(Y, P, "mulan") == pytest.approx((2 / 3 + 1.0) / 2)
    assert M.micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_one_error_conventions_and_empty_rows():
    Y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    F = np.array([[0.7, 0.7, 0.1], [0.2, 0.2, 0.9], [0.9, 0.1, 0.1]])
    # row 0 ties between labels 0 and 1: cqupt picks 0 (relevant), mulan picks 1 (irrelevant)
    # row 2 has no label: always an error
    assert M.one_error(Y, F, "cqupt") == pytest.approx(1 / 3)
    assert M.one_error(Y, F, "mulan") == pytest.approx(2 / 3)


def test_ranking_metrics_on_empty_and_full_rows():
    Y = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    F = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.5, 0.6]])
    assert M.ranking_loss(Y, F) == pytest.approx(1 / 3)            # rows 0, 1 give 0 but count
    assert M.average_precision(Y, F) == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert M.coverage(Y, F) == pytest.approx((0 + 3 + 3) / 3)
    assert M.coverage(Y, F, "mulan") == pytest.approx((0 + 2 + 2) / 3)


def test_coverage_mulan_tie_rule():
    Y = np.array([[1, 0, 0]])
    F = np.array([[0.5, 0.5, 0.5]])
    # strict ranking, equal scores -> higher index first: order 2, 1, 0 -> label 0 at rank 3
    assert M.coverage(Y, F, "mulan") == 2
    Y2 = np.array([[0, 0, 1]])
    assert M.coverage(Y2, F, "mulan") == 0
    assert M.coverage(Y2, F, "sklearn") == 3


def test_threshold_is_strict():
    np.testing.assert_array_equal(M.binarize(np.array([[0.5, 0.5000001]])), [[False, True]])


def test_input_errors():
    with pytest.raises(ValueError, match="shape"):
        M.ranking_loss(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        M.macro_auc(np.ones((2, 2)), np.array([[np.nan, 0], [0, 0]]))
    with pytest.raises(ValueError, match="convention"):
        M.one_error(np.ones((2, 2)), np.ones((2, 2)), "weird")


def test_sparse_inputs_accepted():
    import scipy.sparse as sp

    Y, F = random_case(0)
    assert M.ranking_loss(sp.csr_matrix(Y), F) == pytest.approx(M.ranking_loss(Y, F))
    assert M.macro_f1(sp.csr_matrix(Y), sp.csr_matrix(M.binarize(F))) == pytest.approx(M.macro_f1(Y, M.binarize(F)))
