// RankIndex: n items with fp64 scores kept in rank order, for rank-based selection (online batch
// selection, Loshchilov & Hutter 2016; eq. 3 of the seed paper):
//
//     p(item of rank r) = s^(r/n) / sum_{j=1..n} s^(j/n),   r = 1..n,
//
// where ranks are ascending (the largest score has rank n) and ties are broken by item id
// (equal scores: the smaller id gets the smaller rank). Changing one score and drawing one item
// both take O(log n) amortised time, exactly (no bucketing of ranks).
//
// Structure. The items in ascending (score, id) order, held by a SortedBlocks (sorted blocks of
// a few hundred entries with a Fenwick tree over their sizes, 20 to 32 bytes per item with the
// scores): changing a score is a removal and an insertion, finding the item of a rank a Fenwick
// descent and one read in a block, both O(log n) with few cache misses. The order is a function
// of the scores alone, so the draws are too (given the generator's state).
//
// Draws. A rank is drawn by inverting the CDF of the truncated geometric law above:
//     P(R <= r) = (s^(r/n) - 1) / (s - 1)   =>   R = ceil(n * log1p(U (s - 1)) / log(s)),
// U uniform on [0, 1) (s = 1: R = floor(U n) + 1), then the item of rank R is selected.
// Distinct draws reject repeated ranks; in the rare case that the drawn mass passes half of the
// total (k a sizable fraction of n), or after kMaxRejections rejections in a row, the remaining
// draws come from a temporary WeightedIndex over the rank weights with the drawn ranks set to zero
// (O(n) once). A distinct draw of k items thus takes at most k (kMaxRejections + 1) draws of a rank
// before that, whatever the pressure.
//
// Range. The weights are taken relative to the largest, s^(r/n - 1) in [1/s, 1], and their total
// in a closed form of these: both stay finite (at most n) for every finite s >= 1, where s^(r/n)
// itself would overflow for s near the largest double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "mlbs/structures/index_set.hpp"
#include "mlbs/structures/rng.hpp"
#include "mlbs/structures/sorted_blocks.hpp"
#include "mlbs/structures/use_flag.hpp"
#include "mlbs/structures/weighted_index.hpp"

namespace mlbs {

class RankIndex {
 public:
  static constexpr std::size_t kMaxRejections = 128;  // in a row, before the exact finish

  explicit RankIndex(std::size_t n, std::uint64_t seed = 0) : n_(n), rng_(seed) {
    if (n == 0) throw std::invalid_argument("a RankIndex needs at least one item (n = 0)");
    if (n > std::numeric_limits<std::uint32_t>::max())
      throw std::invalid_argument("a RankIndex holds at most 2^32 - 1 items");
    score_.assign(n, 0.0);
    sorted_.assign(score_.data(), n);
  }

  std::size_t size() const { return n_; }
  double score(std::size_t i) const { return score_[i]; }
  void copy_scores(double* out) const { std::copy(score_.begin(), score_.end(), out); }
  Rng& rng() { return rng_; }
  const UseFlag& in_use() const { return in_use_; }

  // Set all n scores: O(n) (a radix sort, see radix_sort.hpp).
  void assign(const double* s) {
    check_scores(s, n_);
    std::copy(s, s + n_, score_.begin());
    sorted_.assign(score_.data(), n_);
  }

  // score[idx[t]] = s[t] in order (a repeated index keeps its last score). O(k log n).
  void update(const std::int64_t* idx, const double* s, std::size_t k) {
    check_indices(idx, k, n_);
    check_scores(s, k, idx);
    for (std::size_t t = 0; t < k; ++t) {
      const auto x = static_cast<std::uint32_t>(idx[t]);
      if (score_[x] == s[t]) continue;
      sorted_.erase(score_[x], x);
      score_[x] = s[t];
      sorted_.insert(score_[x], x);
    }
  }

  // 1-based ascending rank of item i.
  std::size_t rank(std::size_t i) const {
    return sorted_.rank(score_[i], static_cast<std::uint32_t>(i)) + 1;
  }

  // Item of 1-based rank r.
  std::size_t select(std::size_t r) const { return sorted_.select(r - 1); }

  // k independent draws of items with p(rank r) proportional to pressure^(r/n).
  void draw(std::size_t k, double pressure, std::int64_t* out) {
    const RankLaw law(n_, pressure);
    for (std::size_t t = 0; t < k; ++t) out[t] = static_cast<std::int64_t>(select(law.rank(rng_.uniform())));
  }

  // k distinct items, drawn one after another with the rank law restricted to those not drawn.
  void draw_distinct(std::size_t k, double pressure, std::int64_t* out) {
    if (k > n_)
      throw std::invalid_argument("cannot draw " + std::to_string(k) + " distinct items out of " +
                                  std::to_string(n_));
    const RankLaw law(n_, pressure);
    seen_.reset(k);
    std::vector<std::int64_t> ranks;  // drawn ranks, in order (size k)
    ranks.reserve(k);
    double drawn = 0.0;
    std::size_t rejected = 0;  // draws rejected since the last accepted one
    while (ranks.size() < k && drawn <= 0.5 * law.total() && rejected < kMaxRejections) {
      const std::size_t r = law.rank(rng_.uniform());
      if (seen_.insert(static_cast<std::int64_t>(r))) {
        ranks.push_back(static_cast<std::int64_t>(r));
        drawn += law.weight(r);
        rejected = 0;
      } else {
        ++rejected;
      }
    }
    if (ranks.size() < k) draw_remaining_exactly(law, k, ranks);
    for (std::size_t t = 0; t < k; ++t) out[t] = static_cast<std::int64_t>(select(static_cast<std::size_t>(ranks[t])));
  }

  // p_i = pressure^(rank_i/n) / sum_r pressure^(r/n), for all i (from the relative weights).
  void probabilities(double pressure, double* out) const {
    const RankLaw law(n_, pressure);
    std::vector<double> by_rank(n_);
    for (std::size_t r = 1; r <= n_; ++r) by_rank[r - 1] = law.weight(r);
    double total = 0.0;
    for (double w : by_rank) total += w;
    std::size_t r = 0;
    sorted_.for_each([&](std::uint32_t x) { out[x] = by_rank[r++] / total; });
  }

  // Ascending order of the items (item of rank 1 first).
  void order(std::int64_t* out) const {
    std::size_t r = 0;
    sorted_.for_each([&](std::uint32_t x) { out[r++] = x; });
  }

 private:
  // The rank law p(r) proportional to s^(r/n): weights relative to the largest, their total and
  // inverse-CDF sampling.
  class RankLaw {
   public:
    RankLaw(std::size_t n, double pressure) : n_(static_cast<double>(n)), s_(pressure) {
      if (!(pressure >= 1.0) || !std::isfinite(pressure))
        throw std::invalid_argument("selection pressure must be a finite number >= 1, got " +
                                    std::to_string(pressure));
      log_s_ = std::log1p(pressure - 1.0);
    }
    // s^(r/n - 1) = e^(-log(s) (n - r) / n), in [1/s, 1].
    double weight(std::size_t r) const { return std::exp(-log_s_ * ((n_ - static_cast<double>(r)) / n_)); }
    // Sum over r = 1..n of weight(r) in closed form: sum_{j=0..n-1} a^-j = (1 - 1/s) / (1 - 1/a),
    // a = s^(1/n), computed as expm1(-log s) / expm1(-log(s) / n) (at most n).
    double total() const {
      if (log_s_ == 0.0) return n_;
      return std::expm1(-log_s_) / std::expm1(-log_s_ / n_);
    }
    std::size_t rank(double u) const {
      const double x = log_s_ > 0 ? std::ceil(n_ * std::log1p(u * (s_ - 1.0)) / log_s_)
                                  : std::floor(u * n_) + 1.0;
      return static_cast<std::size_t>(std::clamp(x, 1.0, n_));
    }

   private:
    double n_, s_, log_s_;
  };

  // Finish a distinct draw with a weighted index over ranks, drawn ranks removed.
  void draw_remaining_exactly(const RankLaw& law, std::size_t k, std::vector<std::int64_t>& ranks) {
    WeightedIndex by_rank(n_);
    std::vector<double> w(n_);
    for (std::size_t r = 1; r <= n_; ++r) w[r - 1] = law.weight(r);
    for (std::int64_t r : ranks) w[static_cast<std::size_t>(r) - 1] = 0.0;
    by_rank.assign(w.data());
    by_rank.rng().set_state(rng_.state());
    std::vector<std::int64_t> rest(k - ranks.size());
    by_rank.draw_distinct(rest.size(), rest.data());
    rng_.set_state(by_rank.rng().state());
    for (std::int64_t r0 : rest) ranks.push_back(r0 + 1);
  }

  static void check_scores(const double* s, std::size_t k, const std::int64_t* idx = nullptr) {
    for (std::size_t t = 0; t < k; ++t) {
      if (!std::isfinite(s[t])) {
        const std::size_t item = idx ? static_cast<std::size_t>(idx[t]) : t;
        throw std::invalid_argument("score " + std::to_string(s[t]) + " of item " +
                                    std::to_string(item) + " (position " + std::to_string(t) +
                                    ") is not finite");
      }
    }
  }

  std::size_t n_;
  std::vector<double> score_;
  SortedBlocks sorted_;  // the items in ascending (score, id) order
  Rng rng_;
  UseFlag in_use_;
  IndexSet seen_;
};

}  // namespace mlbs
