"""A small multi-label problem and a deterministic stand-in for a model, shared by the tests of
the torch adapter and of distributed training: N = 300 samples, Q = 5 labels of decreasing
frequency, and logits that depend only on the sample ids (so that any process computes the same
outputs for the same ids)."""

from __future__ import annotations

import numpy as np

N, Q = 300, 5


def labels() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((N, Q)) < 0.5 * 0.6 ** np.arange(Q)).astype(np.int8)


def outputs_of(idx) -> np.ndarray:
    """Logits of the samples idx, shape (len(idx), Q)."""
    idx = np.asarray(idx, dtype=np.float64)
    return np.cos(np.outer(idx + 1.0, np.arange(1, Q + 1)) * 0.37) * 3.0
