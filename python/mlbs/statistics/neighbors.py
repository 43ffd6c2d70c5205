"""k nearest neighbours of every training sample, with FAISS (:func:`nearest_neighbors`).

The neighbour graph feeds the imbalance weights of Adaptive (:mod:`mlbs.statistics.imbalance`)
and the local label context of D2ACE (:mod:`mlbs.statistics.structure`).

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
  Both compute squared distances in float32 by matrix products blocked
  differently, so two candidates whose distances agree to float32 rounding
  may come in either order (measured on yeast: one row of 2,417, the 4th and
  5th neighbours at 1.72782 both).
* Approximate search (``method="ivf"``): ``nlist = 4 sqrt(n)`` k-means
  cells (10 iterations on a seeded sample of ``32 nlist`` rows), ``nprobe``
  cells visited per query (default 16), no certificate. IVF was chosen over
  HNSW because its build is deterministic for a given seed (HNSW's
  multi-threaded insertion order is not), so the weights are reproducible;
  its speed and recall@k at n = 1e6 are measured by ``bench/knn_weights.py``
  (HNSW was not benchmarked at that size). ``method="hnsw"``
  (``faiss.IndexHNSWFlat``) is available as an option.
* Self is excluded **by id**: ``k + 1 + tie_margin``
  candidates are retrieved, ordered by (distance, index), the query's own
  index is removed, and the first ``k`` remain (if self was not returned, the
  last candidate is dropped). ``self_exclusion="position"`` drops the first
  column instead (the code of Zhou et al. 2024, which differs from exclusion by
  id when a sample has exact duplicates);
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
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["EXACT_MAX_ROWS", "Neighbors", "prepare_features", "nearest_neighbors"]

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
        FAISS OpenMP threads for this search (default: FAISS's own). FAISS's thread count is
        process-wide; it is set for the duration of the call and restored afterwards.

    Returns
    -------
    Neighbors
    """
    if self_exclusion not in ("id", "position", "none"):
        raise ValueError("self_exclusion must be 'id', 'position' or 'none'")
    Xf = prepare_features(X, max_dense_bytes=max_dense_bytes, reduce_dim=reduce_dim, seed=seed)
    n = Xf.shape[0]
    extra = 0 if self_exclusion == "none" else 1
    if not 1 <= k <= n - extra:
        raise ValueError(f"k = {k} needs at least {k + extra} rows, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_rows else "ivf"
    with faiss_threads(n_threads):
        return _search(Xf, k, method, self_exclusion, min(n, k + extra + max(0, tie_margin)), seed,
                       (nlist, nprobe, hnsw_m, ef_search), flat_max_rows)


@contextmanager
def faiss_threads(n_threads: int | None):
    """FAISS's process-wide OpenMP thread count set to ``n_threads`` inside the block (unchanged
    when None), and restored on exit."""
    import faiss

    if n_threads is None:
        yield
        return
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n_threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _search(Xf, k, method, self_exclusion, c, seed, index_options, flat_max_rows) -> Neighbors:
    """The search of :func:`nearest_neighbors` on prepared features, c candidates per row."""
    import faiss

    if method == "exact" and Xf.shape[0] > flat_max_rows:
        dist, ids, params = _pruned_exact_search(Xf, c, seed)
        params["algorithm"] = "pruned"
    else:
        index, params = _build_index(Xf, method, seed, *index_options)
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
