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
  The pruned search works on blocks of at most ``block_elements`` (2^21)
  query-candidate distances at a time, so its working memory is bounded
  (about 40 bytes per element: distances, merged ids, partition indices)
  whatever the size of the k-means cells.
* Approximate search (``method="ivf"``): ``nlist = 4 sqrt(n)`` k-means
  cells (10 iterations on a seeded sample of ``32 nlist`` rows), ``nprobe``
  cells visited per query. By default ``nprobe`` is *tuned*: 8, 11, 16, 23,
  32, ... (ratio sqrt 2, so that the value chosen scans at most 1.41 times
  the cells the target needs) up to ``max(8, nlist // 16)`` (about a
  sixteenth of the rows scanned per query), the first value whose recall
  on a seeded tuning sample of ``recall_sample // 2`` queries reaches
  ``TARGET_RECALL`` (0.97). IVF was chosen over
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

Recall
------
Every result carries ``recall``, the recall@k it reached. For exact search it
is 1.0 by construction (nothing is estimated). For ``"ivf"`` and ``"hnsw"``
it is estimated on a seeded sample of ``min(recall_sample, n)`` queries
(default 1,000) whose exact neighbours are found by brute force
(``faiss.knn``: the sample against all rows, in float32 as ``IndexFlatL2``)
with the same self-exclusion rule; the estimate costs ``recall_sample / n``
of a brute-force search. A returned neighbour counts as correct when its
squared distance (recomputed in float64) does not exceed the exact ``k``-th
one, up to float32 rounding (``1e-5 (d_k + ||x||^2)``), so that ties are
not counted as misses; without ties this is ``|approx ∩ exact| / k``. The
per-query recalls lie in [0, 1], so their variance is at most ``r (1 - r)``
and the standard error of the estimate at most ``sqrt(r (1 - r) / m)`` for
m queries (0.007 at r = 0.95, m = 1,000). A :class:`LowRecallWarning`
is issued when the estimate is below ``min_recall`` (default
``RECALL_THRESHOLD`` = 0.95).

Isotropic data in high dimension (e.g. an i.i.d. Gaussian in 128 dimensions)
has no neighbour structure an index can exploit: reaching recall 0.95 there
takes close to a brute-force scan, which the ``nprobe`` cap does not allow;
the result then warns, and ``method="exact"`` is the remedy.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import warnings

import numpy as np
import scipy.sparse as sp

__all__ = ["EXACT_MAX_ROWS", "RECALL_THRESHOLD", "TARGET_RECALL", "RECALL_SAMPLE", "LowRecallWarning", "Neighbors",
           "prepare_features", "nearest_neighbors", "sample_recall"]

EXACT_MAX_ROWS = 200_000
RECALL_THRESHOLD = 0.95   # below this estimated recall@k, an approximate search warns
TARGET_RECALL = 0.97      # the recall that the tuning of nprobe aims at (margin for the estimate's error)
RECALL_SAMPLE = 1000      # queries of the recall estimate (half as many tune nprobe)
_NPROBE_START = 8


class LowRecallWarning(UserWarning):
    """An approximate neighbour search reached an estimated recall@k below the threshold."""


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
    recall : float
        Recall@k reached: 1.0 by construction for exact search, otherwise
        estimated on ``recall_queries`` sample queries (module docstring).
    recall_queries : int
        Size of the query sample of the estimate; 0 for exact search.
    """

    indices: np.ndarray
    distances: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    recall: float = 1.0
    recall_queries: int = 0


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


def _order_and_drop_self(ids, dist, k, self_exclusion, rows=None):
    """Sort candidates by (distance, id), then remove self by id / position (``rows``: the query
    ids, default ``0..n-1``)."""
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
    is_self = ids == (np.arange(n) if rows is None else np.asarray(rows))[:, None]
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
        index.nprobe = min(nprobe or _NPROBE_START, nlist)
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


def _pruned_exact_search(Xf, c, seed, first_cells=4, block_elements=1 << 21):
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

    Queries are taken in blocks of at most 1,024 and candidates in chunks of
    ``block_elements // block`` rows, so at most ``block_elements``
    distances are held at a time.
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
    query_block = 1024
    blocks = [(a, members[a][s:s + query_block]) for a in range(nlist)
              for s in range(0, members[a].size, query_block)]
    for a, qa in blocks:
        Q, Qn = Xf[qa], norms[qa]
        chunk = max(c, block_elements // qa.size)
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
                      nprobe: int | None = None, hnsw_m: int = 32, ef_search: int = 128, seed: int = 0,
                      n_threads: int | None = None, max_dense_bytes: int = 2 << 30,
                      reduce_dim: int = 256, flat_max_rows: int = 20_000, recall_sample: int = RECALL_SAMPLE,
                      min_recall: float = RECALL_THRESHOLD, target_recall: float = TARGET_RECALL) -> Neighbors:
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
        IVF cells (default ``4 sqrt(n)``) and cells visited per query (default: tuned to
        ``target_recall``, see the module docstring).
    hnsw_m, ef_search : int
        HNSW graph degree and search breadth.
    seed : int
        Seeds the IVF training sample, k-means and the sparse projection.
    n_threads : int, optional
        FAISS OpenMP threads for this search (default: FAISS's own). FAISS's thread count is
        process-wide; it is set for the duration of the call and restored afterwards.
    recall_sample : int
        Queries of the recall estimate of an approximate search (``min(recall_sample, n)``);
        ``recall_sample // 2`` further queries tune ``nprobe``.
    min_recall : float
        An approximate search whose estimated recall is below this issues a
        :class:`LowRecallWarning`.
    target_recall : float
        The recall that the tuning of ``nprobe`` aims at.

    Returns
    -------
    Neighbors
        With ``recall`` (1.0 for exact search) and ``recall_queries``.

    Warns
    -----
    LowRecallWarning
        When the estimated recall is below ``min_recall``.
    """
    if self_exclusion not in ("id", "position", "none"):
        raise ValueError("self_exclusion must be 'id', 'position' or 'none'")
    if int(recall_sample) < 2:
        raise ValueError(f"recall_sample must be >= 2, got {recall_sample!r}")
    if not (0.0 <= min_recall <= 1.0 and 0.0 <= target_recall <= 1.0):
        raise ValueError(f"min_recall and target_recall must lie in [0, 1], got {min_recall!r}, {target_recall!r}")
    if nprobe is not None and int(nprobe) < 1:
        raise ValueError(f"nprobe must be >= 1, got {nprobe!r}")
    Xf = prepare_features(X, max_dense_bytes=max_dense_bytes, reduce_dim=reduce_dim, seed=seed)
    n = Xf.shape[0]
    extra = 0 if self_exclusion == "none" else 1
    if not 1 <= k <= n - extra:
        raise ValueError(f"k = {k} needs at least {k + extra} rows, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_rows else "ivf"
    c = min(n, k + extra + max(0, tie_margin))
    with faiss_threads(n_threads):
        if method == "exact":
            return _exact_search(Xf, k, self_exclusion, c, seed, flat_max_rows)
        nb = _approximate_search(Xf, k, method, self_exclusion, c, seed, (nlist, nprobe, hnsw_m, ef_search),
                                 int(recall_sample), target_recall)
    if nb.recall < min_recall:
        warnings.warn(LowRecallWarning(
            f"{nb.method} neighbour search {nb.params} reached an estimated recall@{k} of {nb.recall:.3f} "
            f"(on {nb.recall_queries} queries), below {min_recall}; use method='exact' or a larger nprobe/ef_search"),
            stacklevel=2)
    return nb


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


def _exact_search(Xf, k, self_exclusion, c, seed, flat_max_rows) -> Neighbors:
    """Exact search of :func:`nearest_neighbors` (recall 1.0 by construction), ``c`` candidates per row."""
    if Xf.shape[0] > flat_max_rows:
        dist, ids, params = _pruned_exact_search(Xf, c, seed)
        params["algorithm"] = "pruned"
    else:
        index, params = _build_index(Xf, "exact", seed, None, None, None, None)
        dist, ids = index.search(Xf, c)
        params["algorithm"] = "flat"
    ids, dist = _order_and_drop_self(ids.astype(np.int64, copy=False), dist, k, self_exclusion)
    return Neighbors(np.ascontiguousarray(ids), np.ascontiguousarray(dist, dtype=np.float32), "exact", params)


def _exact_sample(Xf, rows, k, self_exclusion, c):
    """Exact neighbours of the rows ``rows`` against all rows (brute force), same self-exclusion rule."""
    import faiss

    dist, ids = faiss.knn(Xf[rows], Xf, c)
    ids, _ = _order_and_drop_self(ids.astype(np.int64, copy=False), dist, k, self_exclusion, rows)
    return ids


def sample_recall(Xf, rows, found, exact) -> float:
    """Recall@k of the neighbour lists ``found`` of the rows ``rows`` against their exact lists ``exact``.

    A found neighbour counts as correct when its squared distance, in float64, is at most the
    largest exact one plus ``1e-5 (d_k + ||x||^2)`` (float32 rounding), so that ties are not misses;
    ids < 0 (no neighbour found) are misses. Without ties this is ``|found ∩ exact| / k``.
    """
    Q = Xf[rows].astype(np.float64)

    def sq(ids):
        return ((Xf[np.maximum(ids, 0)].astype(np.float64) - Q[:, None, :]) ** 2).sum(axis=2)

    kth = sq(exact).max(axis=1)
    bound = kth + 1e-5 * (kth + (Q * Q).sum(axis=1))
    hits = (sq(found) <= bound[:, None]) & (found >= 0)
    return float(hits.mean())


def _tune_nprobe(index, Xf, rows, exact, k, self_exclusion, c, target_recall):
    """Smallest nprobe of the ladder round(8 * 2^(t/2)), t = 0, 1, ... (8, 11, 16, 23, 32, ...;
    capped at ``max(8, nlist // 16)``) whose recall on the queries ``rows`` reaches
    ``target_recall``; returns it and the (nprobe, recall) trail."""
    cap = max(_NPROBE_START, index.nlist // 16)
    trail = []
    step = 0
    while True:
        nprobe = round(_NPROBE_START * 2.0 ** (step / 2))
        index.nprobe = min(nprobe, cap, index.nlist)
        dist, ids = index.search(Xf[rows], c)
        found, _ = _order_and_drop_self(ids.astype(np.int64, copy=False), dist, k, self_exclusion, rows)
        trail.append((int(index.nprobe), round(sample_recall(Xf, rows, found, exact), 4)))
        if trail[-1][1] >= target_recall or index.nprobe >= min(cap, index.nlist):
            return int(index.nprobe), trail
        step += 1


def _approximate_search(Xf, k, method, self_exclusion, c, seed, index_options, recall_sample,
                        target_recall) -> Neighbors:
    """IVF / HNSW search of :func:`nearest_neighbors` with its recall estimated (and nprobe tuned)."""
    import faiss

    n = Xf.shape[0]
    rng = np.random.default_rng([seed, 0x5EC])
    m = min(recall_sample, n)
    est_rows = np.sort(rng.choice(n, m, replace=False))
    index, params = _build_index(Xf, method, seed, *index_options)
    if method == "ivf" and index_options[1] is None:
        tune_rows = np.sort(rng.choice(n, min(recall_sample // 2, n), replace=False))
        exact_tune = _exact_sample(Xf, tune_rows, k, self_exclusion, c)
        index.nprobe, params["nprobe_trail"] = _tune_nprobe(index, Xf, tune_rows, exact_tune, k, self_exclusion, c,
                                                            target_recall)
        params["nprobe"] = int(index.nprobe)
    dist, ids = index.search(Xf, c)
    ids = ids.astype(np.int64, copy=False)
    bad = np.flatnonzero((ids < 0).any(axis=1))
    if bad.size:
        dist[bad], ids[bad] = faiss.knn(Xf[bad], Xf, c)
    params["n_exact_fallback"] = int(bad.size)
    del index
    ids, dist = _order_and_drop_self(ids, dist, k, self_exclusion)
    recall = sample_recall(Xf, est_rows, ids[est_rows], _exact_sample(Xf, est_rows, k, self_exclusion, c))
    return Neighbors(np.ascontiguousarray(ids), np.ascontiguousarray(dist, dtype=np.float32), method, params,
                     recall=recall, recall_queries=m)
