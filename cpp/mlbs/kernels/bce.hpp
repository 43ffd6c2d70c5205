// Per-sample binary cross-entropy of one trained batch against 0/1 labels stored as CSR, in one
// pass over the model outputs (the observation step of every loss-based policy).
//
// With softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|), the BCE of a logit z against a
// label y in {0, 1} is softplus(z) - y z, so the mean over the q labels of sample i is
//
//     l_i = (1/q) [ sum_j softplus(z_ij) - sum_{j in Y_i} z_ij ],
//
// and for probabilities p (clipped to [c, 1 - c]) BCE = -log(1 - p) - y (log p - log(1 - p)):
//
//     l_i = (1/q) [ -sum_j log1p(-p_ij) - sum_{j in Y_i} (log p_ij - log1p(-p_ij)) ].
//
// The dense part (all m q entries) is one branch-free loop that the compiler vectorises; with
// glibc on x86-64 (GCC) the calls to exp/log1p go to glibc's vector math library (libmvec,
// accurate to a few ulp; see vector_math.hpp), elsewhere to the scalar functions. Entries are
// computed in the outputs' precision (a model's float32 logits stay float32) and summed in double.
// The reference is mlbs.losses.per_sample_bce_csr (numpy); tests check that they agree.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mlbs/prefetch.hpp"
#include "mlbs/kernels/vector_math.hpp"

namespace mlbs {

namespace bce_detail {

inline float exp_(float x) { return ::expf(x); }
inline double exp_(double x) { return ::exp(x); }
inline float log1p_(float x) { return ::log1pf(x); }
inline double log1p_(double x) { return ::log1p(x); }

// Probability margin c keeping log(p) and log(1 - p) finite (as mlbs.losses.probability_clip).
template <class Real>
constexpr Real probability_clip() { return sizeof(Real) == 4 ? Real(1e-7) : Real(1e-12); }

// sum_j x[j] in double, in a fixed order that does not depend on the hardware: eight running
// sums over j mod 8, added pairwise at the end. (One running sum would wait on the latency of
// every addition; eight keep the adder busy.)
template <class Real>
MLBS_WIDE_VECTORS double sum_in_lanes(const Real* x, std::size_t count) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 8 <= count; j += 8)
    for (int k = 0; k < 8; ++k) lane[k] += static_cast<double>(x[j + k]);
  for (int k = 0; j < count; ++j, ++k) lane[k] += static_cast<double>(x[j]);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// Whether an output is invalid: not finite, or (probabilities) outside [0, 1]. x - x is 0 exactly
// when x is finite (inf - inf and NaN - NaN are NaN); unlike std::isfinite this form vectorises.
template <bool Probabilities, class Real>
inline bool invalid_output(Real x) {
  if constexpr (Probabilities) return !((x >= Real(0)) & (x <= Real(1)));
  else return !((x - x) == Real(0));
}

// term[t] = softplus(out[t]) for logits, -log1p(-clip(out[t])) for probabilities; returns the
// number of invalid outputs. Counting rather than stopping at the first keeps the loops
// branch-free so that they vectorise.
template <class Real>
MLBS_WIDE_VECTORS std::size_t entry_terms(const Real* out, std::size_t count, bool probabilities, Real* term) {
  constexpr Real c = probability_clip<Real>();
  std::size_t bad = 0;
  if (probabilities) {
    MLBS_SIMD_LOOP
    for (std::size_t t = 0; t < count; ++t) {
      bad += invalid_output<true>(out[t]);
      const Real p = std::min(std::max(out[t], c), Real(1) - c);
      term[t] = -log1p_(-p);
    }
  } else {
    MLBS_SIMD_LOOP
    for (std::size_t t = 0; t < count; ++t) {
      const Real z = out[t];
      bad += invalid_output<false>(z);
      const Real a = z < Real(0) ? -z : z;
      term[t] = (z > Real(0) ? z : Real(0)) + log1p_(exp_(-a));
    }
  }
  return bad;
}

}  // namespace bce_detail

// Number of the `count` outputs that are invalid (bce_detail::invalid_output), in one
// vectorised pass.
template <class Real>
MLBS_WIDE_VECTORS std::size_t count_invalid_outputs(const Real* out, std::size_t count, bool probabilities) {
  std::size_t bad = 0;
  if (probabilities) {
    for (std::size_t t = 0; t < count; ++t) bad += bce_detail::invalid_output<true>(out[t]);
  } else {
    for (std::size_t t = 0; t < count; ++t) bad += bce_detail::invalid_output<false>(out[t]);
  }
  return bad;
}

// loss[r] = mean BCE of row r of `out` (m x q, row-major) against label row rows[r] of the CSR
// structure (indptr, cols); rows[r] must be in range. Returns false, with `loss` untouched, when
// an output is not finite or (probabilities) outside [0, 1]. `scratch` holds the m q per-entry
// terms between the two passes (reused between calls).
template <class Real, class Index>
bool per_sample_bce_csr(const Real* out, std::size_t m, std::size_t q, const std::int64_t* rows,
                        const Index* indptr, const Index* cols, bool probabilities, double* loss,
                        std::vector<Real>& scratch) {
  using namespace bce_detail;
  // The label rows of a batch are scattered over a large CSR structure: ask for all of them
  // first (their extents, then their column ids), so that the misses overlap each other and the
  // dense pass instead of stalling the per-row loop one after another.
  for (std::size_t r = 0; r < m; ++r) MLBS_PREFETCH(indptr + rows[r]);
  for (std::size_t r = 0; r < m; ++r) MLBS_PREFETCH(cols + indptr[rows[r]]);
  scratch.resize(m * q);
  Real* term = scratch.data();
  if (entry_terms(out, m * q, probabilities, term) != 0) return false;
  constexpr Real c = probability_clip<Real>();
  for (std::size_t r = 0; r < m; ++r) {
    const Real* row_out = out + r * q;
    const Real* row_term = term + r * q;
    const double base = sum_in_lanes(row_term, q);
    double gain = 0.0;
    for (Index e = indptr[rows[r]]; e < indptr[rows[r] + 1]; ++e) {
      const auto j = static_cast<std::size_t>(cols[e]);
      if (probabilities) {
        const Real p = std::min(std::max(row_out[j], c), Real(1) - c);
        gain += static_cast<double>(std::log(p)) + static_cast<double>(row_term[j]);
      } else {
        gain += static_cast<double>(row_out[j]);
      }
    }
    loss[r] = (base - gain) / static_cast<double>(q);
  }
  return true;
}

}  // namespace mlbs
