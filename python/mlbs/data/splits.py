"""Cross-validation folds and validation splits.

* :func:`iterative_stratification` — Sechidis, Tsoumakas & Vlahavas, "On the
  stratification of multi-label data", ECML PKDD 2011, Algorithm 1, with a
  seeded generator: labels are processed fewest remaining positives first
  (random ties); each of the label's unassigned instances
  (ascending index) goes to the fold with the largest remaining desired count
  for that label, then the largest remaining desired size, then at random;
  label-less instances go last, each to the fold with the largest remaining
  desired size (random ties).
* :func:`stratified_kfold` — the k train/test splits built on it.
* :func:`validation_split` — the two published variants and the ``mlbs``
  default:

  - ``"zhou2024"``: half of the held-out fold is validation, exactly as
    ``sklearn.model_selection.train_test_split(fold, test_size=0.5,
    random_state=42)`` (first output, ``floor(n/2)`` rows = validation);
  - ``"d2ace"``: 10 % of the training fold is validation, exactly as
    ``torch.utils.data.random_split(fold, [n - floor(0.1 n), floor(0.1 n)],
    generator=torch.Generator().manual_seed(55))``;
  - ``"stratified"`` (``mlbs`` default): like ``"d2ace"`` but the 10 % are
    chosen by iterative stratification with proportions (0.9, 0.1).

The scikit-multilearn implementation used by the published code is not
reproduced here (``docs/protocol-differences.md`` says how its folds differ).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["iterative_stratification", "stratified_kfold", "validation_split", "fold_label_counts"]


def _as_csr(Y) -> sp.csr_matrix:
    Y = sp.csr_matrix(Y)
    Y = Y.astype(bool).astype(np.int8)
    Y.eliminate_zeros()
    Y.sort_indices()
    return Y


def _pick(candidates: np.ndarray, rng: np.random.Generator) -> int:
    return int(candidates[0]) if candidates.size == 1 else int(rng.choice(candidates))


def iterative_stratification(Y, n_splits: int = 5, proportions=None, seed=None) -> np.ndarray:
    """Assign every row to a fold by iterative stratification (Sechidis et al. 2011).

    Parameters
    ----------
    Y : array-like or sparse, shape (n, q)
        Binary labels.
    n_splits : int
        Number of folds ``k`` (ignored when ``proportions`` is given).
    proportions : sequence of float, optional
        Desired fold proportions ``r_1..r_k`` (sum 1); default ``1/k`` each.
    seed : int or numpy.random.Generator, optional
        Source of the random tie-breaks.

    Returns
    -------
    ndarray of int64, shape (n,)
        Fold index of each row.

    Notes
    -----
    Desired sizes ``c_j = n r_j`` and per-label desired counts
    ``c_j^l = |D^l| r_j`` are real numbers decremented by 1 per assignment.
    """
    Y = _as_csr(Y)
    n, q = Y.shape
    r = np.full(n_splits, 1.0 / n_splits) if proportions is None else np.asarray(proportions, dtype=np.float64)
    if r.ndim != 1 or r.size < 2 or np.any(r < 0) or not np.isclose(r.sum(), 1.0):
        raise ValueError("proportions must be >= 2 non-negative numbers summing to 1")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    Yc = Y.tocsc()
    Yc.sort_indices()
    counts = np.diff(Yc.indptr).astype(np.int64)
    c = n * r
    cl = counts[:, None] * r[None, :]
    remaining = counts.copy()
    fold = np.full(n, -1, dtype=np.int64)
    rows_indptr, rows_labels = Y.indptr, Y.indices
    while True:
        active = np.flatnonzero(remaining > 0)
        if active.size == 0:
            break
        rem = remaining[active]
        label = _pick(active[rem == rem.min()], rng)
        for i in Yc.indices[Yc.indptr[label]:Yc.indptr[label + 1]]:
            if fold[i] >= 0:
                continue
            want = cl[label]
            m = np.flatnonzero(want == want.max())
            if m.size > 1:
                m = m[c[m] == c[m].max()]
            f = _pick(m, rng)
            fold[i] = f
            labs = rows_labels[rows_indptr[i]:rows_indptr[i + 1]]
            cl[labs, f] -= 1.0
            remaining[labs] -= 1
            c[f] -= 1.0
    for i in np.flatnonzero(fold < 0):
        f = _pick(np.flatnonzero(c == c.max()), rng)
        fold[i] = f
        c[f] -= 1.0
    return fold


def stratified_kfold(Y, n_splits: int = 5, seed=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """k-fold cross-validation splits by iterative stratification.

    Returns
    -------
    list of (train, test)
        Index arrays in ascending order; fold ``j`` is the test part of split
        ``j``.
    """
    fold = iterative_stratification(Y, n_splits=n_splits, seed=seed)
    return [(np.flatnonzero(fold != j), np.flatnonzero(fold == j)) for j in range(n_splits)]


def fold_label_counts(Y, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positives per label in the train and test parts of one split."""
    Y = _as_csr(Y)
    return (np.asarray(Y[train].sum(axis=0)).ravel(), np.asarray(Y[test].sum(axis=0)).ravel())


def _zhou2024(held_out: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = held_out.size
    n_test = int(np.ceil(0.5 * n))
    perm = np.random.RandomState(seed).permutation(n)
    return held_out[perm[n_test:]], held_out[perm[:n_test]]


def _d2ace(train: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import torch  # imported lazily: only this variant needs torch's generator

    n = train.size
    n_val = int(np.floor(fraction * n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return train[perm[:n - n_val]], train[perm[n - n_val:]]


def validation_split(variant: str, train, held_out, Y=None, *, seed=None, fraction: float = 0.1):
    """Split one cross-validation fold into training, validation and test indices.

    Parameters
    ----------
    variant : {"zhou2024", "d2ace", "stratified"}
        See the module docstring.
    train, held_out : array of int
        The fold's training and held-out row indices.
    Y : array-like or sparse, optional
        Labels of all rows; required by ``"stratified"``.
    seed : int, optional
        Defaults: 42 (``zhou2024``), 55 (``d2ace``); ``stratified`` uses the
        given seed (None = fresh entropy).
    fraction : float
        Validation fraction of the training fold (``d2ace``, ``stratified``).

    Returns
    -------
    (train, validation, test) : tuple of int arrays
        ``zhou2024``: training fold unchanged, validation = ``floor(n_f/2)``
        rows of the held-out fold, test = the other ``ceil(n_f/2)``.
        ``d2ace``: training subset in the permuted order (the order used by a
        sequential warm-up), validation = ``floor(0.1 n)`` rows, test = the
        whole held-out fold. ``stratified``: training subset and validation in
        ascending order, test = the whole held-out fold.
    """
    train = np.asarray(train, dtype=np.int64)
    held_out = np.asarray(held_out, dtype=np.int64)
    if variant == "zhou2024":
        val, test = _zhou2024(held_out, 42 if seed is None else seed)
        return train, val, test
    if variant == "d2ace":
        tr, val = _d2ace(train, fraction, 55 if seed is None else seed)
        return tr, val, held_out
    if variant == "stratified":
        if Y is None:
            raise ValueError("the 'stratified' validation split needs Y")
        Ytr = sp.csr_matrix(Y)[train]
        part = iterative_stratification(Ytr, proportions=[1.0 - fraction, fraction], seed=seed)
        return train[part == 0], train[part == 1], held_out
    raise ValueError(f"unknown validation split {variant!r}; use 'zhou2024', 'd2ace' or 'stratified'")
