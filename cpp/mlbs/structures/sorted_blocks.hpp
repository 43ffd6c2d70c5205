// SortedBlocks: items kept in ascending order of (key, id), with O(log n) rank and select and
// cheap insertion and removal. The order-statistics structure behind RankIndex.
//
// Layout. The sorted sequence is cut into blocks of consecutive entries (kTarget entries after
// an assign or a split; a block is split above kMax entries and merged with a neighbour below kMin).
// Each block stores its keys and ids in two contiguous arrays, so finding a position in it and
// shifting entries to insert or remove one touch a few cache lines that lie together. Beside the
// blocks: a bound between each block and the next (to find the block of an entry by binary
// search) and a Fenwick tree over the block sizes (for the number of entries before a block, and
// to find the block holding position r). One insert or remove: a binary search over the bounds
// (O(log(n / kTarget))), one inside a block (O(log kTarget)), a shift of at most kMax entries and
// a Fenwick update (O(log(n / kTarget))). Splits and merges shift the list of blocks and rebuild
// the Fenwick tree (O(n / kTarget)); a block needs at least kMin = kTarget / 4 changes between
// two of them, so their cost per change is O(n / kTarget^2) amortised. Against a binary search
// tree over n nodes (one cache miss per level, about 2 ln n levels) the searches here stay in a
// few small arrays: see docs/benchmarks.md.
//
// Order. (key_a, id_a) < (key_b, id_b) iff key_a < key_b, or the keys are equal and id_a < id_b:
// a total order, so the sequence is a function of the keys alone, whatever the order of the
// changes that produced them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "mlbs/structures/radix_sort.hpp"

namespace mlbs {

class SortedBlocks {
 public:
  static constexpr std::size_t kTarget = 256;       // entries per block after an assign or a split
  static constexpr std::size_t kMax = 2 * kTarget;  // a larger block is split in two
  static constexpr std::size_t kMin = kTarget / 4;  // a smaller one is merged with a neighbour

  // The entries (key[id], id) for id = 0..n-1: O(n) (a radix sort of the keys, skipped when they
  // are in order already).
  void assign(const double* key, std::size_t n) {
    std::vector<std::uint64_t> bits(n);
    std::vector<std::uint32_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) {
      bits[i] = order_bits(key[i]);
      ids[i] = static_cast<std::uint32_t>(i);
    }
    if (!std::is_sorted(bits.begin(), bits.end())) radix_sort_by_key(bits, ids);
    blocks_.clear();
    bound_.clear();
    blocks_.reserve(n / kTarget + 1);
    bound_.reserve(n / kTarget + 1);
    for (std::size_t start = 0; start < n || blocks_.empty(); start += kTarget) {
      Block b;
      const std::size_t end = std::min(n, start + kTarget);
      b.key.resize(end - start);
      for (std::size_t i = start; i < end; ++i) b.key[i - start] = from_order_bits(bits[i]);
      b.id.assign(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.begin() + static_cast<std::ptrdiff_t>(end));
      bound_.push_back(b.size() > 0 ? Entry{b.key.back(), b.id.back()} : Entry{0.0, 0});
      blocks_.push_back(std::move(b));
    }
    reindex();
  }

  // Add the entry (key, id); it must not be present.
  void insert(double key, std::uint32_t id) {
    const std::size_t c = locate(key, id);
    Block& b = blocks_[c];
    const std::size_t p = b.lower_bound(key, id);
    b.key.insert(b.key.begin() + static_cast<std::ptrdiff_t>(p), key);
    b.id.insert(b.id.begin() + static_cast<std::ptrdiff_t>(p), id);
    if (b.size() > kMax) {
      split(c);
      reindex();
      return;
    }
    add(c, +1);
  }

  // Remove the entry (key, id); it must be present (std::logic_error otherwise).
  void erase(double key, std::uint32_t id) {
    const std::size_t c = locate(key, id);
    Block& b = blocks_[c];
    const std::size_t p = b.lower_bound(key, id);
    if (p == b.size() || b.id[p] != id || b.key[p] != key)
      throw std::logic_error("SortedBlocks::erase: the entry is not present");
    b.key.erase(b.key.begin() + static_cast<std::ptrdiff_t>(p));
    b.id.erase(b.id.begin() + static_cast<std::ptrdiff_t>(p));
    if (b.size() < kMin && blocks_.size() > 1) {
      merge_with_neighbour(c);
      reindex();
      return;
    }
    add(c, -1);
  }

  // Number of entries before (key, id), which must be present: its 0-based position.
  std::size_t rank(double key, std::uint32_t id) const {
    const std::size_t c = locate(key, id);
    return before(c) + blocks_[c].lower_bound(key, id);
  }

  // Id of the entry at 0-based position r (r below the number of entries).
  std::uint32_t select(std::size_t r) const {
    std::size_t c = 0;  // Fenwick descent: the last block c with before(c) <= r
    for (std::size_t step = top_; step > 0; step >>= 1) {
      if (c + step <= blocks_.size() && tree_[c + step] <= r) {
        c += step;
        r -= tree_[c];
      }
    }
    return blocks_[c].id[r];
  }

  // visit(id) for every entry, in ascending order.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const Block& b : blocks_)
      for (std::uint32_t id : b.id) visit(id);
  }

 private:
  struct Entry {
    double key;
    std::uint32_t id;
  };

  static bool less(double ka, std::uint32_t ia, double kb, std::uint32_t ib) {
    return ka < kb || (ka == kb && ia < ib);
  }

  struct Block {
    std::vector<double> key;
    std::vector<std::uint32_t> id;
    std::size_t size() const { return id.size(); }
    // First position whose entry is not below (k, i).
    std::size_t lower_bound(double k, std::uint32_t i) const {
      std::size_t lo = 0, hi = id.size();
      while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        if (less(key[mid], id[mid], k, i)) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }
  };

  // The block an entry (key, id) belongs in: the first whose bound is not below it, or the last
  // block.
  std::size_t locate(double key, std::uint32_t id) const {
    std::size_t lo = 0, hi = blocks_.size() - 1;
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (less(bound_[mid].key, bound_[mid].id, key, id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // Number of entries in blocks 0..c-1 (Fenwick prefix sum).
  std::size_t before(std::size_t c) const {
    std::size_t sum = 0;
    for (; c > 0; c &= c - 1) sum += tree_[c];
    return sum;
  }

  void add(std::size_t c, int delta) {
    for (std::size_t i = c + 1; i <= blocks_.size(); i += i & (~i + 1))
      tree_[i] = static_cast<std::uint32_t>(static_cast<std::int64_t>(tree_[i]) + delta);
  }

  // Block c's upper half becomes a new block c + 1.
  // The new block keeps block c's old bound; block c's is now its last entry.
  void split(std::size_t c) {
    Block upper;
    Block& b = blocks_[c];
    const auto half = static_cast<std::ptrdiff_t>(b.size() / 2);
    upper.key.assign(b.key.begin() + half, b.key.end());
    upper.id.assign(b.id.begin() + half, b.id.end());
    b.key.resize(static_cast<std::size_t>(half));
    b.id.resize(static_cast<std::size_t>(half));
    const Entry last{b.key.back(), b.id.back()};
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(c) + 1, std::move(upper));
    bound_.insert(bound_.begin() + static_cast<std::ptrdiff_t>(c), last);
  }

  // Join block c with its next block (or its previous one, for the last block), which keeps the
  // later block's bound; split the result again if it is too large.
  void merge_with_neighbour(std::size_t c) {
    const std::size_t lo = c + 1 < blocks_.size() ? c : c - 1;
    Block& a = blocks_[lo];
    Block& b = blocks_[lo + 1];
    a.key.insert(a.key.end(), b.key.begin(), b.key.end());
    a.id.insert(a.id.end(), b.id.begin(), b.id.end());
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(lo) + 1);
    bound_.erase(bound_.begin() + static_cast<std::ptrdiff_t>(lo));
    if (blocks_[lo].size() > kMax) split(lo);
  }

  // Sizes and the Fenwick tree from the blocks: O(number of blocks), reading only the blocks'
  // headers (which lie together), not their entries.
  void reindex() {
    const std::size_t m = blocks_.size();
    tree_.assign(m + 1, 0);
    for (std::size_t c = 0; c < m; ++c) tree_[c + 1] = static_cast<std::uint32_t>(blocks_[c].size());
    for (std::size_t i = 1; i <= m; ++i) {  // in-place Fenwick construction
      const std::size_t parent = i + (i & (~i + 1));
      if (parent <= m) tree_[parent] += tree_[i];
    }
    top_ = 1;
    while (top_ * 2 <= m) top_ *= 2;
  }

  std::vector<Block> blocks_;
  // bound_[c] is not below any entry of block c and below every entry of block c + 1. Set to the
  // last entry of c when the block is assigned or split, it stays a valid bound through insertions
  // and removals: an entry is inserted into block c only if it is not above bound_[c], and into
  // block c + 1 only if it is above. (The last block's bound is never read.)
  std::vector<Entry> bound_;
  std::vector<std::uint32_t> tree_;   // Fenwick tree over the block sizes, 1-based
  std::size_t top_ = 1;               // largest power of two <= number of blocks
};

}  // namespace mlbs
