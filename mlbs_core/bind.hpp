// The parts of the module mlbs._core, bound by their own translation units.
#pragma once

#include <pybind11/pybind11.h>

namespace mlbs::binding {

// WeightedIndex and RankIndex (structures.cpp).
void bind_structures(pybind11::module_& m);
// The internal per-batch kernels (kernels.cpp).
void bind_kernels(pybind11::module_& m);

}  // namespace mlbs::binding
