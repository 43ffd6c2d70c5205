// WeightedIndex: n items with non-negative fp64 weights; O(log n) batched updates and weighted
// draws, with and without replacement.
//
// Layout. A 16-ary sum tree stored level by level. Level 0 holds the n leaf weights (padded with
// zeros to a multiple of 16); entry j of level l+1 is the total of block j (16 entries) of level
// l; the top level is a single block whose total is the total weight. Each block is stored as
// one 256-byte record, aligned to 64 bytes: its 16 values, then their inclusive prefix sums
// P_0..P_15 (fixed summation order, see block_prefix), whose last is the block's total. A walk
// reads the two cache lines of prefix sums; an update rewrites one record per level. A tree over
// 10^6 items is 5 levels deep (10^7: 6). Memory: 16 bytes per item, plus 16/15 for the levels
// above the leaves.
//
// Exactness. Prefix sums are always recomputed from a block's values (never updated by adding
// deltas), so the tree is a pure function of the leaf weights: no drift after any number of
// updates, and identical trees after identical weights, whatever the order of the updates that
// produced them. Floating-point contraction is disabled at compile time and every sum has a
// fixed order, so the same seed gives the same draws on every platform.
//
// Draws. A draw takes u uniform on [0, total) and walks down; in a block it takes the child
// j = #{i : P_i <= u}, the first child whose prefix sum exceeds u, and continues with
// u - P_{j-1}. Prefix sums are non-decreasing, so P_j > u >= P_{j-1} means v_j > 0: a child of
// weight zero is never chosen. When rounding lets u reach the block total, the last child of
// positive weight is taken. The search is 16 independent comparisons (vectorised, no branch to
// mispredict), and walks run in groups of kGroup, one level at a time, each prefetching its next
// block, so the memory latency of the lower levels overlaps across walks. Updates skip the
// random walk on the upper levels: a level with no more blocks than the batch has updates is
// recomputed whole, in memory order.
//
// Distinct draws are exact sequential sampling without replacement (each next index proportional
// to weight among those not drawn yet, like numpy's Generator.choice(replace=False, p=...)), by
// rejection of repeats: an independent draw from the full distribution, conditioned on not
// being a repeat, has exactly that law. When the already drawn mass exceeds half of the current
// total, the drawn items are taken out of the tree (weight 0) so acceptance stays above 1/2; they
// are written back at the end, which restores the tree bit for bit.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "prefetch.hpp"
#include "rng.hpp"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif


namespace mlbs {

// std::allocator replacement that aligns to cache lines (64 bytes).
template <class T>
struct CacheAligned {
  using value_type = T;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(std::size_t count) {
    return static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};

// Checks shared by the structures of the core. They throw std::invalid_argument (ValueError in
// Python) or std::out_of_range (IndexError) naming the first offending position.
inline void check_indices(const std::int64_t* idx, std::size_t k, std::size_t n) {
  for (std::size_t t = 0; t < k; ++t) {
    if (idx[t] < 0 || static_cast<std::uint64_t>(idx[t]) >= n)
      throw std::out_of_range("index " + std::to_string(idx[t]) + " at position " +
                              std::to_string(t) + " is out of range for " + std::to_string(n) +
                              " items");
  }
}

inline void check_weights(const double* w, std::size_t k, const std::int64_t* idx = nullptr) {
  for (std::size_t t = 0; t < k; ++t) {
    if (!(w[t] >= 0.0) || !std::isfinite(w[t])) {
      const std::size_t item = idx ? static_cast<std::size_t>(idx[t]) : t;
      throw std::invalid_argument("weight " + std::to_string(w[t]) + " of item " +
                                  std::to_string(item) + " (position " + std::to_string(t) +
                                  ") is not a finite non-negative number");
    }
  }
}

// #{i < 16 : p[i] <= u} for a 64-byte aligned block p. Comparisons are exact, so the vector
// paths and the scalar path give the same answer.
inline std::size_t count_at_most16(const double* p, double u) {
#if defined(__AVX512F__)
  const __m512d uu = _mm512_set1_pd(u);
  const unsigned lo = _mm512_cmp_pd_mask(_mm512_load_pd(p), uu, _CMP_LE_OQ);
  const unsigned hi = _mm512_cmp_pd_mask(_mm512_load_pd(p + 8), uu, _CMP_LE_OQ);
  return static_cast<std::size_t>(__builtin_popcount(lo | (hi << 8)));
#elif defined(__AVX2__)
  const __m256d uu = _mm256_set1_pd(u);
  unsigned bits = 0;
  for (int q = 0; q < 4; ++q)
    bits |= static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(p + 4 * q), uu, _CMP_LE_OQ))) << (4 * q);
  return static_cast<std::size_t>(__builtin_popcount(bits));
#else
  std::size_t j = 0;
  for (int i = 0; i < 16; ++i) j += p[i] <= u;
  return j;
#endif
}

class WeightedIndex {
 public:
  static constexpr std::size_t kFanout = 16;
  static constexpr int kShift = 4;           // log2(kFanout)
  static constexpr std::size_t kRecord = 32;  // doubles per block record: values, prefix sums
  static constexpr std::size_t kGroup = 32;   // interleaved walks per group

  explicit WeightedIndex(std::size_t n, std::uint64_t seed = 0) : n_(n), rng_(seed) {
    if (n == 0) throw std::invalid_argument("a WeightedIndex needs at least one item (n = 0)");
    std::size_t width = n;
    do {
      const std::size_t blocks = (width + kFanout - 1) / kFanout;
      levels_.emplace_back(blocks * kRecord, 0.0);
      width = blocks;
    } while (width > 1);
  }

  std::size_t size() const { return n_; }
  double total() const { return total_; }
  std::size_t nonzero() const { return nonzero_; }
  double weight(std::size_t i) const { return *leaf(i); }
  Rng& rng() { return rng_; }

  void copy_weights(double* out) const {
    for (std::size_t i = 0; i < n_; ++i) out[i] = *leaf(i);
  }

  // Bytes held by the tree (all levels).
  std::size_t memory_bytes() const {
    std::size_t bytes = 0;
    for (const auto& level : levels_) bytes += level.size() * sizeof(double);
    return bytes;
  }

  // Set all n weights: O(n).
  void assign(const double* w) {
    check_weights(w, n_);
    nonzero_ = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      *leaf(i) = w[i] + 0.0;
      nonzero_ += w[i] > 0;
    }
    for (std::size_t l = 0; l < levels_.size(); ++l) {
      const std::size_t blocks = levels_[l].size() / kRecord;
      for (std::size_t b = 0; b < blocks; ++b) recompute_block(l, b);
    }
  }

  // w[idx[t]] = w[t] for t = 0..k-1, in order (a repeated index keeps its last weight).
  // O(k log n). All input is checked before anything changes; if the new total would overflow,
  // the old weights are restored and an error is raised.
  void update(const std::int64_t* idx, const double* w, std::size_t k) {
    check_indices(idx, k, n_);
    check_weights(w, k, idx);
    double added = 0.0;
    for (std::size_t t = 0; t < k; ++t) added += w[t];
    if (total_ + added <= 1e300) {  // the new total cannot overflow: no undo record needed
      write_leaves(idx, w, k);
      return;
    }
    saved_.resize(k);
    for (std::size_t t = 0; t < k; ++t) saved_[t] = *leaf(static_cast<std::size_t>(idx[t]));
    write_leaves(idx, w, k);
    if (!std::isfinite(total_)) {
      // Undo in reverse order so that repeated indices get their original weight back.
      for (std::size_t t = k; t-- > 0;) {
        double& slot = *leaf(static_cast<std::size_t>(idx[t]));
        nonzero_ += (saved_[t] > 0) - (slot > 0);
        slot = saved_[t];
      }
      recompute_ancestors(idx, k);
      throw std::overflow_error("update rejected: the total weight would overflow to infinity");
    }
  }

  // k independent draws proportional to weight (with replacement).
  void draw(std::size_t k, std::int64_t* out) {
    require_positive_total();
    for (std::size_t start = 0; start < k; start += kGroup)
      walk_group(std::min(kGroup, k - start), out + start);
  }

  // k distinct indices, drawn one after another, each proportional to weight among the items
  // not drawn yet. Requires k <= number of items with positive weight.
  //
  // Repeats are recognised without a hash set: an accepted item is marked by flipping the sign
  // of its leaf value (weights are >= 0, and the leaf is in cache right after its walk); prefix
  // sums are not touched, so the walks are unaffected. Marks are cleared before the tree
  // changes (exclusion) and at the end.
  void draw_distinct(std::size_t k, std::int64_t* out) {
    if (k > nonzero_)
      throw std::invalid_argument("cannot draw " + std::to_string(k) +
                                  " distinct items: only " + std::to_string(nonzero_) +
                                  " items have positive weight");
    if (k == 0) return;
    excluded_.clear();
    excluded_weight_.clear();
    excluded_.reserve(k);  // nothing below allocates once items are marked
    excluded_weight_.reserve(k);
    zeros_.reserve(k);
    std::size_t got = 0;
    std::size_t kept_from = 0;   // out[kept_from..got) are drawn, marked and still in the tree
    double drawn_in_tree = 0.0;  // their total weight
    std::int64_t candidates[kGroup];
    while (got < k) {
      if (drawn_in_tree > 0.5 * total_) {
        unmark(out + kept_from, got - kept_from);
        exclude(out + kept_from, got - kept_from);
        kept_from = got;
        drawn_in_tree = 0.0;
      }
      const std::size_t m = std::min(kGroup, k - got);
      walk_group(m, candidates);
      for (std::size_t c = 0; c < m && got < k; ++c) {
        double& slot = *leaf(static_cast<std::size_t>(candidates[c]));
        if (slot > 0.0) {
          out[got++] = candidates[c];
          drawn_in_tree += slot;
          slot = -slot;
        }
      }
    }
    unmark(out + kept_from, got - kept_from);
    restore_excluded();
  }

  // Sum of the weights of items 0..i-1 (0 <= i <= n), from the stored prefix sums: O(log n).
  double prefix(std::size_t i) const {
    if (i >= n_) return total_;
    double sum = 0.0;
    std::size_t node = i;
    for (std::size_t l = 0; l < levels_.size(); ++l) {
      const std::size_t j = node & (kFanout - 1);
      node >>= kShift;
      if (j > 0) sum += levels_[l][node * kRecord + kFanout + j - 1];
    }
    return sum;
  }

  // The item in which cumulative mass u falls (0 <= u < total), as one draw's walk: O(log n).
  // Never an item of weight zero. Requires a positive total.
  std::size_t locate(double u) const {
    std::size_t node = 0;
    for (std::size_t l = levels_.size(); l-- > 0;)
      node = (node << kShift) + choose_child(levels_[l].data() + node * kRecord, u);
    return node;
  }

  // p_i = w_i / total for all i.
  void probabilities(double* out) const {
    require_positive_total();
    for (std::size_t i = 0; i < n_; ++i) out[i] = *leaf(i) / total_;
  }

 private:
  using Level = std::vector<double, CacheAligned<double>>;

  double* record(std::size_t l, std::size_t b) { return levels_[l].data() + b * kRecord; }
  double* leaf(std::size_t i) { return record(0, i >> kShift) + (i & (kFanout - 1)); }
  const double* leaf(std::size_t i) const {
    return levels_[0].data() + (i >> kShift) * kRecord + (i & (kFanout - 1));
  }

  // Inclusive prefix sums of a block in a fixed order that keeps them non-decreasing with a
  // short dependency chain: four groups of four, S_k,m = v_4k + ... + v_4k+m (in order), group
  // offsets Q_k = Q_k-1 + S_k,3 (in order, Q_-1 = 0), and P_4k+m = Q_k-1 + S_k,m. Within a group
  // P grows with S; across groups P_4k+3 = Q_k exactly and P_4k+4 = Q_k + v_4k+4 >= Q_k.
  // Returns the block total P_15.
  static double block_prefix(const double* v, double* p) {
    double group[4][4];
    for (int k = 0; k < 4; ++k) {
      group[k][0] = v[4 * k];
      for (int m = 1; m < 4; ++m) group[k][m] = group[k][m - 1] + v[4 * k + m];
    }
    double offset = 0.0;
    for (int k = 0; k < 4; ++k) {
      for (int m = 0; m < 4; ++m) p[4 * k + m] = k == 0 ? group[0][m] : offset + group[k][m];
      offset = p[4 * k + 3];
    }
    return offset;
  }

  // Prefix sums of block b of level l from its values; its total goes to the parent entry (or
  // to the total weight at the top level).
  void recompute_block(std::size_t l, std::size_t b) {
    double* r = record(l, b);
    const double sum = block_prefix(r, r + kFanout);
    if (l + 1 < levels_.size()) record(l + 1, b >> kShift)[b & (kFanout - 1)] = sum;
    else total_ = sum;
  }

  void require_positive_total() const {
    if (nonzero_ == 0) throw std::invalid_argument("cannot draw: the total weight is zero");
  }

  // Write leaves (checked input), keep the non-zero count, recompute ancestors and the total.
  void write_leaves(const std::int64_t* idx, const double* w, std::size_t k) {
    constexpr std::size_t kAhead = 8;
    for (std::size_t t = 0; t < k; ++t) {
      if (t + kAhead < k) {  // the whole record: its prefix sums are rewritten next
        const double* ahead = record(0, static_cast<std::size_t>(idx[t + kAhead]) >> kShift);
        for (std::size_t line = 0; line < kRecord; line += 8) MLBS_PREFETCH(ahead + line);
      }
      double& slot = *leaf(static_cast<std::size_t>(idx[t]));
      nonzero_ += (w[t] > 0) - (slot > 0);
      slot = w[t] + 0.0;  // -0.0 becomes +0.0: a set sign bit marks drawn items
    }
    recompute_ancestors(idx, k);
  }

  // Recompute, level by level from the bottom, every block on the path of the given leaves.
  // Recomputing a block twice is harmless, so repeats need no de-duplication; a level with no
  // more blocks than there are updates is recomputed whole, in memory order (the upper levels).
  void recompute_ancestors(const std::int64_t* idx, std::size_t k) {
    constexpr std::size_t kAhead = 8;
    for (std::size_t l = 0; l < levels_.size(); ++l) {
      const std::size_t blocks = levels_[l].size() / kRecord;
      if (blocks <= k) {
        for (std::size_t b = 0; b < blocks; ++b) recompute_block(l, b);
        continue;
      }
      const int shift = kShift * static_cast<int>(l + 1);
      for (std::size_t t = 0; t < k; ++t) {
        if (t + kAhead < k) {
          const double* ahead = record(l, static_cast<std::size_t>(idx[t + kAhead]) >> shift);
          for (std::size_t line = 0; line < kRecord; line += 8) MLBS_PREFETCH(ahead + line);
        }
        recompute_block(l, static_cast<std::size_t>(idx[t]) >> shift);
      }
    }
  }

  // Child of a block record that the residual mass u falls in; updates u.
  static std::size_t choose_child(const double* r, double& u) {
    const double* p = r + kFanout;
    std::size_t j = count_at_most16(p, u);
    if (j == kFanout) {
      j = kFanout - 1;
      while (r[j] <= 0.0) --j;
      u = 0.5 * r[j];
      return j;
    }
    u -= j > 0 ? p[j - 1] : 0.0;
    return j;
  }

  // m <= kGroup independent draws, walked down the tree together, one level at a time.
  void walk_group(std::size_t m, std::int64_t* out) {
    double u[kGroup];
    std::size_t node[kGroup];
    for (std::size_t g = 0; g < m; ++g) {
      u[g] = rng_.uniform() * total_;
      node[g] = 0;
    }
    for (std::size_t l = levels_.size(); l-- > 0;) {
      const double* level = levels_[l].data();
      const double* below = l > 0 ? levels_[l - 1].data() : nullptr;
      for (std::size_t g = 0; g < m; ++g) {
        const double* r = level + node[g] * kRecord;
        node[g] = (node[g] << kShift) + choose_child(r, u[g]);
        if (below) {
          MLBS_PREFETCH(below + node[g] * kRecord + kFanout);
          MLBS_PREFETCH(below + node[g] * kRecord + kFanout + 8);
        }
      }
    }
    for (std::size_t g = 0; g < m; ++g) out[g] = static_cast<std::int64_t>(node[g]);
  }

  void unmark(const std::int64_t* items, std::size_t count) {
    for (std::size_t t = 0; t < count; ++t) {
      double& slot = *leaf(static_cast<std::size_t>(items[t]));
      slot = -slot;
    }
  }

  // Take the given drawn items out of the tree until restore_excluded().
  void exclude(const std::int64_t* items, std::size_t count) {
    zeros_.assign(count, 0.0);
    for (std::size_t t = 0; t < count; ++t) {
      excluded_.push_back(items[t]);
      excluded_weight_.push_back(*leaf(static_cast<std::size_t>(items[t])));
    }
    write_leaves(items, zeros_.data(), count);
  }

  void restore_excluded() {
    if (excluded_.empty()) return;
    write_leaves(excluded_.data(), excluded_weight_.data(), excluded_.size());
    excluded_.clear();
    excluded_weight_.clear();
  }

  std::size_t n_;
  std::vector<Level> levels_;  // levels_[0]: leaves; block records of 16 values + prefix sums
  double total_ = 0.0;
  std::size_t nonzero_ = 0;
  Rng rng_;
  // Scratch kept between calls (sized by batch, never by n).
  std::vector<double> saved_, zeros_, excluded_weight_;
  std::vector<std::int64_t> excluded_;
};

}  // namespace mlbs
