"""kNN search and the imbalance weights (eqs. 2, 4, w = 1 + epsilon) against slow references."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.statistics.imbalance import imbalance_weights, instance_weights, local_imbalance, normalized_imbalance
from mlbs.statistics.labels import minority_labels
from mlbs.statistics.neighbors import (RECALL_THRESHOLD, LowRecallWarning, nearest_neighbors, prepare_features,
                                     sample_recall)
from oracles import knn_reference, local_imbalance_reference, normalized_imbalance_reference


def clustered(n, d, seed, components=6):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((components, d)) * 5
    return (centres[rng.integers(0, components, n)] + rng.standard_normal((n, d))).astype(np.float64)


@pytest.mark.parametrize("method, kwargs", [
    ("exact", {}),                           # brute force
    ("exact", {"flat_max_rows": 0}),         # certified pruning
])
def test_exact_search_matches_reference(method, kwargs):
    X = clustered(400, 6, seed=1)
    nb = nearest_neighbors(X, 7, method=method, **kwargs)
    np.testing.assert_array_equal(nb.indices, knn_reference(X, 7))
    D = ((X[:, None, :] - X[nb.indices]) ** 2).sum(-1)
    np.testing.assert_allclose(nb.distances, D, rtol=1e-4, atol=1e-4)


def test_pruned_exact_equals_flat_on_unstructured_data():
    X = np.random.default_rng(3).standard_normal((3000, 12))
    a = nearest_neighbors(X, 5, method="exact", flat_max_rows=0)
    b = nearest_neighbors(X, 5, method="exact")
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.params["algorithm"] == "pruned" and b.params["algorithm"] == "flat"


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_approximate_methods_have_high_recall(method):
    X = clustered(4000, 16, seed=2, components=20)
    approx = nearest_neighbors(X, 5, method=method, nlist=32, nprobe=8, seed=0)
    exact = nearest_neighbors(X, 5, method="exact")
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(approx.indices.tolist(), exact.indices.tolist())])
    assert recall >= 0.95, recall
    assert approx.method == method
    assert not (approx.indices == np.arange(4000)[:, None]).any()  # self excluded


def test_auto_switches_to_approximate_above_threshold():
    X = clustered(600, 4, seed=4)
    assert nearest_neighbors(X, 3).method == "exact"
    assert nearest_neighbors(X, 3, exact_max_rows=500, nlist=8).method == "ivf"


def test_self_exclusion_with_duplicates():
    # rows 0..3 identical: self must be removed by id even if it is not returned first
    X = np.vstack([np.zeros((4, 2)), np.arange(20, dtype=float).reshape(10, 2) + 5])
    nb = nearest_neighbors(X, 3, method="exact")
    for i in range(4):
        assert i not in nb.indices[i] and set(nb.indices[i]) == set(range(4)) - {i}
    np.testing.assert_array_equal(nb.indices, knn_reference(X, 3))
    by_pos = nearest_neighbors(X, 3, method="exact", self_exclusion="position")
    np.testing.assert_array_equal(by_pos.indices, knn_reference(X, 3, "position"))
    keep = nearest_neighbors(X, 3, method="exact", self_exclusion="none")
    assert keep.indices.shape == (14, 3)


def test_ties_ordered_by_index():
    X = np.array([[0.0], [1.0], [-1.0], [2.0], [-2.0]])
    nb = nearest_neighbors(X, 4, method="exact")
    np.testing.assert_array_equal(nb.indices[0], [1, 2, 3, 4])


def test_input_conversion_and_errors():
    Xf = prepare_features(np.asfortranarray(np.ones((5, 3), dtype=np.float64)))
    assert Xf.dtype == np.float32 and Xf.flags.c_contiguous
    with pytest.raises(ValueError, match="NaN"):
        prepare_features(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="needs at least"):
        nearest_neighbors(np.ones((3, 2)), 3)


def test_sparse_features_densified_or_projected():
    Xs = sp.random(300, 50, density=0.2, random_state=6, format="csr")
    a = nearest_neighbors(Xs, 4, method="exact")
    np.testing.assert_array_equal(a.indices, knn_reference(Xs.toarray(), 4))
    # tiny memory budget forces the seeded random projection: approximate but reproducible
    p1 = prepare_features(Xs, max_dense_bytes=10, reduce_dim=256, seed=1)
    p2 = prepare_features(Xs, max_dense_bytes=10, reduce_dim=256, seed=1)
    assert p1.shape == (300, 256) and np.array_equal(p1, p2)
    D = ((Xs.toarray()[:, None] - Xs.toarray()[None]) ** 2).sum(-1)
    Dp = ((p1[:, None] - p1[None]) ** 2).sum(-1)
    iu = np.triu_indices(300, 1)
    assert np.corrcoef(D[iu], Dp[iu])[0, 1] > 0.9
    assert np.mean(Dp[iu] / D[iu]) == pytest.approx(1.0, abs=0.05)  # JL: unbiased squared distances


def random_labels(n, q, seed):
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.02, 0.6, q)
    return sp.csr_matrix((rng.random((n, q)) < rates).astype(np.int8))


def test_local_imbalance_matches_reference():
    X = clustered(300, 5, seed=7)
    Y = random_labels(300, 12, seed=8)
    nb = nearest_neighbors(X, 5, method="exact").indices
    labels = minority_labels(Y)
    assert labels.size > 0
    B = local_imbalance(Y, nb, labels)
    np.testing.assert_allclose(B.toarray(), local_imbalance_reference(Y, nb, labels))
    # stored pattern == positives of minority labels (B = 0 entries kept)
    Yd = Y.toarray().astype(bool)
    mask = np.zeros_like(Yd)
    mask[:, labels] = Yd[:, labels]
    assert B.nnz == mask.sum()
    np.testing.assert_array_equal(B.toarray() != 0, mask & (B.toarray() != 0))


@pytest.mark.parametrize("convention", ["code", "paper"])
def test_normalized_imbalance_and_weights_match_reference(convention):
    X = clustered(300, 5, seed=9)
    Y = random_labels(300, 12, seed=10)
    res = imbalance_weights(X, Y, 5, convention=convention, method="exact")
    Bd = np.full(Y.shape, np.nan)
    coo = res.B.tocoo()
    Bd[coo.row, coo.col] = coo.data
    Sref = normalized_imbalance_reference(Bd, res.minority, convention)
    Sd = np.full(Y.shape, np.nan)
    coo = res.S.tocoo()
    Sd[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(Sd, Sref, equal_nan=True)
    eps_ref = np.nansum(np.where(Sref == -1, 0.0, Sref), axis=1)
    np.testing.assert_allclose(res.epsilon, eps_ref)
    np.testing.assert_allclose(res.w, 1 + eps_ref)
    # each minority label with T_j > 0 distributes one unit of mass
    b = coo_b = res.B.tocoo()
    inc = (coo_b.data > 0) & (coo_b.data < 1) if convention == "code" else coo_b.data < 1
    T = np.bincount(coo_b.col[inc], weights=b.data[inc], minlength=Y.shape[1])
    assert res.epsilon.sum() == pytest.approx(np.sum(T[res.minority] > 0))


def test_conventions_differ_only_when_T_is_zero():
    # label 1 (minority): positives at rows 0, 1 with B in {0, 1} only -> T = 0
    Y = sp.csr_matrix(np.array([[1, 1], [1, 1], [1, 0], [1, 0], [1, 0], [1, 0]]))
    nb = np.array([[1], [2], [0], [0], [0], [0]])  # row 0 -> row 1 (positive, B=0); row 1 -> row 2 (B=1)
    B = local_imbalance(Y, nb, [1])
    np.testing.assert_allclose(B.toarray()[:, 1], [0, 1, 0, 0, 0, 0])
    S_code = normalized_imbalance(B, "code")
    S_paper = normalized_imbalance(B, "paper")
    np.testing.assert_array_equal(S_code.toarray()[:2, 1], [-1, -1])
    assert np.isnan(S_paper.toarray()[0, 1]) and S_paper.toarray()[1, 1] == -1
    w_code, _ = instance_weights(S_code)
    w_paper, _ = instance_weights(S_paper)
    np.testing.assert_array_equal(w_code, np.ones(6))
    assert np.isnan(w_paper[0]) and np.isfinite(w_paper[1:]).all()


def test_weights_are_one_without_minority_labels():
    Y = sp.csr_matrix(np.tile([[1, 0], [0, 1]], (10, 1)))
    res = imbalance_weights(np.random.default_rng(0).random((20, 3)), Y, 3)
    assert res.minority.size == 0 and np.array_equal(res.w, np.ones(20))


def test_weights_on_real_yeast():
    from test_data_realdata import real_dataset

    from mlbs.data.preprocess import MinMaxScaler

    data = real_dataset("yeast")
    X = MinMaxScaler().fit_transform(data.X)
    res = imbalance_weights(X, data.Y, 5)
    ref = nearest_neighbors(X, 5, method="exact", flat_max_rows=0)
    # the same neighbours; where two float32 distances differ only by the rounding of the two
    # searches' matrix products (row 2200: 1.72782 for both of its last two), their order may differ
    np.testing.assert_array_equal(np.sort(res.neighbors.indices, axis=1), np.sort(ref.indices, axis=1))
    assert (res.neighbors.indices != ref.indices).any(axis=1).sum() <= 1
    assert res.minority.tolist() == list(minority_labels(data.Y))
    assert (res.w >= 1).all() and res.w.max() > 1
    assert res.epsilon.sum() == pytest.approx(res.minority.size)  # yeast: every minority label has T_j > 0


def test_faiss_thread_count_is_restored_after_a_search():
    import faiss

    before = faiss.omp_get_max_threads()
    X = np.random.default_rng(0).random((50, 4))
    nearest_neighbors(X, 3, n_threads=1)
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        nearest_neighbors(X, 3, n_threads=0)
    assert faiss.omp_get_max_threads() == before


def true_recall(found, exact):
    """|found ∩ exact| / k averaged over rows (data without distance ties)."""
    k = exact.shape[1]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact.tolist())])


@pytest.fixture(scope="module")
def weak_ivf():
    """An IVF search forced to be poor (nprobe = 1 of 16 cells) on unclustered data, and the exact truth."""
    X = np.random.default_rng(11).standard_normal((600, 8))
    with pytest.warns(LowRecallWarning):
        nb = nearest_neighbors(X, 5, method="ivf", nlist=16, nprobe=1, recall_sample=600)
    return X, nb, knn_reference(X, 5)


def test_recall_estimate_on_all_rows_equals_the_true_recall(weak_ivf):
    X, nb, exact = weak_ivf
    assert nb.recall_queries == 600 and nb.params["nprobe"] == 1
    assert nb.recall == pytest.approx(true_recall(nb.indices, exact), abs=1e-12)
    assert 0.2 < nb.recall < 0.9  # the forced approximation is visibly imperfect


def test_recall_estimate_on_a_sample_is_within_its_sampling_error(weak_ivf):
    X, full, exact = weak_ivf
    with pytest.warns(LowRecallWarning):
        nb = nearest_neighbors(X, 5, method="ivf", nlist=16, nprobe=1, recall_sample=200)
    assert nb.recall_queries == 200
    np.testing.assert_array_equal(nb.indices, full.indices)  # the sample changes only the estimate
    r = true_recall(nb.indices, exact)
    assert abs(nb.recall - r) <= 3 * np.sqrt(r * (1 - r) / 200)  # 3 standard errors (per-query bound)


def test_low_recall_warns_below_the_threshold_and_not_above(weak_ivf):
    import warnings

    X, nb, _ = weak_ivf
    with pytest.warns(LowRecallWarning, match="recall@5"):
        nearest_neighbors(X, 5, method="ivf", nlist=16, nprobe=1, recall_sample=600, min_recall=nb.recall + 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowRecallWarning)
        again = nearest_neighbors(X, 5, method="ivf", nlist=16, nprobe=1, recall_sample=600,
                                  min_recall=nb.recall - 0.01)
    assert again.recall == nb.recall
    assert RECALL_THRESHOLD == 0.95


@pytest.mark.parametrize("kwargs", [{}, {"flat_max_rows": 0}], ids=["flat", "pruned"])
def test_exact_search_reports_recall_one_without_estimating(kwargs):
    X = clustered(500, 6, seed=5)
    nb = nearest_neighbors(X, 5, method="exact", **kwargs)
    assert nb.recall == 1.0 and nb.recall_queries == 0
    res = imbalance_weights(X, random_labels(500, 6, 0), 5, method="exact", **kwargs)
    assert res.recall == 1.0 and res.knn_method == "exact"
    assert imbalance_weights(X, random_labels(500, 6, 0), 5, neighbors=nb.indices).recall is None


def test_tuned_nprobe_reaches_the_target_on_clustered_data():
    import warnings

    X = clustered(4000, 16, seed=2, components=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowRecallWarning)
        nb = nearest_neighbors(X, 5, method="ivf", nlist=64, recall_sample=600)
    trail = nb.params["nprobe_trail"]
    assert trail[-1] == (nb.params["nprobe"], trail[-1][1]) and trail[-1][1] >= 0.97
    assert all(r < 0.97 for _, r in trail[:-1])  # the smallest nprobe of the ladder that reaches it
    exact = nearest_neighbors(X, 5, method="exact")
    r = true_recall(nb.indices, exact.indices)
    assert r >= 0.95 and abs(nb.recall - r) <= 3 * np.sqrt(r * (1 - r) / 600) + 1e-9


def test_tuning_stops_at_the_cap_and_warns_on_isotropic_data():
    X = np.random.default_rng(12).standard_normal((3000, 32))
    with pytest.warns(LowRecallWarning):
        nb = nearest_neighbors(X, 5, method="ivf", nlist=256, recall_sample=300)
    assert nb.params["nprobe"] == 256 // 16 and nb.recall < 0.95
    assert [p for p, _ in nb.params["nprobe_trail"]] == [8, 11, 16]


def test_sample_recall_counts_ties_as_hits():
    X = prepare_features(np.vstack([np.zeros((4, 2)), [[5.0, 5.0]], [[9.0, 0.0]]]))
    rows = np.array([0])
    exact = np.array([[1, 2]])
    assert sample_recall(X, rows, np.array([[2, 3]]), exact) == 1.0  # row 3 is as near as row 1
    assert sample_recall(X, rows, np.array([[2, 4]]), exact) == 0.5
    assert sample_recall(X, rows, np.array([[2, -1]]), exact) == 0.5  # not found: a miss


def test_pruned_search_in_small_blocks_equals_brute_force():
    from mlbs.statistics.neighbors import _pruned_exact_search

    X = prepare_features(clustered(1200, 6, seed=7, components=3))
    Db, Ib = _pruned_exact_search(X, 6, 0, block_elements=300)[:2]
    Dr, Ir = _pruned_exact_search(X, 6, 0)[:2]
    np.testing.assert_array_equal(Ib, Ir)
    np.testing.assert_array_equal(Db, Dr)


def test_policies_expose_the_recall_of_their_knn():
    from mlbs.policies.adaptive import Adaptive
    from mlbs.policies.d2ace import D2ACE

    X, Y = clustered(300, 4, seed=8), random_labels(300, 6, 1)
    assert Adaptive(Y, X).knn_recall == 1.0
    assert Adaptive(Y, weights=np.ones(300)).knn_recall is None
    with pytest.warns(LowRecallWarning):
        low = Adaptive(Y, X, knn_options={"method": "ivf", "nlist": 16, "nprobe": 1, "min_recall": 1.0})
    assert low.knn_recall < 1.0
    d = D2ACE(Y, X)
    assert d.knn_recall == 1.0
    assert D2ACE(Y, neighbors=nearest_neighbors(X, d.config.k).indices).knn_recall is None
