"""Per-sample BCE: the sparse-label fast path against the dense transcription, and input checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.losses import check_observation, last_occurrence, per_sample_bce, per_sample_bce_csr


def dense_bce(z, y):
    """Literal BCE: -[y log sigma(z) + (1 - y) log(1 - sigma(z))], averaged over labels."""
    p = 1.0 / (1.0 + np.exp(-z))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_sparse_path_matches_dense(kind):
    rng = np.random.default_rng(0)
    Y = sp.csr_matrix((rng.random((200, 17)) < 0.2).astype(np.int8))
    rows = rng.integers(0, 200, 64)
    z = rng.normal(0, 4, (64, 17))
    out = z if kind == "logits" else 1 / (1 + np.exp(-z))
    expected = per_sample_bce(out, Y[rows].toarray(), kind=kind)
    np.testing.assert_allclose(per_sample_bce_csr(out, rows, Y, kind=kind), expected, rtol=1e-9)
    np.testing.assert_allclose(expected, dense_bce(z, Y[rows].toarray()), rtol=1e-6)


def test_logits_far_out_stay_finite():
    z = np.array([[800.0, -800.0]])
    assert np.isfinite(per_sample_bce(z, np.array([[0, 1]]))).all()
    np.testing.assert_allclose(per_sample_bce(z, np.array([[1, 0]])), [0.0], atol=1e-12)


def test_last_occurrence_keeps_the_last_value():
    idx, val = last_occurrence(np.array([4, 1, 4, 2, 1]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert dict(zip(idx.tolist(), val.tolist())) == {4: 3.0, 2: 4.0, 1: 5.0}


def test_check_observation_errors():
    with pytest.raises(ValueError, match="one-dimensional"):
        check_observation(np.zeros((2, 2), int), np.zeros((2, 3)), 10, 3)
    with pytest.raises(ValueError, match="sample 4"):
        check_observation([3, 4], [[0, 0, 0], [0, np.inf, 0]], 10, 3)


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_float32_outputs_are_computed_in_float32_within_its_precision(kind):
    rng = np.random.default_rng(1)
    Y = sp.csr_matrix((rng.random((100, 30)) < 0.2).astype(np.int8))
    rows = np.arange(100)
    z = rng.normal(0, 3, (100, 30))
    out = z if kind == "logits" else 1 / (1 + np.exp(-z))
    out32 = out.astype(np.float32)
    exact = per_sample_bce_csr(out32.astype(np.float64), rows, Y, kind=kind)  # same inputs, float64 math
    single = per_sample_bce_csr(out32, rows, Y, kind=kind)
    assert single.dtype == np.float64
    np.testing.assert_allclose(single, exact, rtol=2e-6)


def test_check_losses_fast_path_flags_repeats_and_slow_path_names_problems():
    from mlbs.losses import check_losses

    idx, loss, repeats = check_losses(np.array([3, 1, 2]), np.array([0.1, 0.2, 0.3]), 5)
    assert idx.dtype == np.int64 and loss.dtype == np.float64 and repeats is False
    assert check_losses([3, 1, 3], [0.1, 0.2, 0.3], 5)[2] is True
    for indices, losses, exc, match in [
        ([1, 5], [0.1, 0.2], IndexError, "sample index 5"),
        ([1, 2], [0.1, -0.2], ValueError, "sample 2"),
        ([1, 2], [0.1, np.nan], ValueError, "sample 2"),
        ([1, 2], [0.1], ValueError, "shape"),
        ([1.0], [0.1], TypeError, "integers"),
        ([[1]], [[0.1]], ValueError, "one-dimensional"),
    ]:
        with pytest.raises(exc, match=match):
            check_losses(indices, losses, 5)
