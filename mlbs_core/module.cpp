// The module mlbs._core: the sampling structures (structures.cpp) and the per-batch kernels of
// the policies (kernels.cpp); the flags the module was compiled with (build_flags) and the
// instruction set its inner loops use (isa: "avx512", "avx2" or "baseline": the widest the CPU
// supports, or the narrower one named by the environment variable MLBS_MAX_ISA, read at import).
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <string>

#include "bind.hpp"
#include "mlbs/structures/weighted_index.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled sampling core of mlbs (weighted index, rank index, RNG).";
  m.attr("build_flags") = MLBS_BUILD_FLAGS;
  if (const char* cap = std::getenv("MLBS_MAX_ISA"); cap && *cap) {
    mlbs::simd::Isa max;
    if (!mlbs::simd::isa_of_name(cap, max))
      throw pybind11::value_error(std::string("MLBS_MAX_ISA must be baseline, avx2 or avx512, got '") + cap + "'");
    if (max < mlbs::simd::active_isa()) mlbs::simd::active_isa() = max;
  }
  m.attr("isa") = mlbs::simd::isa_name(mlbs::simd::active_isa());
  mlbs::binding::bind_structures(m);
  mlbs::binding::bind_kernels(m);
}
