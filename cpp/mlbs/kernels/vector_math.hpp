// Vectorisable elementary functions for the per-entry loops of the core.
//
// With GCC and glibc on x86-64, glibc's vector math library (libmvec, linked through libm,
// accurate to a few ulp) provides vector variants of exp, log and log1p, but <cmath> declares them
// only under -ffast-math. The declarations below let a loop marked MLBS_SIMD_LOOP call them
// without relaxing the floating-point rules anywhere else; elsewhere the loops call the scalar
// functions and the macros expand to nothing.
//
// mlbs::vmath has branch-free inline versions of e^x (x <= 0) and log(1 + t) (t in [0, 1]) that
// the compiler vectorises in place, with no call: faster than libmvec's where a loop needs both.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) && defined(__x86_64__) && \
    !defined(__FAST_MATH__)
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float) noexcept;
__attribute__((simd("notinbranch"))) float log1pf(float) noexcept;
__attribute__((simd("notinbranch"))) double exp(double) noexcept;
__attribute__((simd("notinbranch"))) double log(double) noexcept;
__attribute__((simd("notinbranch"))) double log1p(double) noexcept;
}
#define MLBS_SIMD_LOOP _Pragma("omp simd")
// The same with 16 lanes (where GCC's own choice is measured to be slow)
#define MLBS_SIMD_LOOP_16 _Pragma("omp simd simdlen(16)")
// Where the CPU has 512-bit vectors, use them for these loops (GCC keeps 256 by default).
#define MLBS_WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define MLBS_SIMD_LOOP
#define MLBS_SIMD_LOOP_16
#define MLBS_WIDE_VECTORS
#endif

// The functions below are called inside vectorised loops, which they must be inlined into to be
// vectorised: with many instantiations in one translation unit, GCC's inlining budget otherwise
// left some calls out of line (measured: the prediction window's loops ran 3x slower in the
// -march=native module).
#if defined(__GNUC__)
#define MLBS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MLBS_ALWAYS_INLINE inline
#endif

namespace mlbs::vmath {

// a b + c: fused (one rounding) where the target has a fast FMA instruction, else two roundings.
MLBS_ALWAYS_INLINE double mul_add(double a, double b, double c) {
#ifdef __FP_FAST_FMA
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}

MLBS_ALWAYS_INLINE std::uint64_t bits_of(double x) {
  std::uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

MLBS_ALWAYS_INLINE double double_of(std::uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits: k kLn2Hi is exact for |k| < 2^21
constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi

// e^x for x <= 0 (NaN gives NaN), branch-free so that loops calling it vectorise; within 1 ulp
// of the correctly rounded value for x >= -708; below, 2^-1021 e^(x + 708) rounded (the result
// stays normal: an error < 2.3e-308).
// x = k ln 2 + r with k = round(x / ln 2) (by the 1.5 2^52 shift, no floor needed), |r| <= ln 2 / 2
// (Cody-Waite: r = (x - k kLn2Hi) - k kLn2Lo); e^r = 1 + (r + r^2 (1/2 + r Q(r))) with the Taylor
// polynomial Q of degree 10 (truncation < 4e-18 relative) by Estrin's scheme; e^x = e^r 2^k.
MLBS_ALWAYS_INLINE double exp_nonpositive(double x) {
  constexpr double shift = 6755399441055744.0;  // 1.5 2^52
  const double xc = x < -708.0 ? -708.0 : x;
  const double shifted = mul_add(xc, 1.44269504088896338700e+00, shift);
  const double k = shifted - shift;
  const double r = (xc - k * kLn2Hi) - k * kLn2Lo;
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double a0 = mul_add(r, 1.0 / 24.0, 1.0 / 6.0), a1 = mul_add(r, 1.0 / 720.0, 1.0 / 120.0);
  const double a2 = mul_add(r, 1.0 / 40320.0, 1.0 / 5040.0), a3 = mul_add(r, 1.0 / 3628800.0, 1.0 / 362880.0);
  const double a4 = mul_add(r, 1.0 / 479001600.0, 1.0 / 39916800.0);
  const double b0 = mul_add(a1, r2, a0), b1 = mul_add(a3, r2, a2), b2 = mul_add(1.0 / 6227020800.0, r2, a4);
  const double Q = mul_add(b2, r8, mul_add(b1, r4, b0));
  const double p = 1.0 + mul_add(r2, mul_add(r, Q, 0.5), r);
  // 2^k from the low bits of `shifted` (k in [-1021, 0]; unsigned arithmetic: no overflow for any input)
  return p * double_of((bits_of(shifted) - bits_of(shift) + 1023) << 52);
}

// log(1 + t) for t in [0, 1], branch-free; inv_u = 1 / (1 + t) (rounded), which the caller has.
// Within 2 ulp of the correctly rounded value.
// u = 1 + t rounded, c = t - (u - 1) its exact rounding error; u = 2^k m with k = 1 when
// u > sqrt 2 (else 0), m in [0.71, 1.42]; log m = 2 atanh(s) = 2 s + 2 s z Q(z), s = (m - 1) / (m + 1),
// |s| < 0.172, z = s^2, Q(z) = 1/3 + z/5 + ... + z^9/21 (truncation < 3e-17) by Estrin's scheme;
// log(1 + t) = k ln 2 + log m + c / u (c / u as c inv_u).
MLBS_ALWAYS_INLINE double log1p_unit(double t, double inv_u) {
  const double u = 1.0 + t;
  const double c = t - (u - 1.0);
  const bool big = u > 1.4142135623730951;
  const double m = big ? 0.5 * u : u;
  const double kf = big ? 1.0 : 0.0;
  const double s = (m - 1.0) / (m + 1.0);
  const double z = s * s, z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const double a0 = mul_add(z, 1.0 / 5.0, 1.0 / 3.0), a1 = mul_add(z, 1.0 / 9.0, 1.0 / 7.0);
  const double a2 = mul_add(z, 1.0 / 13.0, 1.0 / 11.0), a3 = mul_add(z, 1.0 / 17.0, 1.0 / 15.0);
  const double a4 = mul_add(z, 1.0 / 21.0, 1.0 / 19.0);
  const double Q = mul_add(a4, z8, mul_add(mul_add(a3, z2, a2), z4, mul_add(a1, z2, a0)));
  const double two_s = 2.0 * s;
  return kf * kLn2Hi + (kf * kLn2Lo + (two_s + mul_add(two_s * z, Q, c * inv_u)));
}

}  // namespace mlbs::vmath
