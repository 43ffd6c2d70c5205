"""D2ACE's end-of-epoch refresh: the two pool scores of every sample from the prediction window
(Liu et al. 2026; formulas as in the authors' code).

Written for sparse labels: with nnz(Y) = N Card positives, the masked correlations cost
O(N Card^2) (not O(N q^2)) and the correlation strengths, needed only at the positives,
O(sum_i card_i |Z_i|); the dense terms (label statistics, sum_j v_j E_ij) are O(N q), two fused
compiled passes over the stored tables (no N x q temporary is built).

Threads. The parallel kernels run on Numba's threads. Unless the user chose a threading layer
(``NUMBA_THREADING_LAYER``), :func:`d2ace_scores` selects Numba's ``workqueue`` layer for its
first launch (:func:`numba_threading_layer`): Numba's OpenMP layer would set the process-wide
OpenMP thread count, which torch shares, so ``torch.get_num_threads()`` would silently go from
the user's 1 to the number of cores after the first refresh (measured: training steps then ran up
to 10x slower with two runs on two cores). Numba launches its layer once per process; the
configuration value is restored afterwards. The kernels' results do not depend on the layer or
the number of threads (fixed partitions).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from mlbs.signals.vector_math import fsum, vexp

__all__ = ["LOSS_TRANSFORMS", "PositivesLayout", "d2ace_scores", "numba_threading_layer"]

LOSS_TRANSFORMS = ("1-exp", "2-exp")


@contextmanager
def numba_threading_layer(layer: str = "workqueue"):
    """Numba's threading layer set to ``layer`` inside the block unless the user chose one; the
    previous configuration value is restored on exit (see the module docstring)."""
    before = numba.config.THREADING_LAYER
    if before == "default":
        numba.config.THREADING_LAYER = layer
    try:
        yield
    finally:
        numba.config.THREADING_LAYER = before


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
    normalised into row j of C and read at the context Z_i of every positive of
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


def _normalised_columns(values, labels, eps):
    """M_hat at the positives (nnz, m): every label column of M divided by its norm + eps."""
    values = np.asarray(values, dtype=np.float64)
    q = labels.shape[1]
    norms = np.sqrt(np.stack([np.bincount(labels.indices, weights=v * v, minlength=q) for v in values.T], axis=1))
    return np.ascontiguousarray(values / (norms[labels.indices] + eps))


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
    """score^U and score^H of every sample (Liu et al. 2026, as the authors' code computes them).

    - h = g(l) (1 - phi), the hardness, with g(l) = 1 - e^(-l) (``"1-exp"``) or 2 - e^(-l)
      (``"2-exp"``, the authors' code);
    - v^U_j = exp(mu_j(E)/2 + sigma_j(E)/2), v^H_j likewise from h (population std, all N rows);
    - C^U, C^H the masked correlations of M = E (.) Y and M = h (.) Y: M_hat_{:,j} =
      M_{:,j} / (||M_{:,j}||_2 + eps), C = M_hat^T M_hat, C_jk /= sum_k' C_jk' + eps;
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
    with numba_threading_layer():
        return _scores(tables, labels, Z, layout, eps, max(int(chunk), 1))


def _scores(tables, labels, Z, layout, eps, chunk):
    """The passes of :func:`d2ace_scores` on checked inputs."""
    n = labels.shape[0]
    nnz = labels.indptr[-1]
    E_pos, h_pos = np.empty(nnz), np.empty(nnz)
    mean, std = _fused_moments(*tables, chunk, labels.indptr, labels.indices, E_pos, h_pos)
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
