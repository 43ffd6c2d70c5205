"""AdaC's chain batches (Zhou et al. 2024, section 3.5), drawn by Numba kernels.

The chain. A batch is a sequence s_1, ..., s_m of distinct samples. s_1 is drawn from P, the
policy's distribution over the n samples. For t >= 2, let j = sigma(s_{t-1}) be the previous
sample's seed label (its positive label of largest IRLbl), L_c(j) the labels most related to j,
D_c(j) the samples with at least one label in L_c(j), and Sel = {s_1, ..., s_{t-1}}. Then

    Pr(s_t = i | s_1, ..., s_{t-1}) = p_i [i in C] / sum_{i' in C} p_{i'},   C = D_c(j) \\ Sel,

with C = {0, ..., n-1} \\ Sel instead when s_{t-1} has no label, L_c(j) is empty or D_c(j) \\ Sel
has no mass (each such step counts as a fallback).

Restricted draws without a scan over D_c. Besides the index of the n samples (weights
proportional to p_i), a second index holds one entry per (label, sample) pair with y_il = 1,
grouped by label, each weighted as its sample: label l's samples are the contiguous range
[posting_ptr[l], posting_ptr[l+1]) of it, whose mass is a difference of two prefix sums. A
restricted draw picks l in L_c with probability proportional to that mass, then a pair of l's
range proportional to weight, and accepts its sample i with probability 1/c_i,
c_i = |Y_i intersect L_c|: i is reachable through c_i pairs, so an accepted sample has
probability exactly proportional to p_i over D_c. A sample already in Sel is rejected and the
draw repeated; after ``MAX_TRIES`` rejections in a row the step is finished exactly by
enumerating D_c \\ Sel (O(|D_c|)). Global draws reject the samples of Sel the same way and are
finished by enumerating all samples. Expected cost of a batch of m: O(m |L_c| log nnz(Y)).

Same draws as the compiled index. The kernels walk the trees of the two
:class:`mlbs.WeightedIndex` objects in place, reading their storage at its addresses
(``WeightedIndex._level_addresses()``: no copy, and one compiled kernel for every tree depth),
with the arithmetic of the index's ``locate`` and ``prefix``: block prefix sums added in the same
fixed order, the same child chosen at every level. Their uniforms come from the sample index's
own generator, xoshiro256** (Blackman & Vigna 2021), reproduced here on 64-bit unsigned
integers: its state is read before a batch and written back after it, so the index's later draws
continue the same stream, and a seed gives the batches that the former C++ chain gave. The
uniforms are not drawn by the core ahead of time because how many a batch consumes depends on
its rejections, known only while it is drawn. Like every use of an index, a draw must not run
while another thread uses the same indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from mlbs.core import WeightedIndex

__all__ = ["ChainGraph", "draw_chain", "MAX_TRIES"]

MAX_TRIES = 64  # rejections in a row before a step is finished by enumeration
_FANOUT = 8     # children per block of the index's tree
_RECORD = 16    # doubles per block record of an upper level: 8 values, then their prefix sums
_GRAPH_ARRAYS = ("seed_label", "related_ptr", "related", "posting_ptr", "posting_item", "label_ptr", "label_of")


@dataclass(frozen=True)
class ChainGraph:
    """The label structure of the chain draws, checked once, with read-only int64 arrays.

    ``seed_label`` (n,) in [-1, q); ``related_ptr``/``related``: CSR of the related labels of
    every label (ids in [0, q)); ``posting_ptr``/``posting_item``: the samples of every label
    (the (label, sample) pairs in label order); ``label_ptr``/``label_of``: the labels of every
    sample. Pointers start at 0, never decrease and end at their array's length.

    The seven arrays are read-only views into one buffer, ``packed``, which the kernel receives
    whole with their ``bounds``: two arguments instead of seven (Numba's dispatcher types a
    read-only array on its slow path, about a microsecond each).
    """

    seed_label: np.ndarray
    related_ptr: np.ndarray
    related: np.ndarray
    posting_ptr: np.ndarray
    posting_item: np.ndarray
    label_ptr: np.ndarray
    label_of: np.ndarray
    packed: np.ndarray = field(init=False, repr=False)  # the seven arrays, one after another
    bounds: np.ndarray = field(init=False, repr=False)  # where each starts, and the end

    def __post_init__(self):
        n, q = self.seed_label.size, self.related_ptr.size - 1
        for name, ptr, values, rows, bound in (("related", self.related_ptr, self.related, q, q),
                                               ("posting", self.posting_ptr, self.posting_item, q, n),
                                               ("label", self.label_ptr, self.label_of, n, q)):
            if ptr.shape != (rows + 1,) or ptr[0] != 0 or ptr[-1] != values.size or (np.diff(ptr) < 0).any():
                raise ValueError(f"{name} pointers must have {rows + 1} entries from 0 to {values.size}")
            if values.size and (values.min() < 0 or values.max() >= bound):
                raise ValueError(f"{name} ids must be in [0, {bound})")
        if self.posting_item.size != self.label_of.size:
            raise ValueError("the posting lists and the sample label lists must hold the same pairs")
        if n and (self.seed_label.min() < -1 or self.seed_label.max() >= q):
            raise ValueError(f"seed labels must be in [-1, {q})")
        arrays = [np.asarray(getattr(self, name), dtype=np.int64) for name in _GRAPH_ARRAYS]
        bounds = np.cumsum([0] + [a.size for a in arrays], dtype=np.int64)
        packed = np.concatenate(arrays)
        packed.flags.writeable = bounds.flags.writeable = False
        object.__setattr__(self, "packed", packed)
        object.__setattr__(self, "bounds", bounds)
        for name, lo, hi in zip(_GRAPH_ARRAYS, bounds[:-1], bounds[1:]):
            object.__setattr__(self, name, packed[lo:hi])

    @classmethod
    def of(cls, **arrays) -> "ChainGraph":
        return cls(**{k: np.ascontiguousarray(v, dtype=np.int64) for k, v in arrays.items()})



# -- xoshiro256** ------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _uniform(state):
    """Next uniform on [0, 1) of the generator whose 4-word state is updated in place: the top
    53 bits of one xoshiro256** output, times 2^-53."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    state[0], state[1], state[2], state[3] = s0, s1, s2, _rotl(s3, 45)
    return np.float64(result >> np.uint64(11)) * 2.0 ** -53


# -- the index's tree, level 0 the leaves, levels >= 1 the block records -------------------------

@intrinsic
def _doubles_at(typingctx, address):
    """The doubles stored at an address (int64), as a pointer that can be indexed."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.PointerType(ir.DoubleType()))
    return types.CPointer(types.float64)(types.int64), codegen


@njit(cache=True, inline="always")
def _block_prefix(values, start):
    """Inclusive prefix sums (P_0, ..., P_7) of the 8 magnitudes values[start:start+8], added in
    the index's order: pairs, quads on their pair, the upper half on the lower quad's total."""
    v0, v1, v2, v3 = abs(values[start]), abs(values[start + 1]), abs(values[start + 2]), abs(values[start + 3])
    v4, v5, v6, v7 = abs(values[start + 4]), abs(values[start + 5]), abs(values[start + 6]), abs(values[start + 7])
    p1, s3, s5, s7 = v0 + v1, v2 + v3, v4 + v5, v6 + v7
    p2, p3, s6, s7 = v2 + p1, s3 + p1, v6 + s5, s7 + s5
    return v0, p1, p2, p3, v4 + p3, s5 + p3, s6 + p3, s7 + p3


@njit(cache=True, inline="always")
def _stored_prefix(records, start):
    """The prefix sums stored in a block record (after its 8 values)."""
    r = start + _FANOUT
    return (records[r], records[r + 1], records[r + 2], records[r + 3],
            records[r + 4], records[r + 5], records[r + 6], records[r + 7])


@njit(cache=True, inline="always")
def _child(values, start, prefix, u):
    """(j, residual): the child of a block whose prefix sum first exceeds u, j = #{m : P_m <= u},
    with u - P_{j-1}; when rounding lets u reach the block's total, its last child of positive
    weight, entered at half its weight. P is non-decreasing, so P_{j-1} is the last P_m <= u."""
    j = 0
    below = 0.0
    for m in range(_FANOUT):
        if prefix[m] <= u:
            j += 1
            below = prefix[m]
    if j == _FANOUT:
        j = _FANOUT - 1
        while not abs(values[start + j]) > 0.0:
            j -= 1
        return j, 0.5 * abs(values[start + j])
    return j, u - below


@njit(cache=True, inline="always")
def _total(tree):
    """The index's total weight: the last prefix sum of the top block."""
    top = _doubles_at(tree[tree.size - 1])
    if tree.size == 1:
        return _block_prefix(top, 0)[_FANOUT - 1]
    return top[_RECORD - 1]


@njit(cache=True, inline="always")
def _locate(tree, u):
    """The item in which cumulative mass u falls (the index's ``locate``)."""
    node = 0
    for level in range(tree.size - 1, 0, -1):
        records = _doubles_at(tree[level])
        j, u = _child(records, node * _RECORD, _stored_prefix(records, node * _RECORD), u)
        node = node * _FANOUT + j
    leaves = _doubles_at(tree[0])
    j, u = _child(leaves, node * _FANOUT, _block_prefix(leaves, node * _FANOUT), u)
    return node * _FANOUT + j


@njit(cache=True, inline="always")
def _prefix(tree, size, i):
    """Sum of the weights of items 0..i-1 (the index's ``prefix``)."""
    if i >= size:
        return _total(tree)
    node = i // _FANOUT
    j = i % _FANOUT
    leaf_prefix = _block_prefix(_doubles_at(tree[0]), node * _FANOUT)
    s = 0.0
    for m in range(_FANOUT - 1):  # s = P_{j-1} of the leaf block (0 for j = 0), without a branch
        if m < j:
            s = leaf_prefix[m]
    for level in range(1, tree.size):
        j = node % _FANOUT
        node //= _FANOUT
        if j > 0:
            s += _doubles_at(tree[level])[node * _RECORD + _FANOUT + j - 1]
    return s


# -- the samples of the batch so far: open addressing, sized by the batch -----------------------

@njit(cache=True, inline="always")
def _slot(slots, key):
    h = (np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return np.int64(h & np.uint64(slots.size - 1))


@njit(cache=True, inline="always")
def _contains(slots, key):
    h = _slot(slots, key)
    while slots[h] != -1:
        if slots[h] == key:
            return True
        h = (h + 1) & (slots.size - 1)
    return False


@njit(cache=True, inline="always")
def _insert(slots, key):
    h = _slot(slots, key)
    while slots[h] != -1:
        h = (h + 1) & (slots.size - 1)
    slots[h] = key


# -- the chain -------------------------------------------------------------------------------------

@njit(cache=True)
def _global(items, n, state, selected):
    """A sample from P over the samples not selected yet."""
    total = _total(items)
    for _ in range(MAX_TRIES):
        i = _locate(items, _uniform(state) * total)
        if not _contains(selected, i):
            return i
    leaves = _doubles_at(items[0])
    mass = 0.0
    for i in range(n):
        if not _contains(selected, i):
            mass += leaves[i]
    u = _uniform(state) * mass
    last = -1
    for i in range(n):
        if _contains(selected, i) or leaves[i] <= 0.0:
            continue
        last = i
        if u < leaves[i]:
            return i
        u -= leaves[i]
    return last


@njit(cache=True, inline="always")
def _multiplicity(i, lc, label_ptr, label_of):
    """c_i = |Y_i intersect L_c|."""
    c = 0
    for e in range(label_ptr[i], label_ptr[i + 1]):
        for label in lc:
            if label == label_of[e]:
                c += 1
                break
    return c


@njit(cache=True)
def _exact_restricted(pairs, lc, posting_ptr, posting_item, state, selected):
    """A sample from P over D_c \\ Sel by enumeration, or -1 when that set has no mass."""
    count = 0
    for label in lc:
        count += posting_ptr[label + 1] - posting_ptr[label]
    position = np.empty(count, np.int64)
    item = np.empty(count, np.int64)
    c = 0
    for label in lc:
        for e in range(posting_ptr[label], posting_ptr[label + 1]):
            position[c] = e
            item[c] = posting_item[e]
            c += 1
    order = np.argsort(item)
    leaves = _doubles_at(pairs[0])
    mass = 0.0
    kept = 0
    for c in range(count):  # one pair per sample, in sample order (all pairs of a sample weigh the same)
        i = item[order[c]]
        if c > 0 and item[order[c - 1]] == i:
            continue
        w = leaves[position[order[c]]]
        if _contains(selected, i) or not w > 0.0:
            continue
        order[kept] = order[c]
        kept += 1
        mass += w
    if kept == 0 or not mass > 0.0:
        return -1
    u = _uniform(state) * mass
    for c in range(kept):
        w = leaves[position[order[c]]]
        if u < w or c + 1 == kept:
            return item[order[c]]
        u -= w
    return -1


@njit(cache=True)
def _restricted(pairs, n_pairs, lc, posting_ptr, posting_item, label_ptr, label_of, state, selected, mass):
    """A sample from P over D_c \\ Sel for the related labels lc, or -1 when that set has no mass."""
    K = lc.size
    if K == 0:
        return -1
    total = 0.0
    for a in range(K):
        label = lc[a]
        mass[a] = max(0.0, _prefix(pairs, n_pairs, posting_ptr[label + 1])
                      - _prefix(pairs, n_pairs, posting_ptr[label]))
        total += mass[a]
    if not total > 0.0:
        return -1
    for _ in range(MAX_TRIES):
        u = _uniform(state) * total
        a = 0
        while a + 1 < K and u >= mass[a]:
            u -= mass[a]
            a += 1
        if not mass[a] > 0.0:
            continue
        lo, hi = posting_ptr[lc[a]], posting_ptr[lc[a] + 1]
        e = _locate(pairs, _prefix(pairs, n_pairs, lo) + _uniform(state) * mass[a])
        if e < lo or e >= hi:  # rounding at the range's edge
            continue
        i = posting_item[e]
        c = _multiplicity(i, lc, label_ptr, label_of)
        if c > 1 and _uniform(state) * c >= 1.0:
            continue
        if not _contains(selected, i):
            return i
    return _exact_restricted(pairs, lc, posting_ptr, posting_item, state, selected)


@njit(cache=True)
def _chain(items, n, pairs, n_pairs, state, packed, bounds, out):
    """Fill out with one chain batch; returns the number of steps that fell back to P."""
    seed_label, related_ptr, related, posting_ptr, posting_item, label_ptr, label_of = (
        packed[bounds[0]:bounds[1]], packed[bounds[1]:bounds[2]], packed[bounds[2]:bounds[3]],
        packed[bounds[3]:bounds[4]], packed[bounds[4]:bounds[5]], packed[bounds[5]:bounds[6]],
        packed[bounds[6]:bounds[7]])
    m = out.size
    capacity = 16
    while capacity < 8 * m:
        capacity *= 2
    selected = np.full(capacity, -1, np.int64)
    mass = np.empty(max(1, related.size), np.float64)
    fallbacks = 0
    for t in range(m):
        nxt = -1
        if t > 0:
            j = seed_label[out[t - 1]]
            if j >= 0:
                nxt = _restricted(pairs, n_pairs, related[related_ptr[j]:related_ptr[j + 1]], posting_ptr,
                                  posting_item, label_ptr, label_of, state, selected, mass)
            if nxt < 0:
                fallbacks += 1
        if nxt < 0:
            nxt = _global(items, n, state, selected)
        _insert(selected, nxt)
        out[t] = nxt
    return fallbacks


def draw_chain(items: WeightedIndex, pairs: WeightedIndex, graph: ChainGraph, k: int):
    """One chain batch of k distinct samples: (batch as an int64 array, number of fallback steps).

    ``items`` is the index of the n samples, weighted by P up to a constant; its generator
    supplies the uniforms and is advanced. ``pairs`` is the index of the (label, sample) pairs in
    the order of ``graph.posting_item``, each weighted as its sample. At most as many samples as
    have positive weight can be drawn.
    """
    if not isinstance(graph, ChainGraph):
        raise TypeError(f"graph must be a ChainGraph, got {type(graph).__name__}")
    if not (isinstance(items, WeightedIndex) and isinstance(pairs, WeightedIndex)):
        raise TypeError("items and pairs must be WeightedIndex objects")
    n = graph.seed_label.size
    if len(items) != n or len(pairs) != graph.posting_item.size:
        raise ValueError(f"items must hold {n} samples and pairs {graph.posting_item.size} pairs, "
                         f"got {len(items)} and {len(pairs)}")
    k = int(k)
    if not 0 <= k <= items.nonzero():
        raise ValueError(f"cannot draw {k} distinct samples: {items.nonzero()} of the {n} have positive weight")
    out = np.empty(k, np.int64)
    state = np.array(items.rng_state, dtype=np.uint64)
    fallbacks = _chain(items._level_addresses(), n, pairs._level_addresses(), len(pairs), state, graph.packed,
                       graph.bounds, out)
    items.rng_state = tuple(state.tolist())
    return out, int(fallbacks)
