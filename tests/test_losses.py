"""Per-sample BCE: the sparse-label fast path against the dense transcription, and input checks."""

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs.core import LabelsCSR
from mlbs.signals.bce import per_sample_bce, per_sample_bce_csr
from mlbs.signals.observation import check_observation, last_occurrence


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
    from mlbs.signals.observation import check_losses

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


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("kind", ["logits", "probabilities"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_compiled_observation_matches_the_numpy_reference(kind, dtype, rtol, index_dtype):
    """observed_bce (the compiled pass) against per_sample_bce_csr on the same inputs; the float32
    tolerance is that of float32 entries (libmvec and numpy differ by a few ulp)."""
    from mlbs.signals.observation import observed_bce

    rng = np.random.default_rng(2)
    Y = sp.csr_matrix((rng.random((300, 37)) < 0.15).astype(np.int8))
    Y.indices, Y.indptr = Y.indices.astype(index_dtype), Y.indptr.astype(index_dtype)
    Y = LabelsCSR.of(Y)
    rows = rng.choice(300, 129, replace=False)
    z = rng.normal(0, 6, (129, 37))
    z[0, :3] = [700.0, -700.0, 0.0]  # far-out logits (probabilities 0 and 1 after the cast)
    out = (z if kind == "logits" else 1 / (1 + np.exp(-z))).astype(dtype)
    idx, loss, repeats = observed_bce(rows.astype(np.int32), out, Y, kind=kind)
    assert idx.dtype == np.int64 and loss.dtype == np.float64 and repeats is False
    np.testing.assert_array_equal(idx, rows)
    np.testing.assert_allclose(loss, per_sample_bce_csr(out, rows, Y, kind=kind), rtol=rtol, atol=1e-12)
    again = np.concatenate([rows[:5], rows[:1]])
    assert observed_bce(again, out[:6], Y, kind=kind)[2] is True


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_observation_refuses_what_the_checks_refuse(kind, dtype):
    from mlbs.signals.observation import observed_bce

    Y = LabelsCSR.of(sp.csr_matrix(np.eye(4, 3, dtype=np.int8)))
    good = np.full((2, 3), 0.5, dtype=dtype)
    for value in (np.nan, np.inf, -np.inf) + ((1.5, -0.1) if kind == "probabilities" else ()):
        bad = good.copy()
        bad[1, 2] = value
        with pytest.raises(ValueError, match="sample 3 .position 1"):
            observed_bce([0, 3], bad, Y, kind=kind)
    with pytest.raises(IndexError, match="sample index 4"):
        observed_bce([0, 4], good, Y, kind=kind)
    with pytest.raises(ValueError, match="shape"):
        observed_bce([0, 1], good[:, :2], Y, kind=kind)
    with pytest.raises(TypeError, match="integers"):
        observed_bce([0.0, 1.0], good, Y, kind=kind)
    # Non-contiguous or integer outputs take the numpy path and give the same losses.
    wide = np.full((2, 6), 0.5, dtype=dtype)[:, ::2]
    np.testing.assert_allclose(observed_bce([0, 1], wide, Y, kind=kind)[1],
                               observed_bce([0, 1], np.ascontiguousarray(wide), Y, kind=kind)[1], rtol=1e-12)
