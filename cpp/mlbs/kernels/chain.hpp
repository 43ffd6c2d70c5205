// Label-correlation chain batches of AdaC (seed paper, section 3.5; methods.md section 6).
//
// A batch is a chain s_1, s_2, ..., s_m of distinct instances. s_1 is drawn from P over all
// instances. For t >= 2, with j = sigma(s_{t-1}) the seed label of the previous instance (its
// positive label of largest IRLbl) and L_c(j) the labels most related to j, s_t is drawn from P
// restricted to D_c(j) \ Sel, D_c(j) being the instances with at least one label in L_c(j) and
// Sel the instances already in the batch. Without a seed label, with L_c(j) empty, or when
// D_c(j) \ Sel has no mass, s_t is drawn from P over all instances not in Sel.
//
// Restricted draws without a scan over D_c. Besides the instance index (weights w_i), a second
// WeightedIndex holds one entry per (label, instance) pair with y_il = 1, grouped by label, with
// weight w_i: label l's instances are the contiguous range [start_l, end_l) of it, so the mass of
// l's postings is a difference of two prefix sums. A draw picks l in L_c with probability
// proportional to that mass, then a pair inside l's range proportional to weight, and accepts
// its instance i with probability 1/c_i, c_i = |Y_i intersect L_c|, which makes the accepted
// instance exactly proportional to w_i over D_c (each i is reachable through c_i pairs).
// Instances already in Sel are rejected and the draw repeated. After kMaxTries rejections the
// step is finished exactly: D_c \ Sel is enumerated and drawn from directly (O(|D_c|)).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mlbs/structures/index_set.hpp"
#include "mlbs/structures/rng.hpp"
#include "mlbs/structures/weighted_index.hpp"

namespace mlbs {

// Read-only label structure (CSR arrays owned by the caller).
struct ChainGraph {
  std::size_t n = 0, q = 0;
  const std::int64_t* seed_label = nullptr;    // n entries; -1: no seed label
  const std::int64_t* related_ptr = nullptr;   // q + 1 entries
  const std::int64_t* related = nullptr;       // L_c(j) = related[related_ptr[j] .. related_ptr[j+1])
  const std::int64_t* posting_ptr = nullptr;   // q + 1 entries: label l's pairs [posting_ptr[l], posting_ptr[l+1])
  const std::int64_t* posting_item = nullptr;  // instance of every pair
  const std::int64_t* label_ptr = nullptr;     // n + 1 entries
  const std::int64_t* labels = nullptr;        // labels of i: labels[label_ptr[i] .. label_ptr[i+1])
};

class ChainSampler {
 public:
  static constexpr int kMaxTries = 64;

  // Draws a chain batch of m distinct instances into out; returns the number of steps that fell
  // back to the global distribution. Uses (and advances) the generator of `items`.
  std::size_t draw(WeightedIndex& items, const WeightedIndex& pairs, const ChainGraph& g,
                   std::size_t m, std::int64_t* out) {
    if (m > items.nonzero())
      throw std::invalid_argument("cannot draw " + std::to_string(m) + " distinct items: only " +
                                  std::to_string(items.nonzero()) + " items have positive weight");
    selected_.reset(m);
    std::size_t fallbacks = 0;
    Rng& rng = items.rng();
    for (std::size_t t = 0; t < m; ++t) {
      std::int64_t next = -1;
      if (t > 0) {
        const std::int64_t j = g.seed_label[out[t - 1]];
        if (j >= 0) next = restricted(pairs, g, j, rng);
        if (next < 0) ++fallbacks;
      }
      if (next < 0) next = global(items, rng);
      selected_.insert(next);
      out[t] = next;
    }
    return fallbacks;
  }

 private:
  bool is_selected(std::int64_t i) const { return selected_.contains(i); }

  // An instance from P over all instances not selected yet.
  std::int64_t global(WeightedIndex& items, Rng& rng) {
    for (int tries = 0; tries < kMaxTries; ++tries) {
      const auto i = static_cast<std::int64_t>(items.locate(rng.uniform() * items.total()));
      if (!is_selected(i)) return i;
    }
    // The selected instances hold most of the mass: draw exactly among the others.
    double mass = 0.0;
    for (std::size_t i = 0; i < items.size(); ++i)
      if (!is_selected(static_cast<std::int64_t>(i))) mass += items.weight(i);
    double u = rng.uniform() * mass;
    std::int64_t last = -1;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (is_selected(static_cast<std::int64_t>(i)) || items.weight(i) <= 0.0) continue;
      last = static_cast<std::int64_t>(i);
      if (u < items.weight(i)) return last;
      u -= items.weight(i);
    }
    return last;
  }

  // An instance from P restricted to D_c(j) \ Sel, or -1 when that set has no mass.
  std::int64_t restricted(const WeightedIndex& pairs, const ChainGraph& g, std::int64_t j, Rng& rng) {
    const std::int64_t* lc = g.related + g.related_ptr[j];
    const std::size_t K = static_cast<std::size_t>(g.related_ptr[j + 1] - g.related_ptr[j]);
    if (K == 0) return -1;
    mass_.resize(K);
    double total = 0.0;
    for (std::size_t a = 0; a < K; ++a) {
      const auto l = lc[a];
      mass_[a] = std::max(0.0, pairs.prefix(g.posting_ptr[l + 1]) - pairs.prefix(g.posting_ptr[l]));
      total += mass_[a];
    }
    if (!(total > 0.0)) return -1;
    for (int tries = 0; tries < kMaxTries; ++tries) {
      double u = rng.uniform() * total;
      std::size_t a = 0;
      while (a + 1 < K && u >= mass_[a]) u -= mass_[a++];
      if (!(mass_[a] > 0.0)) continue;
      const auto l = lc[a];
      const std::size_t lo = static_cast<std::size_t>(g.posting_ptr[l]);
      const std::size_t hi = static_cast<std::size_t>(g.posting_ptr[l + 1]);
      const std::size_t e = pairs.locate(pairs.prefix(lo) + rng.uniform() * mass_[a]);
      if (e < lo || e >= hi) continue;  // rounding at the range's edge
      const std::int64_t i = g.posting_item[e];
      const std::size_t c = multiplicity(g, i, lc, K);
      if (c > 1 && rng.uniform() * static_cast<double>(c) >= 1.0) continue;
      if (!is_selected(i)) return i;
    }
    return exact_restricted(pairs, g, lc, K, rng);
  }

  // c_i = |Y_i intersect L_c|.
  static std::size_t multiplicity(const ChainGraph& g, std::int64_t i, const std::int64_t* lc, std::size_t K) {
    std::size_t c = 0;
    for (std::int64_t p = g.label_ptr[i]; p < g.label_ptr[i + 1]; ++p)
      c += std::find(lc, lc + K, g.labels[p]) != lc + K;
    return c;
  }

  // Exact draw over D_c \ Sel by enumeration (after repeated rejections).
  std::int64_t exact_restricted(const WeightedIndex& pairs, const ChainGraph& g, const std::int64_t* lc,
                                std::size_t K, Rng& rng) {
    candidates_.clear();
    for (std::size_t a = 0; a < K; ++a)
      for (std::int64_t e = g.posting_ptr[lc[a]]; e < g.posting_ptr[lc[a] + 1]; ++e)
        candidates_.push_back(e);
    // One pair per instance (the smallest pair position), unselected, positive weight.
    std::sort(candidates_.begin(), candidates_.end(),
              [&](std::int64_t x, std::int64_t y) { return g.posting_item[x] < g.posting_item[y]; });
    double mass = 0.0;
    std::size_t kept = 0;
    for (std::size_t c = 0; c < candidates_.size(); ++c) {
      const std::int64_t i = g.posting_item[candidates_[c]];
      if (c > 0 && g.posting_item[candidates_[c - 1]] == i) continue;
      const double w = pairs.weight(static_cast<std::size_t>(candidates_[c]));
      if (is_selected(i) || !(w > 0.0)) continue;
      candidates_[kept++] = candidates_[c];
      mass += w;
    }
    if (kept == 0 || !(mass > 0.0)) return -1;
    double u = rng.uniform() * mass;
    for (std::size_t c = 0; c < kept; ++c) {
      const double w = pairs.weight(static_cast<std::size_t>(candidates_[c]));
      if (u < w || c + 1 == kept) return g.posting_item[candidates_[c]];
      u -= w;
    }
    return -1;
  }

  IndexSet selected_;
  std::vector<double> mass_;
  std::vector<std::int64_t> candidates_;
};

}  // namespace mlbs
