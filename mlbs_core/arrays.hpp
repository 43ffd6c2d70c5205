// Argument conversion and checks shared by the bindings of the structures and of the kernels:
// array-likes to contiguous int64 / float64 vectors, refusing what would be converted silently
// (floats as indices, strings as numbers), with messages that name the offending value.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace mlbs::binding {

namespace py = pybind11;
using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += std::to_string(a.shape(d)) + (a.ndim() == 1 ? "," : d + 1 < a.ndim() ? ", " : "");
  return s + ")";
}

inline py::array as_1d(const py::handle& obj, const char* what) {
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(std::string(what) + " must be array-like");
  if (a.ndim() != 1)
    throw py::value_error(std::string(what) + " must be one-dimensional, got shape " + shape_of(a));
  return a;
}

// Integer array (any integer dtype) -> contiguous int64. Floats and booleans are refused so that
// a non-integer index never gets truncated silently.
// Already a contiguous 1-D array of T: use it as it is (the common case, and the cheap one).
template <class T>
inline bool is_exact_vector(const py::handle& obj) {
  if (!py::isinstance<py::array>(obj)) return false;
  auto a = py::reinterpret_borrow<py::array>(obj);
  return a.ndim() == 1 && a.dtype().is(py::dtype::of<T>()) && (a.flags() & py::array::c_style);
}

inline IndexArray as_indices(const py::handle& obj) {
  if (is_exact_vector<std::int64_t>(obj)) return py::reinterpret_borrow<IndexArray>(obj);
  py::array a = as_1d(obj, "indices");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u' && a.size() > 0)
    throw py::type_error("indices must be integers, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  return IndexArray::ensure(a);
}

// Real array (float or integer dtype) -> contiguous float64.
inline FloatArray as_reals(const py::handle& obj, const char* what) {
  if (is_exact_vector<double>(obj)) return py::reinterpret_borrow<FloatArray>(obj);
  py::array a = as_1d(obj, what);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && a.size() > 0)
    throw py::type_error(std::string(what) + " must be real numbers, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  return FloatArray::ensure(a);
}

inline bool all_in_range(const std::int64_t* indices, std::size_t m, std::int64_t n) {
  bool ok = true;
  for (std::size_t t = 0; t < m; ++t) ok &= (indices[t] >= 0) & (indices[t] < n);
  return ok;
}

inline std::size_t as_count(std::int64_t k, const char* what) {
  if (k < 0) throw py::value_error(std::string(what) + " must be >= 0, got " + std::to_string(k));
  return static_cast<std::size_t>(k);
}

inline void check_pair(const IndexArray& idx, const FloatArray& values, const std::string& what) {
  if (idx.size() != values.size())
    throw py::value_error("indices and " + what + " have different lengths (" +
                          std::to_string(idx.size()) + " and " + std::to_string(values.size()) + ")");
}

}  // namespace mlbs::binding
