"""``D2ACE``: dual dynamics and adaptive correlation enhancement ([PD]; code [CD]; methods.md 8).

The end-of-epoch refresh (8.3) is written for sparse labels: with nnz(Y) = N Card positives,
the masked correlations cost O(N Card^2) (not O(N q^2)) and the correlation strengths, needed
only at the positives, O(sum_i card_i |Z_i|); the dense terms (label statistics, sum_j v_j E_ij)
are O(N q), two fused compiled passes over the stored tables (no N x q temporary is built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from mlbs import WeightedIndex
from mlbs.policies.epochwise import EpochPolicy, resolve_options
from mlbs.policies.schedules import check_schedule, d2ace_beta, d2ace_pressure
from mlbs.policies.signals import PredictionWindow, fsum, vexp
from mlbs.policies.transforms import quantized_min_max

# The refresh's parallel kernels run on numba's "workqueue" threads unless the user chose a
# threading layer. Numba's OpenMP layer would set the process-wide OpenMP thread count, which
# torch shares: torch.get_num_threads() would silently go from the user's 1 to the number of
# cores after the first refresh (measured: training steps then ran up to 10x slower with two
# runs on two cores). The kernels' results do not depend on the layer (fixed partitions).
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"

LOSS_TRANSFORMS = ("1-exp", "2-exp")
MIXTURES = ("deterministic", "per_draw", "per_batch")

#: compat preset ``"d2ace"`` (methods.md 8.5 D1, D4; 2.3 clip; 2.6 NaNs).
D2ACE_PRESETS = {"d2ace": {"loss_transform": "2-exp", "qmm_clip": True, "entropy_nan": True, "short_nan": True}}


def local_context(labels: sp.csr_matrix, neighbors: np.ndarray) -> sp.csr_matrix:
    """Z (CSR, 0/1): Z_ik = 1 iff label k is positive for some sample of {i} u kNN(i) (8.3 step 3).

    ``neighbors`` (n, k) holds the neighbour ids without self; self is always added. Cost
    O(n (k + 1) card_max) through the sparse product A Y, A the (n, n) neighbourhood matrix.
    """
    n = labels.shape[0]
    nb = np.asarray(neighbors)
    if nb.ndim != 2 or nb.shape[0] != n:
        raise ValueError(f"neighbors must have shape ({n}, k), got {nb.shape}")
    if nb.size and (nb.dtype.kind not in "iu" or nb.min() < 0 or nb.max() >= n):
        raise ValueError(f"neighbors must be integer sample ids in [0, {n})")
    cols = np.concatenate([np.arange(n)[:, None], nb.astype(np.int64)], axis=1)
    A = sp.csr_matrix((np.ones(cols.size), cols.ravel(), np.arange(0, cols.size + 1, cols.shape[1])),
                      shape=(n, n))
    Z = sp.csr_matrix(A @ labels.astype(np.float64))
    Z.sum_duplicates()
    Z.data[:] = 1.0
    Z.sort_indices()
    return Z


def hardness(loss: np.ndarray, phi: np.ndarray, transform: str = "1-exp") -> np.ndarray:
    """h = g(l) (1 - phi), g(l) = 1 - e^(-l) (default) or 2 - e^(-l) (compat "2-exp", D1)."""
    if transform not in LOSS_TRANSFORMS:
        raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {transform!r}")
    g = -np.expm1(-np.asarray(loss, dtype=np.float64))
    if transform == "2-exp":
        g += 1.0
    return g * (1.0 - np.asarray(phi, dtype=np.float64))


# -- the dense O(N q) passes, fused ---------------------------------------------------------------
# A table is read as it is stored: float32 / float64 entries are converted on the fly; float16
# tables are passed as their uint16 bit patterns with a 65,536-entry float64 look-up table (of the
# value, or directly of g(l) for the loss), since numba has no float16 arithmetic. h is computed
# in float64 from the stored l and phi exactly as the dense transcription writes it,
# g(l) = 1 - e^(-l) (+ 1 for "2-exp"), with the vectorisable :func:`vexp` (<= 1 ulp from libm).


def _entry(x, lut):
    raise NotImplementedError


@overload(_entry)
def _entry_impl(x, lut):
    if isinstance(x, types.Integer):
        return lambda x, lut: lut[x]
    return lambda x, lut: np.float64(x)


def _g_entry(x, lut, two):
    raise NotImplementedError


@overload(_g_entry)
def _g_entry_impl(x, lut, two):
    if isinstance(x, types.Integer):
        return lambda x, lut, two: lut[x]
    return lambda x, lut, two: (1.0 - vexp(-np.float64(x))) + two


#: The dense passes split the rows into at most this many fixed parts, summed in part order, so
#: that the result does not depend on the number of threads that run them.
_PARTS = 64


@njit(cache=True, error_model="numpy", fastmath={"contract"}, parallel=True)
def _fused_moments(E, L, F, lut_e, lut_g, lut_f, two, block, y_indptr, y_indices, e_pos, h_pos):  # pragma: no cover
    """Column means and population stds of E and h = g(l) (1 - phi), one pass over the tables;
    E and h at the positives (CSR order of Y) into ``e_pos``, ``h_pos`` on the way.

    Shifted sums (shift: row 0, so |mean - shift|^2 <= N var and the cancellation in
    var = S2/N - (S1/N)^2 costs at most ~N ulp of var), summed per block of ``block`` rows into
    the sums of a fixed part of the rows (parts in parallel), then the parts' sums merged in
    order: the same result with any number of threads.
    """
    n, q = E.shape
    ke, kh = np.empty(q), np.empty(q)
    for j in range(q):
        ke[j] = _entry(E[0, j], lut_e)
        kh[j] = _g_entry(L[0, j], lut_g, two) * (1.0 - _entry(F[0, j], lut_f))
    blocks = (n + block - 1) // block
    parts = min(blocks, _PARTS)
    per_part = (blocks + parts - 1) // parts
    part_sums = np.zeros((parts, 4, q))
    for part in prange(parts):
        acc = np.zeros((4, q))
        for b in range(part * per_part, min((part + 1) * per_part, blocks)):
            acc[:] = 0.0
            a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
            for i in range(b * block, min((b + 1) * block, n)):
                for j in range(q):
                    e = _entry(E[i, j], lut_e) - ke[j]
                    h = _g_entry(L[i, j], lut_g, two) * (1.0 - _entry(F[i, j], lut_f)) - kh[j]
                    a0[j] += e
                    a1[j] += e * e
                    a2[j] += h
                    a3[j] += h * h
                for t in range(y_indptr[i], y_indptr[i + 1]):   # the row is in cache
                    col = y_indices[t]
                    e_pos[t] = _entry(E[i, col], lut_e)
                    h_pos[t] = _g_entry(L[i, col], lut_g, two) * (1.0 - _entry(F[i, col], lut_f))
            part_sums[part] += acc
    tot = np.zeros((4, q))
    for part in range(parts):
        tot += part_sums[part]
    mean, std = np.empty((2, q)), np.empty((2, q))
    for j in range(q):
        for r, shift in ((0, ke[j]), (1, kh[j])):
            m1 = tot[2 * r, j] / n
            var = tot[2 * r + 1, j] / n - m1 * m1
            if var < 0.0:
                var = 0.0
            mean[r, j] = shift + m1
            std[r, j] = math.sqrt(var)
    return mean, std


@njit(cache=True, error_model="numpy", fastmath={"contract"}, parallel=True)
def _fused_dense_scores(E, L, F, lut_e, lut_g, lut_f, two, vU, vH, out_u, out_h):  # pragma: no cover
    """out_u[i] += sum_j vU_j E_ij, out_h[i] += sum_j vH_j h_ij, one pass over the tables
    (blocks of 64 rows in parallel; every row's sums are the same whatever the thread count)."""
    n, q = E.shape
    for b in prange((n + 63) // 64):
        bu, bh = np.empty(q), np.empty(q)
        for i in range(64 * b, min(64 * (b + 1), n)):
            for j in range(q):
                bu[j] = vU[j] * _entry(E[i, j], lut_e)
                bh[j] = vH[j] * (_g_entry(L[i, j], lut_g, two) * (1.0 - _entry(F[i, j], lut_f)))
            out_u[i] += fsum(bu)
            out_h[i] += fsum(bh)


_NO_LUT = np.zeros(0)


def _kernel_table(a: np.ndarray, g_plus=None):
    """(array as the kernels read it, its look-up table): float16 -> (uint16 bits, LUT)."""
    a = np.asarray(a)
    if a.dtype == np.float16:
        vals = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float64)
        if g_plus is not None:
            with np.errstate(all="ignore"):
                vals = (1.0 - np.exp(-vals)) + g_plus
        return np.ascontiguousarray(a).view(np.uint16), vals
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a), _NO_LUT


def _tables(E, phi, loss, transform):
    two = 1.0 if transform == "2-exp" else 0.0
    (e, le), (lo, lg), (f, lf) = _kernel_table(E), _kernel_table(loss, two), _kernel_table(phi)
    return (e, lo, f, le, lg, lf, two)


@intrinsic
def _prefetch(typingctx, arr, idx):  # pragma: no cover (compiled)
    """Hint the cache to load ``arr[idx]`` (1-d array; llvm.prefetch, read, high locality)."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = builder.gep(ary.data, [context.cast(builder, args[1], idxty, types.intp)])
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


_AHEAD = 4  # positives ahead whose rows are prefetched


@njit(cache=True, error_model="numpy", parallel=True)
def _correlation_strengths(c_indptr, c_rows, c_pos, y_indptr, y_indices, mhat, z_indptr, z_indices,
                           eps, S):  # pragma: no cover
    """S[t] = sum_{k in supp Z_i} (C^U_jk, C^H_jk) at every positive t = (i, j), label by label.

    Y in CSC (``c_pos`` the CSR position of each entry); ``mhat`` (nnz, 2) holds M_hat^U and
    M_hat^H at the positives in CSR order. Row j of both Gram matrices G = M_hat^T M_hat is
    accumulated in a dense (q, 2) buffer (sum over i ascending, the order of scipy's product),
    normalised into row j of C (8.3 step 4) and read at the context Z_i of every positive of
    label j while it is in cache (one gather serves both); C is never stored. Labels run in
    parallel (each writes only its own positives' S).
    """
    q = c_indptr.size - 1
    mhat_flat = mhat.reshape(mhat.size)
    for j in prange(q):
        lo, hi = c_indptr[j], c_indptr[j + 1]
        if lo == hi:
            continue
        acc = np.zeros((q, 2))
        for t in range(lo, hi):
            if t + _AHEAD < hi:
                ip = c_rows[t + _AHEAD]
                _prefetch(y_indices, y_indptr[ip])
                _prefetch(mhat_flat, 2 * y_indptr[ip])
            i, a = c_rows[t], c_pos[t]
            au, ah = mhat[a, 0], mhat[a, 1]
            for b in range(y_indptr[i], y_indptr[i + 1]):
                k = y_indices[b]
                acc[k, 0] += au * mhat[b, 0]
                acc[k, 1] += ah * mhat[b, 1]
        tu, th = 0.0, 0.0
        for k in range(q):
            tu += acc[k, 0]
            th += acc[k, 1]
        tu, th = tu + eps, th + eps
        for k in range(q):
            acc[k, 0] /= tu
            acc[k, 1] /= th
        for t in range(lo, hi):
            if t + _AHEAD < hi:
                ip = c_rows[t + _AHEAD]
                for u in range(z_indptr[ip], z_indptr[ip + 1], 32):
                    _prefetch(z_indices, u)
            i = c_rows[t]
            # two interleaved partial sums per score (the add latency, not the loads, bounds a
            # single chain); summed pairwise at the end
            su0, sh0, su1, sh1 = 0.0, 0.0, 0.0, 0.0
            u, end = z_indptr[i], z_indptr[i + 1]
            while u + 1 < end:
                k0, k1 = z_indices[u], z_indices[u + 1]
                su0 += acc[k0, 0]
                sh0 += acc[k0, 1]
                su1 += acc[k1, 0]
                sh1 += acc[k1, 1]
                u += 2
            if u < end:
                k0 = z_indices[u]
                su0 += acc[k0, 0]
                sh0 += acc[k0, 1]
            S[c_pos[t], 0] = su0 + su1
            S[c_pos[t], 1] = sh0 + sh1


@njit(cache=True, error_model="numpy")
def _gram(indptr, indices, vals, q):  # pragma: no cover
    """G[j, k, c] = sum_i M_ij M_ik of the sparse M with values ``vals[:, c]`` at the positives.

    Rows of M in order, so every entry is summed over i ascending (as scipy's product does);
    the m value columns share each update's cache line. O(sum_i card_i^2 m).
    """
    m = vals.shape[1]
    G = np.zeros((q, q, m))
    for i in range(indptr.size - 1):
        for a in range(indptr[i], indptr[i + 1]):
            ja = indices[a]
            for b in range(indptr[i], indptr[i + 1]):
                jb = indices[b]
                for c in range(m):
                    G[ja, jb, c] += vals[a, c] * vals[b, c]
    return G


def _normalised_columns(values, labels, eps):
    """M_hat at the positives (nnz, m): every label column of M divided by its norm + eps."""
    values = np.asarray(values, dtype=np.float64).reshape(labels.indices.size, -1)
    q = labels.shape[1]
    norms = np.sqrt(np.stack([np.bincount(labels.indices, weights=v * v, minlength=q) for v in values.T], axis=1))
    return np.ascontiguousarray(values / (norms[labels.indices] + eps))


def masked_correlations(values: np.ndarray, labels: sp.csr_matrix, eps: float = 1e-8) -> list:
    """:func:`masked_correlation` of every column of ``values`` (nnz, m), in one pass over Y."""
    mhat = _normalised_columns(values, labels, eps)
    G = _gram(labels.indptr, labels.indices, mhat, labels.shape[1])
    out = []
    for c in range(values.shape[1]):
        C = np.ascontiguousarray(G[:, :, c])
        out.append(C / (C.sum(axis=1, keepdims=True) + eps))
    return out


def masked_correlation(values: np.ndarray, labels: sp.csr_matrix, eps: float = 1e-8) -> np.ndarray:
    """C of M = X (.) Y from the values X_ij at the positives (CSR order of Y), dense (q, q).

    M_hat_{:,j} = M_{:,j} / (||M_{:,j}||_2 + eps); C = M_hat^T M_hat; C_jk /= sum_k' C_jk' + eps
    (8.3 step 4). The Gram matrix of a sparse matrix costs O(sum_i card_i^2).
    """
    return masked_correlations(values, labels, eps)[0]


@dataclass(frozen=True)
class PositivesLayout:
    """The index structures of the refresh that depend only on Y and Z (built once per training
    set by :meth:`of`): the row of every positive (CSR order), the positives grouped by label
    (CSC: ``by_label_indptr``, their rows, their CSR positions), and Z's column ids in 16 bits
    where q allows (half the cache lines of the gathers)."""

    rows: np.ndarray
    by_label_indptr: np.ndarray
    by_label_rows: np.ndarray
    by_label_pos: np.ndarray
    z_indices: np.ndarray

    @classmethod
    def of(cls, labels: sp.csr_matrix, Z: sp.csr_matrix) -> "PositivesLayout":
        n, q = labels.shape
        nnz = labels.indptr[-1]
        by_label = sp.csr_matrix((np.arange(nnz, dtype=np.int64), labels.indices, labels.indptr), shape=(n, q)).tocsc()
        return cls(rows=np.repeat(np.arange(n), np.diff(labels.indptr)), by_label_indptr=by_label.indptr,
                   by_label_rows=by_label.indices, by_label_pos=by_label.data,
                   z_indices=Z.indices.astype(np.uint16) if q <= 65536 else Z.indices)


def d2ace_scores(E, phi, loss, labels: sp.csr_matrix, Z: sp.csr_matrix, *, loss_transform: str = "1-exp",
                 eps: float = 1e-8, chunk: int = 256, layout: PositivesLayout | None = None):
    """score^U and score^H of every sample (methods.md 8.3 steps 1-6).

    - h = g(l) (1 - phi) (:func:`hardness`);
    - v^U_j = exp(mu_j(E)/2 + sigma_j(E)/2), v^H_j likewise from h (population std, all N rows);
    - C^U, C^H from E (.) Y and h (.) Y (:func:`masked_correlation`);
    - S = Z C^T, needed only where y_ij = 1;
    - score^U_i = sum_j v^U_j E_ij (1 + y_ij S^U_ij), score^H_i = sum_j v^H_j h_ij (1 + y_ij S^H_ij).

    Parameters
    ----------
    E, phi, loss : ndarray, shape (N, q)
        The signal tables (any float dtype; computed in float64).
    labels, Z : csr_matrix, shape (N, q)
        0/1 labels and local context, canonical (sorted, no duplicates).
    chunk : int
        Rows per block of the partial column sums of the moments pass.
    layout : PositivesLayout, optional
        ``PositivesLayout.of(labels, Z)``, kept by the caller between refreshes (built when None).
    """
    n, q = labels.shape
    if not (E.shape == phi.shape == loss.shape == (n, q)):
        raise ValueError(f"E, phi and loss must have shape {(n, q)}, got {E.shape}, {phi.shape}, {loss.shape}")
    if loss_transform not in LOSS_TRANSFORMS:
        raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {loss_transform!r}")
    tables = _tables(E, phi, loss, loss_transform)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    layout = PositivesLayout.of(labels, Z) if layout is None else layout
    nnz = labels.indptr[-1]
    E_pos, h_pos = np.empty(nnz), np.empty(nnz)
    mean, std = _fused_moments(*tables, max(int(chunk), 1), labels.indptr, labels.indices, E_pos, h_pos)
    vU, vH = np.exp(0.5 * mean + 0.5 * std)
    cols = labels.indices
    mhat = _normalised_columns(np.stack([E_pos, h_pos], axis=1), labels, eps)
    S = np.empty((nnz, 2))
    _correlation_strengths(layout.by_label_indptr, layout.by_label_rows, layout.by_label_pos, labels.indptr,
                           labels.indices, mhat, Z.indptr, layout.z_indices, eps, S)
    SU, SH = S[:, 0], S[:, 1]
    score_u = np.bincount(layout.rows, weights=vU[cols] * E_pos * SU, minlength=n)
    score_h = np.bincount(layout.rows, weights=vH[cols] * h_pos * SH, minlength=n)
    _fused_dense_scores(*tables, vU, vH, score_u, score_h)
    return score_u, score_h


class D2ACE(EpochPolicy):
    """P = beta(e) P^U + (1 - beta(e)) P^H, each pool a normalised QMM of its score (methods.md 8).

    Per visit (:class:`PredictionWindow` with phi and the per-label loss, 8.2): the window of the
    last w probabilities, E, phi and l. End of epoch e (:func:`d2ace_scores`, 8.3): the label
    weights, the local context Z (static, built once from the kNN graph, 2.7: k neighbours and
    self), the masked correlations and the scores; P^U = QMM(score^U, s(e)), P^H =
    QMM(score^H, s(e)); s and beta read at the lagged epoch (D8).

    Mixture semantics (8.4, D2), all drawn from weighted indices:

    - ``"deterministic"`` ([CD]): one index holding beta P^U + (1 - beta) P^H;
    - ``"per_draw"`` (the paper's "Bernoulli mixture"): one index per pool; for each slot of a
      batch z ~ Bernoulli(beta) (the policy's seeded generator), the next sample is drawn from
      P^U (z = 1) or P^H renormalised over the samples not yet in the batch, in both pools;
    - ``"per_batch"``: one z per batch, the whole batch from that pool.

    :meth:`probabilities` is the law of a batch's first draw, beta P^U + (1 - beta) P^H, in
    every mode.

    Memory: per entry w b_w + 3 b_t bytes (window, E, phi, l; see :class:`PredictionWindow`);
    per sample 8 bytes of counts and 8.5 bytes per weighted index; Z: 14 bytes per nonzero
    (at most (k + 1) card_max per row; 2 of them for the 16-bit copy of :class:`PositivesLayout`);
    per positive of Y, 20 bytes of layout and 48 bytes of refresh temporaries; the correlation
    matrices are never stored (one q x 2 row per thread).

    Parameters
    ----------
    labels : (n, q) 0/1 labels.
    features : (n, d) array, optional
        Training features (scaled as for training) for the kNN graph.
    neighbors : (n, k) int array, optional
        Precomputed neighbour ids, self excluded (instead of ``features``).
    k : int
        Neighbours (default 6; self is added).
    window : int
        w (default 5).
    alpha : float
        EMA weight of phi (default 0.7).
    pressure, beta : float or callable epoch -> value
        Defaults ``ExpDecay(8, 1, 10, 100, floor=1)`` and ``Linear(0.7, 0.3, 10, 70)``.
    mixture : {"deterministic", "per_draw", "per_batch"}
    loss_transform : {"1-exp", "2-exp"}
        g(l) of the hardness; default 1 - e^(-l) (the paper's evident intent), "2-exp" the code (D1).
    qmm_clip : bool
        Clamp the QMM levels to [1, N] ([CD]; default False, 2.3).
    entropy_nan, short_nan : bool
        compat NaNs (2.6): a NaN score makes its pool uniform, as in [CD] (D4).
    eps : float
        epsilon of the normalisations (1e-8).
    window_dtype, table_dtype : str
        Storage of the window and of E, phi, l (see :class:`PredictionWindow`).
    schedule_eval : {"lagged", "current"}
    compat : {None, "d2ace"}
    seed : int
    knn_options : dict, optional
        Passed to :func:`mlbs.knn.nearest_neighbors`.
    """

    def __init__(self, labels, features=None, *, neighbors=None, k: int = 6, window: int = 5,
                 alpha: float = 0.7, pressure=None, beta=None, mixture: str = "deterministic",
                 loss_transform=None, qmm_clip=None, entropy_nan=None, short_nan=None, eps: float = 1e-8,
                 window_dtype: str = "float32", table_dtype: str = "float32", schedule_eval: str = "lagged",
                 compat=None, refresh: str = "epoch", seed: int = 0, knn_options=None):
        super().__init__(labels, refresh=refresh, schedule_eval=schedule_eval, seed=seed)
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {mixture!r}")
        opts = resolve_options(D2ACE_PRESETS, compat,
                               {"loss_transform": loss_transform, "qmm_clip": qmm_clip,
                                "entropy_nan": entropy_nan, "short_nan": short_nan},
                               {"loss_transform": "1-exp", "qmm_clip": False, "entropy_nan": False,
                                "short_nan": False})
        if opts["loss_transform"] not in LOSS_TRANSFORMS:
            raise ValueError(f"loss_transform must be one of {LOSS_TRANSFORMS}, got {opts['loss_transform']!r}")
        if not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
        self.loss_transform, self.qmm_clip = opts["loss_transform"], bool(opts["qmm_clip"])
        self.nan_compat = bool(opts["entropy_nan"] or opts["short_nan"])
        self.pressure = check_schedule("pressure", d2ace_pressure() if pressure is None else pressure)
        self.beta_schedule = check_schedule("beta", d2ace_beta() if beta is None else beta)
        self.mixture, self.eps = mixture, float(eps)
        self.signals = PredictionWindow(self.n, self.q, window=window, window_dtype=window_dtype,
                                        table_dtype=table_dtype, track_phi=True, track_loss=True,
                                        alpha=alpha, entropy_nan=opts["entropy_nan"],
                                        short_nan=opts["short_nan"])
        self.Z = local_context(self.labels, self._neighbors(features, neighbors, k, knn_options or {}))
        self.layout = PositivesLayout.of(self.labels, self.Z)
        self.beta = 0.5
        self.pools = None
        if mixture != "deterministic":
            self.pools = (WeightedIndex(self.n, seed=seed + 1), WeightedIndex(self.n, seed=seed + 2))
            self.pool_w = (np.ones(self.n), np.ones(self.n))
            for pool, w in zip(self.pools, self.pool_w):
                pool.assign(w)
            self.rng = np.random.default_rng([seed, 3])

    def _neighbors(self, features, neighbors, k, knn_options) -> np.ndarray:
        if neighbors is not None:
            return np.asarray(neighbors)
        if features is None:
            raise ValueError("D2ACE needs the training features (for the kNN local context) or neighbors=")
        from mlbs.knn import nearest_neighbors

        return nearest_neighbors(features, k, **knn_options).indices

    def _visit(self, idx, outputs, kind):
        return self.signals.visit(idx, outputs, kind, self.labels)

    def pool_weights(self, epoch: int):
        """(omega^U, omega^H, beta) at the given evaluation epoch."""
        beta = float(self.beta_schedule(epoch))
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta({epoch}) = {beta} is outside [0, 1]")
        s = self.signals
        with np.errstate(invalid="ignore" if self.nan_compat else "warn"):
            su, sh = d2ace_scores(s.E, s.phi, s.loss, self.labels, self.Z, layout=self.layout,
                                  loss_transform=self.loss_transform, eps=self.eps)
        nonfinite = "uniform" if self.nan_compat else "raise"
        pressure = self.pressure(epoch)
        wu = quantized_min_max(su, pressure, clip=self.qmm_clip, nonfinite=nonfinite)
        wh = quantized_min_max(sh, pressure, clip=self.qmm_clip, nonfinite=nonfinite)
        return wu, wh, beta

    def rebuild(self) -> None:
        wu, wh, self.beta = self.pool_weights(self.schedule_epoch)
        if self.pools is None:
            self.index.assign(self.beta * wu / wu.sum() + (1.0 - self.beta) * wh / wh.sum())
        else:
            self.pool_w = (wu, wh)
            self.pools[0].assign(wu)
            self.pools[1].assign(wh)

    def draw(self, k: int) -> np.ndarray:
        if self.pools is None:
            return self.index.draw_distinct(k)
        k = int(k)
        if not 0 <= k <= self.n:
            raise ValueError(f"cannot draw {k} distinct samples out of {self.n}")
        if self.mixture == "per_batch":
            return self.pools[0 if self.rng.random() < self.beta else 1].draw_distinct(k)
        return self._draw_per_slot(self.rng.random(k) < self.beta)

    def _draw_per_slot(self, from_u: np.ndarray) -> np.ndarray:
        """Runs of equal pool choices drawn with draw_distinct; drawn samples zeroed in both pools
        until the batch is complete, then restored from ``pool_w`` (O(k log N))."""
        out = []
        try:
            bounds = np.flatnonzero(np.diff(from_u.astype(np.int8))) + 1
            for run in np.split(np.arange(from_u.size), bounds):
                if run.size == 0:
                    continue
                got = self.pools[0 if from_u[run[0]] else 1].draw_distinct(run.size)
                for pool in self.pools:
                    pool.update(got, np.zeros(got.size))
                out.append(got)
        finally:
            drawn = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
            for pool, w in zip(self.pools, self.pool_w):
                pool.update(drawn, w[drawn])
        return drawn

    def probabilities(self) -> np.ndarray:
        if self.pools is None:
            return self.index.probabilities()
        return self.beta * self.pools[0].probabilities() + (1.0 - self.beta) * self.pools[1].probabilities()

    def state_dict(self) -> dict:
        state = {**super().state_dict(), "signals": self.signals.state_dict(), "beta": self.beta}
        if self.pools is not None:
            state["pools"] = [(p.weights(), p.rng_state) for p in self.pools]
            state["mixture_rng"] = self.rng.bit_generator.state
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.signals.load_state_dict(state["signals"])
        self.beta = float(state["beta"])
        if self.pools is not None:
            self.pool_w = tuple(np.asarray(w, dtype=np.float64).copy() for w, _ in state["pools"])
            for pool, w, (_, rng) in zip(self.pools, self.pool_w, state["pools"]):
                pool.assign(w)
                pool.rng_state = tuple(rng)
            self.rng.bit_generator.state = state["mixture_rng"]
