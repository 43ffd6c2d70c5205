// The module mlbs._core: the sampling structures (structures.cpp) and the per-batch kernels of
// the policies (kernels.cpp); the flags the module was compiled with (build_flags) and the
// instruction set its inner loops use (isa: "avx512", "avx2" or "baseline"; the environment
// variable MLBS_FORCE_BASELINE=1, read at import, forces the baseline).
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <string>

#include "bind.hpp"
#include "mlbs/structures/weighted_index.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled sampling core of mlbs (weighted index, rank index, RNG).";
  m.attr("build_flags") = MLBS_BUILD_FLAGS;
  const char* force = std::getenv("MLBS_FORCE_BASELINE");
  if (force && std::string(force) == "1") mlbs::simd::active_isa() = mlbs::simd::Isa::baseline;
  m.attr("isa") = mlbs::simd::isa_name(mlbs::simd::active_isa());
  mlbs::binding::bind_structures(m);
  mlbs::binding::bind_kernels(m);
}
