// The module mlbs._core: the sampling structures (structures.cpp) and the per-batch kernels of
// the policies (kernels.cpp), and the flags the module was compiled with.
#include <pybind11/pybind11.h>

#include "bind.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled sampling core of mlbs (weighted index, rank index, RNG).";
  m.attr("build_flags") = MLBS_BUILD_FLAGS;
  mlbs::binding::bind_structures(m);
  mlbs::binding::bind_kernels(m);
}
