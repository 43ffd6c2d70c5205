// A small open-addressing set of non-negative 64-bit indices, sized by the number of elements it
// will hold (never by n). Used to reject repeats when drawing without replacement. Its storage is
// kept between calls, so repeated draws of the same batch size allocate nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mlbs {

class IndexSet {
 public:
  // Empty the set and make room for `expected` elements at load factor <= 1/8 (a first probe
  // almost always settles an insert, so the branch is well predicted).
  void reset(std::size_t expected) {
    std::size_t cap = 16;
    while (cap < 8 * expected) cap <<= 1;
    if (slots_.size() != cap) slots_.assign(cap, kEmpty);
    else std::fill(slots_.begin(), slots_.end(), kEmpty);
    mask_ = cap - 1;
  }

  bool contains(std::int64_t key) const {
    for (std::size_t h = slot_of(key); slots_[h] != kEmpty; h = (h + 1) & mask_)
      if (slots_[h] == key) return true;
    return false;
  }

  // Insert `key` (>= 0); returns false when it was already present.
  bool insert(std::int64_t key) {
    std::size_t h = slot_of(key);
    while (slots_[h] != kEmpty) {
      if (slots_[h] == key) return false;
      h = (h + 1) & mask_;
    }
    slots_[h] = key;
    return true;
  }

 private:
  static constexpr std::int64_t kEmpty = -1;
  std::size_t slot_of(std::int64_t key) const {
    // Fibonacci hashing; the high bits are the best mixed.
    const std::uint64_t h = static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 32) & mask_;
  }
  std::vector<std::int64_t> slots_;
  std::size_t mask_ = 0;
};

// Whether a value occurs twice among indices[0 .. m) (all >= 0). O(m); the set's storage is kept
// per thread between calls.
inline bool has_repeats(const std::int64_t* indices, std::size_t m) {
  thread_local IndexSet seen;
  seen.reset(m);
  for (std::size_t t = 0; t < m; ++t)
    if (!seen.insert(indices[t])) return true;
  return false;
}

}  // namespace mlbs
