// WeightedIndex: n items with non-negative fp64 weights; O(log n) batched updates and weighted
// draws, with and without replacement.
//
// Layout. An 8-ary sum tree stored level by level, shaped so that one update or one draw touches
// as few cache lines as possible outside the core's caches:
// - level 0 is the n leaf weights themselves, in order (padded with zeros to a multiple of 8):
//   block b (items 8b..8b+7) is one cache line;
// - entry j of level l+1 is the total of block j of level l, and each block of an upper level is
//   stored as one 128-byte record: a cache line with its 8 values, then a cache line with their
//   inclusive prefix sums P_0..P_7 (fixed summation order, see block_prefix), whose last is the
//   block's total. The top level is a single block whose total is the total weight.
// A walk reads one line per level: the prefix sums of an upper block, and at the bottom the leaf
// block, whose prefix sums it computes from the 8 weights (same function, same order, so they
// agree with the total stored above). An update rewrites the leaf line and one record per upper
// level. Over 10^6 items: 7 levels, of which the leaf level (8 MB) and level 1 (2 MB) come from
// L3 or memory and the rest stay in the core's caches. Memory: 8 bytes per item for the leaves
// plus 16/7 for the levels above (10.3 bytes per item).
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
// positive weight is taken. The search is 8 independent comparisons (no branch to mispredict),
// and walks run in groups of kGroup, one level at a time, each prefetching its next line, so the
// memory latency of the lower levels overlaps across walks. Updates skip the random walk on the
// upper levels: a level with no more blocks than the batch has updates is recomputed whole, in
// memory order.
//
// Distinct draws are exact sequential sampling without replacement (each next index proportional
// to weight among those not drawn yet, like numpy's Generator.choice(replace=False, p=...)), by
// rejection of repeats: an independent draw from the full distribution, conditioned on not
// being a repeat, has exactly that law. When the already drawn mass exceeds half of the current
// total, the drawn items are taken out of the tree (weight 0) so acceptance stays above 1/2; they
// are written back at the end, which restores the tree bit for bit. They are also taken out after
// kMaxRejections rejections in a row (below 2^-96 likely while acceptance is above 1/2, so the
// draws of a seed do not depend on it): after an exclusion every candidate is accepted, so a
// distinct draw of k items takes at most k (kMaxRejections + 2 kGroup) walks, whatever the
// weights.
//
// Instruction sets. The inner loops (tree_paths.inc) are compiled for the build's baseline and,
// with GCC on x86-64, for AVX2 and AVX-512 as well; the widest the CPU supports runs (mlbs::simd).
// A portable build thus uses AVX-512 where there is one without requiring it anywhere.
//
// Bounds. Every loop runs a number of times fixed by n and the arguments (the rejection loop by
// the bound above). The total weight stays finite: assign and update refuse weights whose total
// would overflow to infinity.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "mlbs/prefetch.hpp"
#include "mlbs/simd.hpp"
#include "mlbs/structures/rng.hpp"
#include "mlbs/structures/use_flag.hpp"

#if MLBS_ISA_DISPATCH || defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif


namespace mlbs {

// std::allocator replacement that aligns to cache lines (64 bytes), and large arrays to 2 MiB
// with a request for transparent huge pages (Linux): the random walks of a large tree then miss
// the TLB far less often. Only where it is allowed ("madvise" mode); no effect on results.
template <class T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::size_t kHuge = std::size_t(1) << 21;
  CacheAligned() = default;
  template <class U>
  CacheAligned(const CacheAligned<U>&) {}
  static std::size_t alignment(std::size_t bytes) { return bytes >= kHuge ? kHuge : 64; }
  T* allocate(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    void* p = ::operator new(bytes, std::align_val_t(alignment(bytes)));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHuge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t count) {
    ::operator delete(p, std::align_val_t(alignment(count * sizeof(T))));
  }
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
  std::size_t bad = 0;  // a branch-free (vectorised) pass first; the slow search only on failure
  for (std::size_t t = 0; t < k; ++t) bad += !(w[t] >= 0.0 && w[t] <= std::numeric_limits<double>::max());
  if (bad == 0) return;
  for (std::size_t t = 0; t < k; ++t) {
    if (!(w[t] >= 0.0) || !std::isfinite(w[t])) {
      const std::size_t item = idx ? static_cast<std::size_t>(idx[t]) : t;
      throw std::invalid_argument("weight " + std::to_string(w[t]) + " of item " +
                                  std::to_string(item) + " (position " + std::to_string(t) +
                                  ") is not a finite non-negative number");
    }
  }
}

// The tree's layout constants and a view of its levels, for the inner loops.
namespace tree {

constexpr std::size_t kFanout = 8;
constexpr int kShift = 3;            // log2(kFanout)
constexpr std::size_t kRecord = 16;  // doubles per upper block record: values, prefix sums
constexpr std::size_t kGroup = 32;   // interleaved walks per group
constexpr std::size_t kMaxLevels = 22;  // 8^22 > 2^64

// data[0]: the leaves (blocks[0] blocks of 8); data[l], l >= 1: the blocks[l] records of level l.
struct Levels {
  double* data[kMaxLevels];
  std::size_t blocks[kMaxLevels];
  std::size_t count;
  double* record(std::size_t l, std::size_t b) const { return data[l] + b * kRecord; }
  const double* leaf_block(std::size_t b) const { return data[0] + b * kFanout; }
};

#define MLBS_TREE_PATHS Baseline
#if defined(__AVX512F__)
#define MLBS_TREE_WIDTH 512
#elif defined(__AVX2__)
#define MLBS_TREE_WIDTH 256
#else
#define MLBS_TREE_WIDTH 0
#endif
#include "mlbs/structures/tree_paths.inc"
#undef MLBS_TREE_PATHS
#undef MLBS_TREE_WIDTH

#if MLBS_ISA_DISPATCH
MLBS_PUSH_TARGET(MLBS_TARGET_AVX2)
#define MLBS_TREE_PATHS Avx2
#define MLBS_TREE_WIDTH 256
#include "mlbs/structures/tree_paths.inc"
#undef MLBS_TREE_PATHS
#undef MLBS_TREE_WIDTH
MLBS_POP_TARGET

MLBS_PUSH_TARGET(MLBS_TARGET_AVX512)
#define MLBS_TREE_PATHS Avx512
#define MLBS_TREE_WIDTH 512
#include "mlbs/structures/tree_paths.inc"
#undef MLBS_TREE_PATHS
#undef MLBS_TREE_WIDTH
MLBS_POP_TARGET
#else
using Avx2 = Baseline;
using Avx512 = Baseline;
#endif

// visit(paths) with the struct of the instruction set in use.
template <class Visit>
void on_active_paths(Visit&& visit) {
  simd::on_active_isa<Baseline, Avx2, Avx512>(visit);
}

}  // namespace tree

class WeightedIndex {
 public:
  static constexpr std::size_t kFanout = tree::kFanout;
  static constexpr int kShift = tree::kShift;
  static constexpr std::size_t kRecord = tree::kRecord;
  static constexpr std::size_t kGroup = tree::kGroup;
  static constexpr std::size_t kMaxRejections = 128;  // in a row, before the drawn items are taken out

  explicit WeightedIndex(std::size_t n, std::uint64_t seed = 0) : n_(n), rng_(seed) {
    if (n == 0) throw std::invalid_argument("a WeightedIndex needs at least one item (n = 0)");
    std::size_t blocks = (n + kFanout - 1) / kFanout;
    leaves_.assign(blocks * kFanout, 0.0);
    while (blocks > 1) {
      blocks = (blocks + kFanout - 1) / kFanout;
      upper_.emplace_back(blocks * kRecord, 0.0);
    }
  }

  std::size_t size() const { return n_; }
  double total() const { return total_; }
  std::size_t nonzero() const { return nonzero_; }
  double weight(std::size_t i) const { return leaves_[i]; }
  Rng& rng() { return rng_; }

  // Storage of tree level l, for kernels outside this class that walk the tree exactly as locate
  // and prefix do (AdaC's chain): level 0 is the leaves, padded to whole blocks of 8; level l >= 1
  // holds the block records of that level (8 values, then their 8 prefix sums). Allocated once,
  // in the constructor, so the storage stays where it is for the index's whole life.
  std::size_t level_count() const { return levels(); }
  const double* level_data(std::size_t l) const { return l == 0 ? leaves_.data() : upper_[l - 1].data(); }
  const UseFlag& in_use() const { return in_use_; }

  void copy_weights(double* out) const { std::copy(leaves_.begin(), leaves_.begin() + n_, out); }

  // Bytes held by the tree (all levels).
  std::size_t memory_bytes() const {
    std::size_t bytes = leaves_.size() * sizeof(double);
    for (const auto& level : upper_) bytes += level.size() * sizeof(double);
    return bytes;
  }

  // Set all n weights: O(n). Nothing changes if a weight is invalid or if their total would
  // overflow to infinity (std::overflow_error).
  void assign(const double* w) {
    check_weights(w, n_);
    if (!total_is_finite(w))
      throw std::overflow_error("assign rejected: the total weight would overflow to infinity");
    std::size_t positive = 0;
    double* leaves = leaves_.data();
    for (std::size_t i = 0; i < n_; ++i) {
      leaves[i] = w[i] + 0.0;
      positive += w[i] > 0;
    }
    nonzero_ = positive;
    const tree::Levels t = view();
    tree::on_active_paths([&](auto paths) { decltype(paths)::recompute_all(t, total_); });
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
    for (std::size_t t = 0; t < k; ++t) saved_[t] = leaves_[static_cast<std::size_t>(idx[t])];
    write_leaves(idx, w, k);
    if (!std::isfinite(total_)) {
      // Undo in reverse order so that repeated indices get their original weight back.
      for (std::size_t t = k; t-- > 0;) {
        double& slot = leaves_[static_cast<std::size_t>(idx[t])];
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
  // of its leaf value (weights are >= 0, and the leaf line is in cache right after its walk;
  // walks read the leaves' magnitudes, so marks do not disturb them). Marks are cleared before
  // the tree changes (exclusion) and at the end.
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
    std::size_t rejected = 0;    // candidates rejected since the last accepted one
    std::int64_t candidates[kGroup];
    while (got < k) {
      if (drawn_in_tree > 0.5 * total_ || rejected >= kMaxRejections) {
        unmark(out + kept_from, got - kept_from);
        exclude(out + kept_from, got - kept_from);
        kept_from = got;
        drawn_in_tree = 0.0;
        rejected = 0;
      }
      const std::size_t m = std::min(kGroup, k - got);
      walk_group(m, candidates);
      for (std::size_t c = 0; c < m && got < k; ++c) {
        double& slot = leaves_[static_cast<std::size_t>(candidates[c])];
        if (slot > 0.0) {
          out[got++] = candidates[c];
          drawn_in_tree += slot;
          slot = -slot;
          rejected = 0;
        } else {
          ++rejected;
        }
      }
    }
    unmark(out + kept_from, got - kept_from);
    restore_excluded();
  }

  // Sum of the weights of items 0..i-1 (0 <= i <= n), from the prefix sums: O(log n).
  double prefix(std::size_t i) const {
    if (i >= n_) return total_;
    alignas(64) double p[kFanout];
    tree::Baseline::block_prefix(leaf_block(i >> kShift), p);
    std::size_t j = i & (kFanout - 1);
    double sum = j > 0 ? p[j - 1] : 0.0;
    std::size_t node = i >> kShift;
    for (const auto& level : upper_) {
      j = node & (kFanout - 1);
      node >>= kShift;
      if (j > 0) sum += level[node * kRecord + kFanout + j - 1];
    }
    return sum;
  }

  // The item in which cumulative mass u falls (0 <= u < total), as one draw's walk: O(log n).
  // Never an item of weight zero. Requires a positive total.
  std::size_t locate(double u) const {
    std::size_t node = 0;
    for (std::size_t l = upper_.size(); l-- > 0;) {
      const double* r = upper_[l].data() + node * kRecord;
      node = (node << kShift) + tree::Baseline::choose_child(r, r + kFanout, u);
    }
    return (node << kShift) + tree::Baseline::choose_leaf(leaf_block(node), u);
  }

  // p_i = w_i / total for all i.
  void probabilities(double* out) const {
    require_positive_total();
    for (std::size_t i = 0; i < n_; ++i) out[i] = leaves_[i] / total_;
  }

 private:
  using Level = std::vector<double, CacheAligned<double>>;

  // Levels: 0 = the leaves, l >= 1 = upper_[l - 1].
  std::size_t levels() const { return upper_.size() + 1; }
  std::size_t blocks(std::size_t l) const {
    return l == 0 ? leaves_.size() / kFanout : upper_[l - 1].size() / kRecord;
  }
  const double* leaf_block(std::size_t b) const { return leaves_.data() + b * kFanout; }

  // The levels as the inner loops see them. (Built per call: a copy of the index has its own.)
  tree::Levels view() const {
    tree::Levels t;
    t.count = levels();
    for (std::size_t l = 0; l < t.count; ++l) {
      t.data[l] = const_cast<double*>(l == 0 ? leaves_.data() : upper_[l - 1].data());
      t.blocks[l] = blocks(l);
    }
    return t;
  }

  // Whether the tree built on the leaves w[0..n) would have a finite total. A plain sum (eight
  // running sums) settles it when far from overflowing: both sum the same non-negative terms with
  // relative rounding errors below n 2^-52, so a plain sum up to 1e300 means a finite tree total.
  // Above, the tree's own sums are taken level by level (O(n / 8) scratch).
  bool total_is_finite(const double* w) const {
    double lane[kFanout] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + kFanout <= n_; i += kFanout)
      for (std::size_t j = 0; j < kFanout; ++j) lane[j] += w[i + j];
    for (std::size_t j = 0; i < n_; ++i, ++j) lane[j] += w[i];
    double sum = 0.0;
    for (double x : lane) sum += x;
    if (sum <= 1e300) return true;
    std::vector<double> level = block_totals(w, n_);
    while (level.size() > 1) level = block_totals(level.data(), level.size());
    return std::isfinite(level[0]);
  }

  // The totals of the blocks of 8 of x[0..m) (the last one padded with zeros), as block_prefix.
  static std::vector<double> block_totals(const double* x, std::size_t m) {
    std::vector<double> totals((m + kFanout - 1) / kFanout);
    alignas(64) double v[kFanout], p[kFanout];
    for (std::size_t b = 0; b < totals.size(); ++b) {
      for (std::size_t j = 0; j < kFanout; ++j) v[j] = b * kFanout + j < m ? x[b * kFanout + j] : 0.0;
      totals[b] = tree::Baseline::block_prefix(v, p);
    }
    return totals;
  }

  void require_positive_total() const {
    if (nonzero_ == 0) throw std::invalid_argument("cannot draw: the total weight is zero");
  }

  // Write leaves (checked input), keep the non-zero count, recompute ancestors and the total.
  void write_leaves(const std::int64_t* idx, const double* w, std::size_t k) {
    constexpr std::size_t kAhead = 8;
    for (std::size_t t = 0; t < k; ++t) {
      if (t + kAhead < k) MLBS_PREFETCH(leaves_.data() + idx[t + kAhead]);
      double& slot = leaves_[static_cast<std::size_t>(idx[t])];
      nonzero_ += (w[t] > 0) - (slot > 0);
      slot = w[t] + 0.0;  // -0.0 becomes +0.0: a set sign bit marks drawn items
    }
    recompute_ancestors(idx, k);
  }

  void recompute_ancestors(const std::int64_t* idx, std::size_t k) {
    const tree::Levels t = view();
    tree::on_active_paths([&](auto paths) { decltype(paths)::recompute_ancestors(t, idx, k, total_); });
  }

  // m <= kGroup independent draws, walked down the tree together (tree_paths.inc).
  void walk_group(std::size_t m, std::int64_t* out) {
    double u[kGroup];
    for (std::size_t g = 0; g < m; ++g) u[g] = rng_.uniform() * total_;
    const tree::Levels t = view();
    tree::on_active_paths([&](auto paths) { decltype(paths)::walk_group(t, m, u, out); });
  }

  void unmark(const std::int64_t* items, std::size_t count) {
    for (std::size_t t = 0; t < count; ++t) {
      double& slot = leaves_[static_cast<std::size_t>(items[t])];
      slot = -slot;
    }
  }

  // Take the given drawn items out of the tree until restore_excluded().
  void exclude(const std::int64_t* items, std::size_t count) {
    zeros_.assign(count, 0.0);
    for (std::size_t t = 0; t < count; ++t) {
      excluded_.push_back(items[t]);
      excluded_weight_.push_back(leaves_[static_cast<std::size_t>(items[t])]);
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
  Level leaves_;              // the n weights, padded to whole blocks of 8
  std::vector<Level> upper_;  // levels 1, 2, ...: block records of 8 values + their prefix sums
  double total_ = 0.0;
  std::size_t nonzero_ = 0;
  Rng rng_;
  UseFlag in_use_;
  // Scratch kept between calls (sized by batch, never by n).
  std::vector<double> saved_, zeros_, excluded_weight_;
  std::vector<std::int64_t> excluded_;
};

}  // namespace mlbs
