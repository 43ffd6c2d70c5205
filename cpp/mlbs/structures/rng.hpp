// Seeded, portable random number generator of the mlbs core.
//
// xoshiro256** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021),
// seeded through SplitMix64. Everything is defined on 64-bit unsigned integers and the conversion
// to doubles is exact, so the same seed gives the same stream on every platform and compiler.
// The full state is four 64-bit words: it can be read and written back, which is how training
// runs are checkpointed and resumed with identical draws.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>

namespace mlbs {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  // State = four consecutive outputs of SplitMix64 started at `seed` (never all zero).
  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : s_) word = splitmix64(x);
  }

  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform double on [0, 1) with 53 random bits: k * 2^-53, k uniform on {0, ..., 2^53 - 1}.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  const State& state() const { return s_; }

  void set_state(const State& s) {
    if ((s[0] | s[1] | s[2] | s[3]) == 0)
      throw std::invalid_argument("RNG state must not be all zero");
    s_ = s;
  }

  // SplitMix64 step (Steele, Lea, Flood 2014); also used as a 64-bit mixing hash.
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State s_{};
};

}  // namespace mlbs
