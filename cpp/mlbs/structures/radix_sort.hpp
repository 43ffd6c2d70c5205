// Sorting (double key, uint32 id) entries by key, ties in the order given: an LSD radix sort on
// the keys' bits, for the O(n) rebuilds of the order-statistics structures (RankIndex.assign).
//
// Keys. order_bits(x) maps a double to a 64-bit unsigned integer that compares like x: the sign
// bit is flipped for x >= 0 and all bits for x < 0 (so negatives come first, the most negative
// first), after x + 0.0 has turned -0.0 into +0.0 (they compare equal as doubles, and must here).
// NaN is not a key. from_order_bits inverts it.
//
// Sort. Stable least-significant-digit radix sort with 11-bit digits (6 passes over 64 bits, 2048
// buckets whose counters stay in L1): one read pass counts every digit of every key, then each pass
// scatters the entries by its digit, and a pass is skipped when all keys share that digit (the
// high digits of scores in a narrow range, typically). O(n) time, two arrays of n keys and n ids.
// Being stable, it keeps ties in their given order: given the entries by increasing id, the result
// is ordered by (key, id).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mlbs {

inline std::uint64_t order_bits(double x) {
  x += 0.0;
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return (b >> 63) ? ~b : b | (std::uint64_t(1) << 63);
}

inline double from_order_bits(std::uint64_t b) {
  b = (b >> 63) ? b & ~(std::uint64_t(1) << 63) : ~b;
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Sort key[0..n) and id[0..n) together by key, stably.
inline void radix_sort_by_key(std::vector<std::uint64_t>& key, std::vector<std::uint32_t>& id) {
  constexpr int kDigitBits = 11;
  constexpr int kPasses = (64 + kDigitBits - 1) / kDigitBits;
  constexpr std::size_t kBuckets = std::size_t(1) << kDigitBits;
  const std::size_t n = key.size();
  if (n < 2) return;
  std::vector<std::array<std::size_t, kBuckets>> count(kPasses);
  for (auto& c : count) c.fill(0);
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < kPasses; ++d) ++count[d][(key[i] >> (d * kDigitBits)) & (kBuckets - 1)];
  std::vector<std::uint64_t> key_out(n);
  std::vector<std::uint32_t> id_out(n);
  for (int d = 0; d < kPasses; ++d) {
    const int shift = d * kDigitBits;
    auto& c = count[d];
    if (c[(key[0] >> shift) & (kBuckets - 1)] == n) continue;  // one digit for all: nothing moves
    std::size_t start = 0;
    for (auto& slot : c) {  // counts -> first position of each bucket
      const std::size_t size = slot;
      slot = start;
      start += size;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = c[(key[i] >> shift) & (kBuckets - 1)]++;
      key_out[at] = key[i];
      id_out[at] = id[i];
    }
    key.swap(key_out);
    id.swap(id_out);
  }
}

}  // namespace mlbs
