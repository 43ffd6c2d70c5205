"""Metrics: defaults equal scikit-learn on random and degenerate inputs; the papers' conventions
against pair loops and hand-made cases; the sorted-row fast paths against slow references."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mlbs import metrics as M


# --------------------------------------------------------------------------- inputs
def random_case(seed, n=60, q=7, ties=False, empty_rows=True, full_rows=False):
    """Random (Y, F) whose labels all have both classes (scikit-learn's macro AUC is defined)."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.3).astype(int)
    Y[:, 0] = 1
    Y[0, 0] = 0
    Y[:, 1] = 0
    Y[1, 1] = 1
    if empty_rows:
        Y[2] = 0
    F = rng.random((n, q))
    if ties:
        F = np.round(F * 4) / 4
    if full_rows:
        Y[3] = 1
        F[4] = 0.5       # a constant row
    return Y, F


def degenerate_case(seed, n=40, q=8):
    """Random (Y, F) with two single-class labels, a constant column and ties everywhere."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.35).astype(int)
    Y[:, 0] = 0          # label without positives
    Y[:, 1] = 1          # label without negatives
    Y[:, 2] = 0
    Y[:3, 2] = 1         # a valid label
    F = np.round(rng.random((n, q)) * 5) / 5
    F[:, 3] = 0.25       # constant predictions for label 3
    return Y, F


def sklearn_quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def valid_label_aucs(Y, F):
    """scikit-learn's ROC AUC of each label with both classes."""
    return [skm.roc_auc_score(Y[:, j], F[:, j]) for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]


SEEDS = range(6)


# --------------------------------------------------------------------------- defaults = scikit-learn
def assert_defaults_equal_sklearn(Y, F):
    P = M.binarize(F)
    assert M.macro_f1(Y, P) == pytest.approx(sklearn_quiet(skm.f1_score, Y, P, average="macro", zero_division=0))
    assert M.micro_f1(Y, P) == pytest.approx(sklearn_quiet(skm.f1_score, Y, P, average="micro", zero_division=0))
    assert M.hamming_loss(Y, P) == pytest.approx(skm.hamming_loss(Y, P))
    assert M.subset_accuracy(Y, P) == pytest.approx(skm.accuracy_score(Y, P))
    assert M.ranking_loss(Y, F) == pytest.approx(skm.label_ranking_loss(Y, F))
    assert M.coverage(Y, F) == pytest.approx(skm.coverage_error(Y, F))
    assert M.average_precision(Y, F) == pytest.approx(skm.label_ranking_average_precision_score(Y, F))
    assert M.average_precision(Y, F, "samples") == pytest.approx(
        sklearn_quiet(skm.average_precision_score, Y, F, average="samples"))
    if 0 < Y.sum() < Y.size:
        assert M.micro_auc(Y, F) == pytest.approx(skm.roc_auc_score(Y, F, average="micro"))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("full_rows", [False, True])
def test_defaults_equal_sklearn_on_random_inputs(seed, ties, full_rows):
    Y, F = random_case(seed, ties=ties, full_rows=full_rows)
    assert_defaults_equal_sklearn(Y, F)
    assert M.macro_auc(Y, F) == pytest.approx(skm.roc_auc_score(Y, F, average="macro"))
    assert M.macro_auc(Y, F, "d2ace_test") == pytest.approx(skm.roc_auc_score(Y, F, average="macro"))


@pytest.mark.parametrize("seed", SEEDS)
def test_defaults_equal_sklearn_on_degenerate_inputs(seed):
    Y, F = degenerate_case(seed)
    assert_defaults_equal_sklearn(Y, F)
    with pytest.warns(M.UndefinedMetricWarning, match="2 of 8 labels have a single class"):
        assert np.isnan(M.macro_auc(Y, F))   # scikit-learn 1.9's value
    assert np.isnan(sklearn_quiet(skm.roc_auc_score, Y, F, average="macro"))
    with pytest.warns(M.UndefinedMetricWarning, match="2 of 8 labels have a single class"):
        value = M.macro_auc(Y, F, invalid="warn")
    assert value == pytest.approx(np.mean(valid_label_aucs(Y, F)))
    # the per-label values are scikit-learn's, NaN where it has none (it warns and returns NaN)
    details = M.macro_auc(Y, F, invalid="skip", return_details=True)
    sk_per_label = sklearn_quiet(skm.roc_auc_score, Y, F, average=None)
    np.testing.assert_allclose(details.per_label, sk_per_label, equal_nan=True)
    assert details.invalid_labels.tolist() == [0, 1] and details.n_valid == 6


def test_constant_predictions_score_one_half_as_in_sklearn():
    rng = np.random.default_rng(0)
    Y = (rng.random((30, 4)) < 0.4).astype(int)
    Y[0], Y[1] = 1, 0
    F = np.full(Y.shape, 0.3)
    assert M.macro_auc(Y, F) == 0.5 == skm.roc_auc_score(Y, F, average="macro")
    assert M.micro_auc(Y, F) == 0.5 == skm.roc_auc_score(Y, F, average="micro")
    assert M.macro_auc(Y, F, "cqupt") == 1.0   # the papers' code: a tie is a correctly ordered pair


# --------------------------------------------------------------------------- single-class labels
def test_auc_conventions_on_single_class_labels():
    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    F = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.5], [0.5, 0.2, 0.5], [0.5, 0.4, 0.5]])
    # label 0: pos {0.9, 0.5}, neg {0.2, 0.5}; ties half -> (2 + 1 + 0.5)/4 ; ties full -> 4/4
    with pytest.warns(M.UndefinedMetricWarning, match=r"\[1, 2\]"):
        assert np.isnan(M.macro_auc(Y, F))
    with pytest.warns(M.UndefinedMetricWarning, match=r"\[1, 2\]"):
        assert M.macro_auc(Y, F, invalid="warn") == pytest.approx(0.875)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # "skip" and the papers' conventions are silent
        assert M.macro_auc(Y, F, invalid="skip") == pytest.approx(0.875)
        assert M.macro_auc(Y, F, "d2ace_test") == pytest.approx(0.875)
        r = M.macro_auc(Y, F, "cqupt", return_details=True)
        assert r.value == pytest.approx(1.0 / 3) and r.n_valid == 1 and r.invalid_labels.tolist() == [1, 2]
        assert np.isnan(M.macro_auc(Y, F, "mulan"))
    with pytest.raises(ValueError, match="single class"):
        M.macro_auc(Y, F, invalid="raise")
    with pytest.warns(M.UndefinedMetricWarning):
        assert np.isnan(M.macro_auc(np.zeros((3, 2)), np.ones((3, 2))))
    assert np.isnan(M.macro_auc(np.zeros((3, 2)), np.ones((3, 2)), "d2ace_test"))
    with pytest.warns(M.UndefinedMetricWarning, match="single class"):
        assert np.isnan(M.micro_auc(np.zeros((3, 2)), np.ones((3, 2))))


@pytest.mark.parametrize("seed", SEEDS)
def test_cqupt_auc_against_pair_loop(seed):
    Y, F = random_case(seed, ties=True)
    Y[:, 3] = 0  # a single-class label: contributes 0, counts in q
    per = []
    for j in range(Y.shape[1]):
        pos, neg = F[Y[:, j] == 1, j], F[Y[:, j] == 0, j]
        per.append(0.0 if len(pos) == 0 or len(neg) == 0 else
                   sum(1 for a in pos for b in neg if b <= a) / (len(pos) * len(neg)))
    assert M.macro_auc(Y, F, "cqupt") == pytest.approx(np.mean(per))


# --------------------------------------------------------------------------- binary inputs
@pytest.mark.parametrize("metric", [M.hamming_loss, M.macro_f1, M.micro_f1, M.subset_accuracy])
def test_binary_metrics_refuse_scores(metric):
    Y, F = random_case(0)
    with pytest.raises(ValueError, match=r"P must be binary .*P\[0, 0\] = 0\.73.*binarize"):
        F[0, 0] = 0.73
        metric(Y, F)
    with pytest.raises(ValueError, match=r"P\[1, 2\] = -1"):
        P = M.binarize(F).astype(int)
        P[1, 2] = -1
        metric(Y, P)
    with pytest.raises(ValueError, match=r"P\[0, 1\] = nan"):
        metric(Y, np.where(np.arange(Y.shape[1]) == 1, np.nan, M.binarize(F))[:, :])
    P = M.binarize(F)
    assert metric(Y, P) == metric(Y, P.astype(np.float32)) == metric(Y.astype(bool), P.astype(np.int8))


@pytest.mark.parametrize("metric", [M.macro_auc, M.ranking_loss, M.coverage, M.average_precision, M.one_error])
def test_truth_must_be_binary_and_scores_finite(metric):
    Y, F = random_case(0)
    Y2 = Y.copy()
    Y2[4, 5] = 2
    with pytest.raises(ValueError, match=r"Y must be binary .*Y\[4, 5\] = 2"):
        metric(Y2, F)
    F[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"finite.*F\[3, 1\] = inf"):
        metric(Y, F)


def test_input_errors():
    with pytest.raises(ValueError, match="shape"):
        M.ranking_loss(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        M.hamming_loss(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="convention .*'weird'"):
        M.one_error(np.ones((2, 2)), np.ones((2, 2)), "weird")
    with pytest.raises(ValueError, match="invalid"):
        M.macro_auc(np.ones((2, 2)), np.ones((2, 2)), invalid="ignore")


# --------------------------------------------------------------------------- the papers' and MULAN's conventions
def test_macro_f1_conventions():
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    P = np.array([[1, 0], [0, 0], [0, 0]])  # label 1 absent and never predicted
    assert M.macro_f1(Y, P) == M.macro_f1(Y, P, "cqupt") == pytest.approx((2 / 3 + 0.0) / 2)  # label 0: TP 1, FN 1
    assert M.macro_f1(Y, P, "mulan") == pytest.approx((2 / 3 + 1.0) / 2)
    assert M.micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_one_error_conventions_and_empty_rows():
    Y = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    F = np.array([[0.7, 0.7, 0.1], [0.2, 0.2, 0.9], [0.9, 0.1, 0.1]])
    # row 0 ties between labels 0 and 1: cqupt picks 0 (relevant), mulan picks 1 (irrelevant)
    # row 2 has no label: always an error
    assert M.one_error(Y, F) == M.one_error(Y, F, "cqupt") == pytest.approx(1 / 3)
    assert M.one_error(Y, F, "mulan") == pytest.approx(2 / 3)


def test_ranking_metrics_on_empty_and_full_rows():
    Y = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    F = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.5, 0.6]])
    assert M.ranking_loss(Y, F) == pytest.approx(1 / 3)            # rows 0, 1 give 0 but count
    assert M.average_precision(Y, F) == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert M.average_precision(Y, F, "samples") == pytest.approx((0 + 1 + 1 / 3) / 3)
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


def test_sparse_inputs_accepted():
    import scipy.sparse as sp

    Y, F = random_case(0)
    assert M.ranking_loss(sp.csr_matrix(Y), F) == pytest.approx(M.ranking_loss(Y, F))
    assert M.ranking_loss(sp.csr_array(Y), sp.csr_array(F)) == pytest.approx(M.ranking_loss(Y, F))
    assert M.macro_f1(sp.csr_matrix(Y), sp.csr_matrix(M.binarize(F))) == pytest.approx(M.macro_f1(Y, M.binarize(F)))


# --------------------------------------------------------------------------- slow references of the row-sorted paths
def pairs_ranking_loss(Y, F, tie_error=lambda j, k: True):
    """Ranking loss by enumerating all (relevant, irrelevant) pairs."""
    total = 0.0
    for y, f in zip(Y, F):
        pos, neg = np.flatnonzero(y), np.flatnonzero(y == 0)
        if len(pos) == 0 or len(neg) == 0:
            continue
        bad = sum(1 for j in pos for k in neg if f[k] > f[j] or (f[k] == f[j] and tie_error(j, k)))
        total += bad / (len(pos) * len(neg))
    return total / len(Y)


def loop_coverage(Y, F, convention):
    """Coverage row by row: labels >= the lowest relevant score, or the deepest strict rank - 1."""
    total = 0.0
    idx = np.arange(Y.shape[1])
    for y, f in zip(Y.astype(bool), F):
        if not y.any():
            continue
        if convention == "sklearn":
            total += np.sum(f >= f[y].min())
        else:
            # strict rank of label j: 1 + |{l : f_l > f_j or (f_l == f_j and l > j)}|
            total += max(1 + np.sum((f > f[j]) | ((f == f[j]) & (idx > j))) for j in idx[y]) - 1
    return total / len(Y)


def loop_average_precision(Y, F, convention):
    """Average precision row by row, O(q^2): label-ranking AP, or the area under the PR step curve."""
    total = 0.0
    for y, f in zip(Y.astype(bool), F):
        npos = int(y.sum())
        if convention == "ranking":
            if npos == 0 or npos == len(y):
                total += 1.0
                continue
            total += np.mean([np.sum(y & (f >= f[j])) / np.sum(f >= f[j]) for j in np.flatnonzero(y)])
        elif npos:
            thresholds = np.unique(f)[::-1]
            tp = np.array([np.sum(y & (f >= t)) for t in thresholds], dtype=np.float64)
            pp = np.array([np.sum(f >= t) for t in thresholds], dtype=np.float64)
            total += float(np.sum(np.diff(np.concatenate([[0.0], tp / npos])) * tp / pp))
    return total / len(Y)


def all_row_metrics(Y, F):
    return [M.ranking_loss(Y, F), M.ranking_loss(Y, F, "mulan"), M.coverage(Y, F), M.coverage(Y, F, "mulan"),
            M.average_precision(Y, F), M.average_precision(Y, F, "samples")]


def reference_row_metrics(Y, F):
    return [pairs_ranking_loss(Y, F), pairs_ranking_loss(Y, F, lambda j, k: k > j),
            loop_coverage(Y, F, "sklearn"), loop_coverage(Y, F, "mulan"),
            loop_average_precision(Y, F, "ranking"), loop_average_precision(Y, F, "samples")]


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(1, 7))
    q = draw(st.integers(1, 9))
    Y = np.array(draw(st.lists(st.booleans(), min_size=n * q, max_size=n * q))).reshape(n, q)
    levels = draw(st.sampled_from([2, 3, 5, 1000]))   # few levels -> many ties
    F = np.array(draw(st.lists(st.integers(0, levels - 1), min_size=n * q, max_size=n * q))).reshape(n, q)
    return Y.astype(np.int8), F / (levels - 1) - draw(st.sampled_from([0.0, 0.5]))


@settings(max_examples=300, deadline=None)
@given(labelled_scores())
def test_row_sorted_metrics_equal_slow_references(case):
    Y, F = case
    np.testing.assert_allclose(all_row_metrics(Y, F), reference_row_metrics(Y, F), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_row_sorted_metrics_equal_slow_references_on_degenerate_inputs(seed):
    for Y, F in (degenerate_case(seed), random_case(seed, ties=True, full_rows=True)):
        np.testing.assert_allclose(all_row_metrics(Y, F), reference_row_metrics(Y, F), rtol=1e-12)


def test_row_blocks_do_not_change_the_result(monkeypatch):
    Y, F = random_case(4, n=101, q=9, ties=True)
    whole = all_row_metrics(Y, F)
    monkeypatch.setattr(M, "_BLOCK_ENTRIES", 40)   # blocks of 4 rows, the last one partial
    np.testing.assert_allclose(all_row_metrics(Y, F), whole, rtol=1e-12)


def test_cost_benchmark_runs(tmp_path, monkeypatch):
    import json
    import runpy
    import sys
    from pathlib import Path

    out = tmp_path / "rows.json"
    script = Path(__file__).resolve().parents[1] / "bench" / "metrics_cost.py"
    monkeypatch.setattr(sys, "argv", ["metrics_cost.py", "--n", "30", "--q", "40", "--repeats", "1",
                                      "--loop-rows", "5", "--json", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    rows = json.loads(out.read_text())
    assert [r["metric"] for r in rows] == ["average_precision ranking", "average_precision samples", "ranking_loss",
                                           "coverage", "macro_auc", "average_precision samples, row loop"]
    assert all(r["abs_difference"] < 1e-12 for r in rows)
    assert all(r["mlbs_s"] > 0 and r["sklearn_s"] > 0 for r in rows[:-1]) and rows[-1]["loop_ms_per_row"] > 0
