// The per-(sample, label) signals of the uncertainty policies, updated at every visit of a sample
// (mlbs.policies.signals.PredictionWindow; methods.md 7, 8.2): a ring buffer of the last w
// probabilities, the uncertainty E, the EMA phi of the prediction change and the latest BCE.
//
// At a visit of sample i, c = count[i] visits before this one, with outputs z_ij (logits) or
// p_ij (probabilities) and labels y_ij in {0, 1}, for every label j:
//
//   logits:        t = e^(-|z|),  p = 1 / (1 + t) if z >= 0 else t / (1 + t),
//                  -log(1 - p) = softplus(z) = max(z, 0) + log1p(t),  -log p = softplus(z) - z,
//                  H = (p (-log p) + (1 - p) (-log(1 - p))) / ln 2;
//   probabilities: H = -(p log p [p > 0] + (1 - p) log1p(-p) [p < 1]) / ln 2  (0 log 0 = 0),
//                  -log p and -log(1 - p) of p clipped to [1e-12, 1 - 1e-12];
//   H = NaN where float32(p) is 0 or 1 (entropy_nan);
//   l = -log p if y = 1 else -log(1 - p);
//   slot c mod w of the window receives p: as is (float storage) or as the code floor(s p + 1/2)
//   (integer storage, s = 255 for uint8, 65535 for uint16);
//   with m = min(c + 1, w) stored visits, their values v_1 .. v_m oldest to newest (slots
//   (c + 1 - m) mod w .. c mod w) and the changes d_k = |v_k - v_(k-1)| taken in double between
//   the stored values, S = d_2 + ... + d_(m-1) summed in this order, s' = s (integer storage) or 1:
//     E = 1/2 ((S + d_m) (1 / (s' (m - 1)))) + 1/2 H,  phi <- alpha (d_m / s') + (1 - alpha) phi
//     when m >= 2;  E = 1/2 (0, or NaN with short_nan) + 1/2 H,  phi <- alpha 0 + (1 - alpha) phi
//     when m = 1;
//   loss_ij = l (when tracked), and the sample's loss is (1/q) sum_j l, summed in double as eight
//   running sums over j mod 8 added pairwise at the end.
// Then count[i] = c + 1. Tables of float32 receive these double results rounded.
//
// Each visited row is processed in chunks of kChunk labels, whose double buffers stay in L1:
// one pass computes p, H and l (for logits, e^(-|z|) first, then the rest: two short loops run
// faster than one long one), the positives' l is set from the row's label list, then one loop
// stores p in the window and writes E and phi, the changes of a window of up to kFused values
// being taken in registers (integers for integer codes), of a longer one summed in a buffer first.
// Every loop is branch-free (the options are template parameters, chosen per chunk), so the
// compiler vectorises it; e^x and log1p for logits are the polynomial versions of vector_math.hpp
// (within 1 and 2 ulp), log and log1p for probabilities glibc's vector functions where available.
// No software prefetch: measured, it made the pass slower (the hardware prefetchers follow the
// contiguous rows). The rows are visited on the calling thread: splitting a batch of 1024 x 128
// entries over threads started per call measured no faster than one thread (docs/benchmarks.md).
// The loops are compiled for the build's baseline and, with GCC on x86-64, for AVX2 and AVX-512
// (prediction_window_loops.inc, once per set); the widest the CPU supports runs (mlbs/simd.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "mlbs/kernels/vector_math.hpp"
#include "mlbs/simd.hpp"

namespace mlbs {

// The tables of one window (row-major): window n x w x q, count n, E n x q; phi and loss n x q,
// or null when not tracked. W: float, double, std::uint16_t or std::uint8_t; T: float or double.
template <class W, class T>
struct WindowTables {
  W* window;
  std::int64_t* count;
  T* E;
  T* phi;
  T* loss;
  std::size_t n, w, q;
  double alpha;
  bool entropy_nan, short_nan;
};

namespace window_detail {

constexpr std::size_t kChunk = 256;  // a multiple of 8 (the running sums of the loss go on across chunks)

// s of the formulas: the largest code of an integer storage, 0 for a float storage (stored as is).
template <class W>
constexpr double code_scale() {
  return std::is_integral<W>::value ? static_cast<double>(std::numeric_limits<W>::max()) : 0.0;
}

// l[j] = -log p for the positives j0 + j of the chunk [j0, j0 + len): the columns from *e on
// (increasing) below j0 + len; *e is advanced past them. (l, p, out: the chunk's.)
template <class Real, class Index>
void positive_losses(bool logits, const Index*& e, const Index* end, std::size_t j0, std::size_t len,
                     const Real* out, const double* p, double* l) {
  for (; e != end && static_cast<std::size_t>(*e) < j0 + len; ++e) {
    const std::size_t j = static_cast<std::size_t>(*e) - j0;
    if (logits)
      l[j] = l[j] - static_cast<double>(out[j]);  // -log p = softplus(z) - z
    else
      l[j] = -std::log(std::min(std::max(p[j], 1e-12), 1.0 - 1e-12));
  }
}

// The stored value of p: as is (float storage), or floor(s p + 1/2) computed as a truncation
// (s p + 1/2 >= 0; integer storage).
template <class W>
inline W stored(double p) {
  if constexpr (std::is_integral<W>::value)
    return static_cast<W>(static_cast<std::int32_t>(p * code_scale<W>() + 0.5));
  else
    return static_cast<W>(p);
}

// The type in which the changes d_k and their sums are taken: double for a float storage; int32
// for integer codes, whose differences and sums (at most 65535 (kFused - 1)) are exact in either
// type, so that the result is the same.
template <class W>
using Change = std::conditional_t<std::is_integral<W>::value, std::int32_t, double>;

template <class D>
inline D magnitude(D d) {
  if constexpr (std::is_integral<D>::value)
    return d < 0 ? -d : d;
  else
    return std::abs(d);
}

struct UpdateConstants {
  double to_mean, inv_scale, alpha, short_change;
};

// Windows of up to kFused stored values are updated in one loop (one case per length in visit_row).
constexpr std::size_t kFused = 6;

#define MLBS_WINDOW_LOOPS Baseline
#include "mlbs/kernels/prediction_window_loops.inc"
#undef MLBS_WINDOW_LOOPS

#if MLBS_ISA_DISPATCH
MLBS_PUSH_TARGET(MLBS_TARGET_AVX2)
#define MLBS_WINDOW_LOOPS Avx2
#include "mlbs/kernels/prediction_window_loops.inc"
#undef MLBS_WINDOW_LOOPS
MLBS_POP_TARGET

MLBS_PUSH_TARGET(MLBS_TARGET_AVX512)
#define MLBS_WINDOW_LOOPS Avx512
#include "mlbs/kernels/prediction_window_loops.inc"
#undef MLBS_WINDOW_LOOPS
MLBS_POP_TARGET
#else
using Avx2 = Baseline;
using Avx512 = Baseline;
#endif

// One visit of row i (outputs `out`, positive labels cols[0 .. count), increasing) with the loops
// of Loops (Baseline, Avx2 or Avx512); returns the sample's loss.
template <class Loops, class Real, class W, class T, class Index>
double visit_row(const WindowTables<W, T>& tab, std::size_t i, const Real* out, const Index* cols,
                 std::size_t count, bool logits) {
  const std::size_t w = tab.w, q = tab.q;
  const auto c = static_cast<std::uint64_t>(tab.count[i]);
  const std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(c + 1, w));
  const std::uint64_t first = c + 1 - m;  // visit number of the oldest stored value
  W* row_window = tab.window + i * w * q;
  auto slot = [&](std::size_t v) { return row_window + static_cast<std::size_t>((first + v) % w) * q; };
  const double scale = code_scale<W>() > 0.0 ? code_scale<W>() : 1.0;
  UpdateConstants k;
  k.to_mean = m >= 2 ? 1.0 / (scale * static_cast<double>(m - 1)) : 0.0;
  k.inv_scale = 1.0 / scale;
  k.alpha = tab.alpha;
  k.short_change = tab.short_nan ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  auto terms = logits ? (tab.entropy_nan ? &Loops::template entry_terms<true, true, Real>
                                         : &Loops::template entry_terms<true, false, Real>)
                      : (tab.entropy_nan ? &Loops::template entry_terms<false, true, Real>
                                         : &Loops::template entry_terms<false, false, Real>);
  T* E = tab.E + i * q;
  T* phi = tab.phi ? tab.phi + i * q : nullptr;
  T* loss = tab.loss ? tab.loss + i * q : nullptr;
  const Index* e = cols;
  alignas(64) double p[kChunk], h[kChunk], l[kChunk], sum[kChunk];
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  W* slots[kFused];
  for (std::size_t j0 = 0; j0 < q; j0 += kChunk) {
    const std::size_t len = std::min(kChunk, q - j0);
    terms(out + j0, len, p, h, l);
    positive_losses(logits, e, cols + count, j0, len, out + j0, p, l);
    Loops::add_losses(l, len, lane, loss ? loss + j0 : nullptr);
    T* E_chunk = E + j0;
    T* phi_chunk = phi ? phi + j0 : nullptr;
    if (m <= kFused) {
      for (std::size_t v = 0; v < m; ++v) slots[v] = slot(v) + j0;
    } else {
      Loops::template changes<false>(slot(0) + j0, slot(1) + j0, len, sum);
      for (std::size_t v = 2; v + 1 < m; ++v) Loops::template changes<true>(slot(v - 1) + j0, slot(v) + j0, len, sum);
      slots[0] = slot(m - 2) + j0;
      slots[1] = slot(m - 1) + j0;
    }
    static_assert(kFused == 6, "one case per window length");
    switch (m <= kFused ? m : 0) {
      case 1: Loops::template update_chunk<1>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      case 2: Loops::template update_chunk<2>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      case 3: Loops::template update_chunk<3>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      case 4: Loops::template update_chunk<4>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      case 5: Loops::template update_chunk<5>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      case 6: Loops::template update_chunk<6>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
      default: Loops::template update_chunk<0>(p, h, sum, slots, len, k, E_chunk, phi_chunk); break;
    }
  }
  tab.count[i] = static_cast<std::int64_t>(c + 1);
  return (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))) /
         static_cast<double>(q);
}

}  // namespace window_detail

// One visit of each of the m samples rows[r] with outputs out[r q .. (r + 1) q) (row-major,
// logits or probabilities), labels from the CSR structure (indptr, cols), cols of length nnz: the
// update of the header comment, rows in order; sample_loss[r] = the sample's mean BCE. Returns
// false, with nothing changed, when a row is outside [0, n), a count negative, or a visited row's
// labels are not strictly increasing in [0, q) within cols (canonical CSR).
template <class Real, class W, class T, class Index>
bool visit_prediction_window(const WindowTables<W, T>& tab, const std::int64_t* rows, std::size_t m,
                             const Real* out, bool logits, const Index* indptr, const Index* cols,
                             std::size_t nnz, double* sample_loss) {
  const auto n = static_cast<std::int64_t>(tab.n), q = static_cast<std::int64_t>(tab.q);
  if (tab.w == 0 || tab.q == 0) return false;
  for (std::size_t r = 0; r < m; ++r) {
    const std::int64_t i = rows[r];
    if (i < 0 || i >= n || tab.count[i] < 0 || indptr[i] < 0 || indptr[i] > indptr[i + 1] ||
        static_cast<std::uint64_t>(indptr[i + 1]) > nnz)
      return false;
    std::int64_t previous = -1;
    for (Index e = indptr[i]; e < indptr[i + 1]; ++e) {
      const auto col = static_cast<std::int64_t>(cols[e]);
      if (col <= previous || col >= q) return false;
      previous = col;
    }
  }
  auto visit_rows = [&](auto loops) {
    using Loops = decltype(loops);
    for (std::size_t r = 0; r < m; ++r) {
      const auto i = static_cast<std::size_t>(rows[r]);
      sample_loss[r] = window_detail::visit_row<Loops>(tab, i, out + r * tab.q, cols + indptr[i],
                                                       static_cast<std::size_t>(indptr[i + 1] - indptr[i]), logits);
    }
  };
  simd::on_active_isa<window_detail::Baseline, window_detail::Avx2, window_detail::Avx512>(visit_rows);
  return true;
}

}  // namespace mlbs
