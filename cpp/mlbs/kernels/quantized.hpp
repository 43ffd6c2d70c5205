// One batch of observations for quantized-by-maximum selection (seed paper eqs. 5-7), in one
// pass: the table update L_i = w_i l_i and, when the reference R is still valid, the new
// sampling weights omega_i = s^(Q_i/N), Q_i = ceil(N L_i / R) clamped to [0, N], of the visited
// samples. R is the maximum L_max (the paper's definition) or a reference above it (Adaptive's
// max_reference="geometric"). The arithmetic is that of mlbs.policies.transforms.quantized_by_max, in the
// same order. Inputs are checked by the caller (mlbs.policies.Adaptive).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace mlbs {

// Writes table[idx[t]] = w[idx[t]] * loss[t] in order. Returns true when a visited entry
// exceeds the reference R, or the entry `argmax` holding L_max ends below R (with R = L_max:
// when L_max moved, and the caller rebuilds all weights). Otherwise fills omega[t] for every t
// and returns false.
inline bool observe_quantized(double* table, const double* w, const std::int64_t* idx, const double* loss,
                              std::size_t m, double reference, std::int64_t argmax, std::size_t n,
                              double pressure, double* omega) {
  for (std::size_t t = 0; t < m; ++t) table[idx[t]] = w[idx[t]] * loss[t];
  bool moved = false;
  for (std::size_t t = 0; t < m; ++t)
    moved |= table[idx[t]] > reference || (idx[t] == argmax && table[argmax] < reference);
  if (moved) return true;
  const double nd = static_cast<double>(n);
  const double step = std::log(pressure) / nd;
  for (std::size_t t = 0; t < m; ++t) {
    if (!(reference > 0.0)) {
      omega[t] = 1.0;
      continue;
    }
    const double level = std::clamp(std::ceil(nd * table[idx[t]] / reference), 0.0, nd);
    omega[t] = std::exp(level * step);
  }
  return false;
}

}  // namespace mlbs
