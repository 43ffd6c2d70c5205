// Run-time choice of the instruction set of the core's inner loops.
//
// The build's baseline (x86-64-v2 by default) is always compiled. With GCC on x86-64
// (MLBS_ISA_DISPATCH), the loops that gain from wider vectors are compiled again for AVX2 and for
// AVX-512 (the x86-64-v4 subset below), each copy inside a region or function carrying the
// target strings MLBS_TARGET_AVX2 / MLBS_TARGET_AVX512, and the widest set the CPU supports runs.
// Results are the same on every path (comparisons are exact, sums keep their order, products
// are not fused: -ffp-contract=off), except where a loop calls glibc's vector math functions,
// whose variants may differ in the last bit (said where it happens).
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MLBS_ISA_DISPATCH 1
#else
#define MLBS_ISA_DISPATCH 0
#endif

#include <cstring>

#define MLBS_TARGET_AVX2 "popcnt,avx2"
#define MLBS_TARGET_AVX512 "popcnt,avx2,avx512f,avx512dq,avx512vl,avx512bw,avx512cd"

// MLBS_PUSH_TARGET(MLBS_TARGET_AVX2) ... MLBS_POP_TARGET: a region compiled for that set. (GCC does
// not expand macros in a plain "#pragma GCC target", hence _Pragma.)
#define MLBS_PRAGMA(text) _Pragma(#text)
#define MLBS_PUSH_TARGET(isa) _Pragma("GCC push_options") MLBS_PRAGMA(GCC target(isa))
#define MLBS_POP_TARGET _Pragma("GCC pop_options")

namespace mlbs::simd {

enum class Isa { baseline, avx2, avx512 };

inline Isa detect_isa() {
#if MLBS_ISA_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2")) return Isa::avx2;
#endif
  return Isa::baseline;
}

// The set in use: detected once; the Python module lowers it to the set named by the environment
// variable MLBS_MAX_ISA when that is narrower (to test the narrower paths on a wider CPU).
inline Isa& active_isa() {
  static Isa isa = detect_isa();
  return isa;
}

inline const char* isa_name(Isa isa) {
  return isa == Isa::avx512 ? "avx512" : isa == Isa::avx2 ? "avx2" : "baseline";
}

// visit(Loops{}) with the struct of loops compiled for the set in use: Baseline, Avx2 or Avx512
// (where the build has no run-time choice, a module names Baseline for all three).
template <class Baseline, class Avx2, class Avx512, class Visit>
void on_active_isa(Visit&& visit) {
  switch (active_isa()) {
    case Isa::avx512:
      visit(Avx512{});
      return;
    case Isa::avx2:
      visit(Avx2{});
      return;
    default:
      visit(Baseline{});
  }
}

// The set named name ("baseline", "avx2" or "avx512"); false for any other name.
inline bool isa_of_name(const char* name, Isa& isa) {
  for (Isa candidate : {Isa::baseline, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(name, isa_name(candidate)) == 0) {
      isa = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace mlbs::simd
