"""k-nearest neighbours with FAISS, and the local-imbalance instance weights of Adaptive.

Neighbour search (:func:`nearest_neighbors`)
---------------------------------------------
* Euclidean distance; returned distances are **squared** L2 (FAISS
  convention).
* ``method="auto"``: exact search when ``n <= exact_max_rows`` (default
  200,000), otherwise the approximate inverted-file index
  ``faiss.IndexIVFFlat``.
* Exact search (``method="exact"``): brute force ``faiss.IndexFlatL2`` for
  ``n <= flat_max_rows`` (default 20,000); above, a *certified pruned*
  search (:func:`_pruned_exact_search`) that returns the same neighbours as
  brute force, much faster on data with cluster structure: rows are grouped
  into ``sqrt(n)`` k-means cells, and each cell's queries are compared (one
  float32 GEMM per block) only with the cells that the triangle inequality
  cannot exclude. On data without structure it degrades to brute force.
* Approximate search (``method="ivf"``): ``nlist = 4 sqrt(n)`` k-means
  cells (10 iterations on a seeded sample of ``32 nlist`` rows), ``nprobe``
  cells visited per query (default 16), no certificate. IVF was chosen over
  HNSW because its build is deterministic for a given seed (HNSW's
  multi-threaded insertion order is not), so the weights are reproducible;
  its speed and recall@k at n = 1e6 are measured by ``bench/knn_weights.py``
  (HNSW was not benchmarked at that size). ``method="hnsw"``
  (``faiss.IndexHNSWFlat``) is available as an option.
* Self is excluded **by id** (methods.md 2.7): ``k + 1 + tie_margin``
  candidates are retrieved, ordered by (distance, index), the query's own
  index is removed, and the first ``k`` remain (if self was not returned, the
  last candidate is dropped). ``self_exclusion="position"`` drops the first
  column instead (the authors' code, compat ``self_by_position``);
  ``"none"`` keeps self.
* Inputs are converted for the caller to C-contiguous ``float32``.
* Sparse features: densified when ``n d`` float32 values fit in
  ``max_dense_bytes`` (default 2 GiB); otherwise projected to ``reduce_dim``
  (default 256) dimensions by a seeded Gaussian random projection
  (Johnson-Lindenstrauss: pairwise distances preserved up to a factor
  ``1 +- O(sqrt(log n / reduce_dim))``), so neighbours are then approximate.
  After the papers' preprocessing every registered dataset is densified.
* Rows whose approximate result is incomplete (FAISS id -1) are recomputed
  exactly.

Imbalance weights ([P24] section 3.3, methods.md 5.2)
-----------------------------------------------------
* Local imbalance, eq. 2, for ``j`` in the minority labels ``L_m`` and
  ``y_ij = 1``: ``B_ij = (1/k) |{m in K_i : y_mj = 0}|``; all other entries
  are 0 and not stored (:func:`local_imbalance`, a sparse matrix whose stored
  entries are exactly the positives of minority labels, zeros included).
* Normalised imbalance, eq. 4 (:func:`normalized_imbalance`), with
  ``T_j = sum_i B_ij [B_ij included]`` and ``S_ij = B_ij / T_j`` for
  included entries, ``-1`` for excluded ones:

  - ``convention="code"`` (default; the authors' code [C24]): included iff
    ``0 < B_ij < 1``; B = 0 and B = 1 are excluded. ``T_j > 0`` whenever an
    entry is included.
  - ``convention="paper"`` ([P24] eq. 4 as printed): included iff
    ``B_ij < 1``; only B = 1 ("outliers") is excluded. When ``T_j = 0`` the
    included entries are ``0/0 = NaN``.

  The two give the same weights except for labels with ``T_j = 0`` (NaN in
  the paper's reading, 0 in the code's).
* ``epsilon_i = sum_{j in L_m} S_ij [S_ij != -1]`` and ``w_i = 1 + epsilon_i``
  (:func:`instance_weights`). Each minority label with ``T_j > 0``
  distributes one unit of mass, so ``sum_i epsilon_i = |{j : T_j > 0}|``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .stats import minority_labels

__all__ = ["EXACT_MAX_ROWS", "Neighbors", "prepare_features", "nearest_neighbors", "knn_reference",
           "local_imbalance", "local_imbalance_reference", "normalized_imbalance",
           "normalized_imbalance_reference", "instance_weights", "ImbalanceWeights", "imbalance_weights"]

EXACT_MAX_ROWS = 200_000


@dataclass
class Neighbors:
    """Result of :func:`nearest_neighbors`.

    Attributes
    ----------
    indices : ndarray of int64, shape (n, k)
        Neighbour ids, ordered by (distance, id).
    distances : ndarray of float32, shape (n, k)
        Squared Euclidean distances.
    method : str
        ``"exact"``, ``"ivf"`` or ``"hnsw"``.
    params : dict
        Index parameters actually used.
    """

    indices: np.ndarray
    distances: np.ndarray
    method: str
    params: dict = field(default_factory=dict)


def prepare_features(X, *, max_dense_bytes: int = 2 << 30, reduce_dim: int = 256, seed: int = 0) -> np.ndarray:
    """C-contiguous float32 features for FAISS (see the module docstring for the sparse rule).

    Raises
    ------
    ValueError
        On non-finite values (FAISS would silently return garbage).
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        n, d = X.shape
        if n * d * 4 <= max_dense_bytes:
            out = np.ascontiguousarray(X.toarray(), dtype=np.float32)
        else:
            rng = np.random.default_rng(seed)
            R = rng.standard_normal((d, reduce_dim)).astype(np.float32) / np.float32(np.sqrt(reduce_dim))
            out = np.ascontiguousarray(X.astype(np.float32) @ R, dtype=np.float32)
    else:
        out = np.ascontiguousarray(X, dtype=np.float32)
    if out.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError("X contains NaN or infinite values")
    return out


def _order_and_drop_self(ids, dist, k, self_exclusion):
    """Sort candidates by (distance, id), then remove self by id / position."""
    n, c = ids.shape
    dist = np.where(ids < 0, np.inf, dist)
    ids_key = np.where(ids < 0, np.iinfo(np.int64).max, ids)
    order = np.lexsort((ids_key, dist), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    if self_exclusion == "none":
        return ids[:, :k], dist[:, :k]
    if self_exclusion == "position":
        return ids[:, 1:k + 1], dist[:, 1:k + 1]
    is_self = ids == np.arange(n)[:, None]
    missing = ~is_self.any(axis=1)
    is_self[missing, c - 1] = True  # self not returned: drop the last candidate
    keep = ~is_self
    ids = ids[keep].reshape(n, c - 1)[:, :k]
    dist = dist[keep].reshape(n, c - 1)[:, :k]
    return ids, dist


def _build_index(Xf, method, seed, nlist, nprobe, hnsw_m, ef_search):
    import faiss

    n, d = Xf.shape
    if method == "exact":
        index = faiss.IndexFlatL2(d)
        index.add(Xf)
        return index, {}
    if method == "ivf":
        nlist = nlist or max(1, int(round(4 * np.sqrt(n))))
        index, _, n_train = _ivf_index(Xf, nlist, seed)
        index.nprobe = min(nprobe, nlist)
        return index, {"nlist": nlist, "nprobe": index.nprobe, "n_train": n_train}
    if method == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m)
        index.hnsw.efConstruction = max(40, 2 * hnsw_m)
        index.add(Xf)
        index.hnsw.efSearch = ef_search
        return index, {"M": hnsw_m, "efConstruction": index.hnsw.efConstruction, "efSearch": ef_search}
    raise ValueError(f"unknown method {method!r}; use 'auto', 'exact', 'ivf' or 'hnsw'")


def _ivf_index(Xf, nlist, seed):
    """Seeded IVF-Flat index over ``Xf`` with ``nlist`` cells (k-means: 10 iterations on <= 32 nlist rows)."""
    import faiss

    n, d = Xf.shape
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist)
    index.cp.seed = int(seed)
    index.cp.niter = 10
    n_train = min(n, 32 * nlist)
    rng = np.random.default_rng(seed)
    sample = Xf if n_train == n else Xf[np.sort(rng.choice(n, n_train, replace=False))]
    index.train(sample)
    index.add(Xf)
    return index, quantizer, n_train


def _topc_merge(best_d, best_i, d, ids, c):
    """Merge candidate blocks, keeping the ``c`` smallest (distance, id) per row."""
    D = np.concatenate([best_d, d], axis=1)
    I = np.concatenate([best_i, np.broadcast_to(ids, d.shape)], axis=1)
    if D.shape[1] > c:
        part = np.argpartition(D, c - 1, axis=1)[:, :c]
        D, I = np.take_along_axis(D, part, 1), np.take_along_axis(I, part, 1)
    return D, I


def _sq_dists(Q, Qn, P, Pn):
    """Squared distances ``||q||^2 + ||p||^2 - 2 q.p`` (float32 GEMM, as FAISS brute force), clipped at 0."""
    out = Q @ P.T
    out *= -2.0
    out += Qn[:, None]
    out += Pn[None, :]
    return np.maximum(out, 0.0, out=out)


def _pruned_exact_search(Xf, c, seed, first_cells=4, chunk=65536):
    """Exact ``c``-nearest search by cluster pruning with triangle-inequality certificates.

    Rows are grouped into ``sqrt(n)`` k-means cells (centroid ``m_C``, radius
    ``r_C = max_{x in C} ||x - m_C||``). For the queries of a cell ``A``:

    1. candidates come from the ``first_cells`` cells whose centroids are
       nearest to ``m_A`` (``A`` included), giving each query an upper bound
       ``rho_q`` (its current ``c``-th distance);
    2. every other cell ``B`` with ``||q - m_B|| - r_B <= rho_q`` for some
       query ``q`` of ``A`` is then scanned too. No point outside the scanned
       cells can be closer than ``rho_q``, so the result equals brute force
       (distances by the same float32 GEMM expansion as ``IndexFlatL2``; the
       bounds carry a conservative slack for its rounding).
    """
    import faiss

    n, d = Xf.shape
    nlist = max(1, int(round(np.sqrt(n))))
    km = faiss.Kmeans(d, nlist, niter=10, seed=int(seed), max_points_per_centroid=64, verbose=False)
    km.train(Xf)
    cent = km.centroids
    d_own, cell = km.index.search(Xf, 1)
    cell = cell[:, 0]
    norms = np.einsum("ij,ij->i", Xf, Xf)
    cnorms = np.einsum("ij,ij->i", cent, cent)
    slack = 1e-5 * float(2.0 * norms.max() + cnorms.max() + 1.0)
    r2 = np.zeros(nlist)
    np.maximum.at(r2, cell, np.maximum(d_own[:, 0].astype(np.float64), 0.0))
    radius = np.sqrt(r2 + slack)
    order = np.argsort(cell, kind="stable")
    starts = np.searchsorted(cell[order], np.arange(nlist + 1))
    members = [order[starts[a]:starts[a + 1]] for a in range(nlist)]
    cc = _sq_dists(cent, cnorms, cent, cnorms)
    D_out = np.empty((n, c), dtype=np.float32)
    I_out = np.empty((n, c), dtype=np.int64)
    scanned = 0
    for a in range(nlist):
        qa = members[a]
        if qa.size == 0:
            continue
        Q, Qn = Xf[qa], norms[qa]
        near = np.argsort(cc[a], kind="stable")[:first_cells]
        bd = np.full((qa.size, 0), np.inf, dtype=np.float32)
        bi = np.empty((qa.size, 0), dtype=np.int64)

        def scan(cells, bd, bi):
            pts = np.concatenate([members[b] for b in cells]) if len(cells) else np.empty(0, np.int64)
            for s in range(0, pts.size, chunk):
                p = pts[s:s + chunk]
                bd, bi = _topc_merge(bd, bi, _sq_dists(Q, Qn, Xf[p], norms[p]), p, c)
            return bd, bi, pts.size

        bd, bi, m = scan(near, bd, bi)
        scanned += m * qa.size
        rho = np.sqrt(bd.max(axis=1).astype(np.float64) * (1 + 1e-5) + slack) if bd.shape[1] >= c \
            else np.full(qa.size, np.inf)
        dqc = np.sqrt(np.maximum(_sq_dists(Q, Qn, cent, cnorms).astype(np.float64) - slack, 0.0))
        required = np.any(dqc - radius[None, :] <= rho[:, None], axis=0)
        required[near] = False
        extra = np.flatnonzero(required)
        bd, bi, m = scan(extra, bd, bi)
        scanned += m * qa.size
        D_out[qa], I_out[qa] = bd, bi
    stats = {"nlist": nlist, "scanned_fraction": scanned / float(n) / n}
    return D_out, I_out, stats


def nearest_neighbors(X, k: int = 5, *, method: str = "auto", exact_max_rows: int = EXACT_MAX_ROWS,
                      self_exclusion: str = "id", tie_margin: int = 4, nlist: int | None = None,
                      nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 128, seed: int = 0,
                      n_threads: int | None = None, max_dense_bytes: int = 2 << 30,
                      reduce_dim: int = 256, flat_max_rows: int = 20_000) -> Neighbors:
    """k nearest neighbours of every row of ``X`` among the rows of ``X``.

    Parameters
    ----------
    X : array-like or sparse, shape (n, d)
    k : int
        Neighbours per row (self excluded unless ``self_exclusion="none"``).
    method : {"auto", "exact", "ivf", "hnsw"}
        ``"auto"``: exact when ``n <= exact_max_rows``, else ``"ivf"``.
    flat_max_rows : int
        Exact search uses brute force up to this many rows, the certified
        pruned search above (0 forces pruning, a huge value brute force).
    self_exclusion : {"id", "position", "none"}
    tie_margin : int
        Extra candidates retrieved so that (distance, id) ordering of ties at
        the k-th place is applied to a slightly larger set.
    nlist, nprobe : int
        IVF cells (default ``4 sqrt(n)``) and cells visited per query.
    hnsw_m, ef_search : int
        HNSW graph degree and search breadth.
    seed : int
        Seeds the IVF training sample, k-means and the sparse projection.
    n_threads : int, optional
        FAISS OpenMP threads (default: FAISS's own).

    Returns
    -------
    Neighbors
    """
    import faiss

    if self_exclusion not in ("id", "position", "none"):
        raise ValueError("self_exclusion must be 'id', 'position' or 'none'")
    Xf = prepare_features(X, max_dense_bytes=max_dense_bytes, reduce_dim=reduce_dim, seed=seed)
    n = Xf.shape[0]
    extra = 0 if self_exclusion == "none" else 1
    if not 1 <= k <= n - extra:
        raise ValueError(f"k = {k} needs at least {k + extra} rows, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_rows else "ivf"
    if n_threads is not None:
        faiss.omp_set_num_threads(int(n_threads))
    c = min(n, k + extra + max(0, tie_margin))
    if method == "exact" and n > flat_max_rows:
        dist, ids, params = _pruned_exact_search(Xf, c, seed)
        params["algorithm"] = "pruned"
    else:
        index, params = _build_index(Xf, method, seed, nlist, nprobe, hnsw_m, ef_search)
        dist, ids = index.search(Xf, c)
        if method == "exact":
            params["algorithm"] = "flat"
    ids = ids.astype(np.int64, copy=False)
    if method in ("ivf", "hnsw"):
        bad = np.flatnonzero((ids < 0).any(axis=1))
        if bad.size:
            flat = faiss.IndexFlatL2(Xf.shape[1])
            flat.add(Xf)
            dist[bad], ids[bad] = flat.search(Xf[bad], c)
        params["n_exact_fallback"] = int(bad.size)
    ids, dist = _order_and_drop_self(ids, dist, k, self_exclusion)
    return Neighbors(np.ascontiguousarray(ids), np.ascontiguousarray(dist, dtype=np.float32), method, params)


def knn_reference(X, k: int, self_exclusion: str = "id") -> np.ndarray:
    """Slow exact reference for :func:`nearest_neighbors` (O(n^2 d) memory; small n only).

    Distances are ``sum((x_i - x_m)^2)`` in float64; order by (distance, id).
    """
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    n = X.shape[0]
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        order = sorted(range(n), key=lambda m: (D[i, m], m))
        if self_exclusion == "id":
            order = [m for m in order if m != i]
        elif self_exclusion == "position":
            order = order[1:]
        out[i] = order[:k]
    return out


# --------------------------------------------------------------------------- eq. 2
def _labels_csr(Y) -> sp.csr_matrix:
    Y = sp.csr_matrix(Y)
    Y.eliminate_zeros()
    Y = sp.csr_matrix((np.ones(Y.nnz, dtype=np.int8), Y.indices, Y.indptr), shape=Y.shape)
    Y.sum_duplicates()
    Y.sort_indices()
    return Y


def local_imbalance(Y, neighbors, labels=None) -> sp.csr_matrix:
    """Local imbalance ``B`` of [P24] eq. 2, restricted to positives of ``labels``.

    ``B_ij = (1/k) |{m in K_i : y_mj = 0}| = 1 - (1/k) sum_{m in K_i} y_mj``
    for ``y_ij = 1`` and ``j`` in ``labels``; other entries are 0 and not
    stored. Cost O(k nnz log nnz) (sorted-key membership tests).

    Parameters
    ----------
    Y : array-like or sparse, shape (n, q)
    neighbors : ndarray of int, shape (n, k), or Neighbors
        Neighbour ids (self excluded).
    labels : array of int, optional
        Labels to compute (default: the minority labels of ``Y``).

    Returns
    -------
    csr_matrix of float64, shape (n, q)
        Stored entries are exactly the positives ``(i, j)``, ``j`` in
        ``labels`` (explicit zeros kept: B = 0 is information).
    """
    nb = np.asarray(neighbors.indices if isinstance(neighbors, Neighbors) else neighbors, dtype=np.int64)
    Y = _labels_csr(Y)
    n, q = Y.shape
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must have shape (n={n}, k), got {nb.shape}")
    k = nb.shape[1]
    labels = minority_labels(Y) if labels is None else np.unique(np.asarray(labels, dtype=np.int64))
    mask = np.zeros(q, dtype=bool)
    mask[labels] = True
    coo = Y.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    keys_all = rows * q + cols  # sorted (CSR order, sorted indices)
    sel = mask[cols]
    r, c = rows[sel], cols[sel]
    hits = np.zeros(r.size, dtype=np.int64)
    for t in range(k if r.size else 0):
        probe = nb[r, t] * q + c
        pos = np.searchsorted(keys_all, probe).clip(max=keys_all.size - 1)
        hits += keys_all[pos] == probe
    vals = 1.0 - hits / k
    return sp.csr_matrix((vals, c, np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])), shape=(n, q))


def local_imbalance_reference(Y, neighbors, labels) -> np.ndarray:
    """Dense loop reference for eq. 2 (small inputs)."""
    Y = np.asarray(Y.toarray() if sp.issparse(Y) else Y) != 0
    nb = np.asarray(neighbors)
    n, q = Y.shape
    B = np.zeros((n, q))
    for i in range(n):
        for j in labels:
            if Y[i, j]:
                B[i, j] = sum(1 for m in nb[i] if not Y[m, j]) / len(nb[i])
    return B


# --------------------------------------------------------------------------- eq. 4 and weights
def normalized_imbalance(B: sp.csr_matrix, convention: str = "code") -> sp.csr_matrix:
    """Normalised local imbalance ``S`` of [P24] eq. 4 (see the module docstring).

    Parameters
    ----------
    B : csr_matrix, shape (n, q)
        Output of :func:`local_imbalance` (pattern = positives of the
        minority labels).
    convention : {"code", "paper"}
        ``"code"``: entries with 0 < B < 1 are included (default, [C24]);
        ``"paper"``: entries with B < 1 are included (0/0 -> NaN when
        ``T_j = 0``).

    Returns
    -------
    csr_matrix of float64
        Same pattern as ``B``; ``S_ij = B_ij / T_j`` on included entries,
        ``-1`` on excluded ones.
    """
    if convention not in ("code", "paper"):
        raise ValueError("convention must be 'code' or 'paper'")
    B = sp.csr_matrix(B)
    b = B.data
    inc = (b > 0) & (b < 1) if convention == "code" else (b < 1)
    T = np.bincount(B.indices[inc], weights=b[inc], minlength=B.shape[1])
    s = np.full(b.shape, -1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s[inc] = b[inc] / T[B.indices[inc]]
    return sp.csr_matrix((s, B.indices.copy(), B.indptr.copy()), shape=B.shape)


def normalized_imbalance_reference(B: np.ndarray, labels, convention: str = "code") -> np.ndarray:
    """Dense loop reference for eq. 4 over the positives given by ``B``'s pattern.

    ``B`` is dense with ``NaN`` marking entries that are not positives of
    minority labels; returns the same with ``S`` values (``-1`` excluded).
    """
    n, q = B.shape
    S = np.full((n, q), np.nan)
    for j in labels:
        entries = [i for i in range(n) if not np.isnan(B[i, j])]
        included = [i for i in entries if (0 < B[i, j] < 1 if convention == "code" else B[i, j] < 1)]
        T = sum(B[i, j] for i in included)
        for i in entries:
            S[i, j] = (B[i, j] / T if T != 0 else np.nan) if i in included else -1.0
    return S


def instance_weights(S: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``epsilon_i = sum_j S_ij [S_ij != -1]`` and ``w = 1 + epsilon``.

    Returns
    -------
    (w, epsilon) : ndarrays of float64, shape (n,)
    """
    S = sp.csr_matrix(S)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(S.indptr))
    eps = np.bincount(rows, weights=np.where(S.data == -1.0, 0.0, S.data), minlength=S.shape[0])
    return 1.0 + eps, eps


@dataclass
class ImbalanceWeights:
    """Result of :func:`imbalance_weights`."""

    w: np.ndarray
    epsilon: np.ndarray
    B: sp.csr_matrix
    S: sp.csr_matrix
    minority: np.ndarray
    neighbors: Neighbors | None
    convention: str


def imbalance_weights(X, Y, k: int = 5, *, neighbors=None, convention: str = "code", irlbl_eps: float = 0.0,
                      **knn_options) -> ImbalanceWeights:
    """Instance weights ``w = 1 + epsilon`` of Adaptive ([P24] eqs. 1, 2, 4; methods.md 5.2).

    Parameters
    ----------
    X : array-like or sparse, shape (n, d)
        Training features (the same scaled matrix used for training).
    Y : array-like or sparse, shape (n, q)
        Training labels.
    k : int
        Neighbours (default 5, as in [C24]).
    neighbors : ndarray (n, k) or Neighbors, optional
        Precomputed neighbour ids; skips the search.
    convention : {"code", "paper"}
        Exclusion convention of eq. 4 (:func:`normalized_imbalance`).
    irlbl_eps : float
        0: labels without positives are ignored; 1e-6 reproduces [C24].
    **knn_options
        Passed to :func:`nearest_neighbors`.

    Returns
    -------
    ImbalanceWeights
    """
    Y = _labels_csr(Y)
    minority = minority_labels(Y, eps=irlbl_eps)
    nb = None
    if neighbors is None:
        nb = nearest_neighbors(X, k, **knn_options)
        ids = nb.indices
    else:
        nb = neighbors if isinstance(neighbors, Neighbors) else None
        ids = np.asarray(neighbors.indices if isinstance(neighbors, Neighbors) else neighbors)
    if ids.shape[0] != Y.shape[0]:
        raise ValueError(f"X/neighbors have {ids.shape[0]} rows, Y has {Y.shape[0]}")
    B = local_imbalance(Y, ids, minority)
    S = normalized_imbalance(B, convention)
    w, eps = instance_weights(S)
    return ImbalanceWeights(w, eps, B, S, minority, nb, convention)
