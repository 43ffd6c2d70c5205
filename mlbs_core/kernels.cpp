// Binding of the per-batch kernels of the policies (cpp/mlbs/kernels/): internal functions
// called by mlbs.core, which checks their arguments first. The sample indices given to a kernel
// are also checked here against the number of rows they index (and the label arrays by the
// prediction window's kernel), so that a wrong call raises instead of reading or writing out of
// bounds; _draw_chain checks only the lengths of its graph arrays, which mlbs.core builds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bind.hpp"
#include "mlbs/kernels/bce.hpp"
#include "mlbs/kernels/prediction_window.hpp"
#include "mlbs/kernels/quantized.hpp"
#include "mlbs/structures/index_set.hpp"
#include "mlbs/structures/weighted_index.hpp"

namespace mlbs::binding {
namespace {

// Whether the CSR label rows of the given samples lie inside cols[0, nnz) and name labels in
// [0, q): O(labels of the batch), before a kernel reads them.
template <class Index>
bool label_rows_in_bounds(const Index* indptr, const Index* cols, std::size_t nnz, const std::int64_t* rows,
                          std::size_t m, std::int64_t q) {
  for (std::size_t r = 0; r < m; ++r) {
    const auto lo = static_cast<std::int64_t>(indptr[rows[r]]), hi = static_cast<std::int64_t>(indptr[rows[r] + 1]);
    if (lo < 0 || lo > hi || static_cast<std::uint64_t>(hi) > nnz) return false;
    for (std::int64_t e = lo; e < hi; ++e)
      if (cols[e] < 0 || static_cast<std::int64_t>(cols[e]) >= q) return false;
  }
  return true;
}

// Run-time choice of the kernels' instruction set, as for the structures (mlbs/simd.hpp): call()
// is compiled once per instruction set with everything it calls inlined (flatten), so that its
// loops are vectorised for that set, and the copy of the set in use runs (MLBS_MAX_ISA can
// narrow it). Only the caller carries a target attribute: functions left out of line are the
// baseline's. Products are not fused into FMAs on any path (-ffp-contract=off; the header's
// mul_add is fused only in a native FMA build), so float64 results are identical on every path;
// float32 logits go through glibc's vector expf and log1pf, whose wider variants differ in the
// last bits of a term (tests/test_build.py bounds it). The prediction window's kernel
// (_window_visit) has many instantiations, which would be flattened three times this way: it
// dispatches its few inner loops itself instead (prediction_window.hpp).
template <class Call>
__attribute__((flatten)) auto on_baseline(Call& call) {
  return call();
}
#if MLBS_ISA_DISPATCH
template <class Call>
__attribute__((flatten, target(MLBS_TARGET_AVX2))) auto on_avx2(Call& call) {
  return call();
}
template <class Call>
__attribute__((flatten, target(MLBS_TARGET_AVX512))) auto on_avx512(Call& call) {
  return call();
}
#endif

template <class Call>
auto call_flattened_for_active_isa(Call&& call) {
  switch (mlbs::simd::active_isa()) {
#if MLBS_ISA_DISPATCH
    case mlbs::simd::Isa::avx512:
      return on_avx512(call);
    case mlbs::simd::Isa::avx2:
      return on_avx2(call);
#endif
    default:
      return on_baseline(call);
  }
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def(
      "_scan_losses",
      [](const py::handle& indices, const py::handle& losses, std::int64_t n) -> py::object {
        IndexArray idx = as_indices(indices);
        FloatArray loss = as_reals(losses, "losses");
        if (idx.size() != loss.size()) return py::none();
        const double* l = loss.data();
        const auto m = static_cast<std::size_t>(idx.size());
        if (!all_in_range(idx.data(), m, n)) return py::none();
        for (std::size_t t = 0; t < m; ++t)
          if (!(l[t] >= 0.0) || !std::isfinite(l[t])) return py::none();
        return py::make_tuple(idx, loss, mlbs::has_repeats(idx.data(), m));
      },
      "Internal: (indices as int64, losses as float64, whether an index repeats) when the indices "
      "are in [0, n) and the losses finite and >= 0, else None (mlbs.losses.check_losses then "
      "names the problem).");
  m.def(
      "_outputs_valid",
      [](const py::array& outputs, bool probabilities) -> py::object {
        if (!(outputs.flags() & py::array::c_style)) return py::none();
        const auto count = static_cast<std::size_t>(outputs.size());
        std::size_t bad;
        if (outputs.dtype().is(py::dtype::of<float>())) {
          py::gil_scoped_release nogil;
          bad = call_flattened_for_active_isa([&] {
            return mlbs::count_invalid_outputs(static_cast<const float*>(outputs.data()), count, probabilities);
          });
        } else if (outputs.dtype().is(py::dtype::of<double>())) {
          py::gil_scoped_release nogil;
          bad = call_flattened_for_active_isa([&] {
            return mlbs::count_invalid_outputs(static_cast<const double*>(outputs.data()), count, probabilities);
          });
        } else {
          return py::none();
        }
        return py::bool_(bad == 0);
      },
      "Internal: whether every entry of a contiguous float32/float64 array is finite (and, for "
      "probabilities, in [0, 1]); None for other arrays.");
  m.def(
      "_observe_bce",
      [](const py::handle& indices, const py::handle& outputs, const py::array& indptr, const py::array& cols,
         std::int64_t q, bool probabilities) -> py::object {
        IndexArray idx = as_indices(indices);
        if (!py::isinstance<py::array>(outputs)) return py::none();
        auto out = py::reinterpret_borrow<py::array>(outputs);
        const auto m = static_cast<std::size_t>(idx.size());
        const std::int64_t n = indptr.size() - 1;
        if (out.ndim() != 2 || !(out.flags() & py::array::c_style) || out.shape(0) != idx.size() ||
            out.shape(1) != q || q < 1 || indptr.ndim() != 1 || !(indptr.flags() & py::array::c_style) ||
            cols.ndim() != 1 || !(cols.flags() & py::array::c_style) || !cols.dtype().is(indptr.dtype()) ||
            !all_in_range(idx.data(), m, n))
          return py::none();
        FloatArray loss(idx.size());
        auto run = [&](auto real, auto index) -> bool {
          using Real = decltype(real);
          using Index = decltype(index);
          const auto* z = static_cast<const Real*>(out.data());
          const auto* ptr = static_cast<const Index*>(indptr.data());
          const auto* col = static_cast<const Index*>(cols.data());
          if (!label_rows_in_bounds(ptr, col, static_cast<std::size_t>(cols.size()), idx.data(), m, q)) return false;
          thread_local std::vector<Real> scratch;
          py::gil_scoped_release nogil;
          return call_flattened_for_active_isa([&] {
            return mlbs::per_sample_bce_csr(z, m, static_cast<std::size_t>(q), idx.data(), ptr, col,
                                            probabilities, loss.mutable_data(), scratch);
          });
        };
        auto with_real = [&](auto index) -> std::optional<bool> {
          if (out.dtype().is(py::dtype::of<float>())) return run(float{}, index);
          if (out.dtype().is(py::dtype::of<double>())) return run(double{}, index);
          return std::nullopt;
        };
        std::optional<bool> ok;
        if (indptr.dtype().is(py::dtype::of<std::int32_t>())) ok = with_real(std::int32_t{});
        else if (indptr.dtype().is(py::dtype::of<std::int64_t>())) ok = with_real(std::int64_t{});
        if (!ok || !*ok) return py::none();
        return py::make_tuple(idx, loss, mlbs::has_repeats(idx.data(), m));
      },
      "Internal: (indices as int64, per-sample mean BCE as float64, whether an index repeats) for "
      "a batch of float32/float64 logits or probabilities against CSR labels (indptr, cols) with "
      "n = len(indptr) - 1 rows (see cpp/mlbs/kernels/bce.hpp); None when any input is off (out-of-range "
      "index or label, wrong shape or dtype, non-finite output, probability outside [0, 1]): "
      "mlbs.losses.observed_bce then names the problem.");
  m.def(
      "_window_visit",
      [](const IndexArray& rows, const py::array& outputs, bool logits, const py::array& indptr, const py::array& cols,
         py::array window, py::array count, py::array E, py::array phi, py::array loss, double alpha,
         bool track_phi, bool track_loss, bool entropy_nan, bool short_nan) {
        auto contiguous = [](const py::array& a) { return (a.flags() & py::array::c_style) != 0; };
        auto writable = [&](const py::array& a) { return contiguous(a) && a.writeable(); };
        if (window.ndim() != 3 || !writable(window) || !writable(count) || count.ndim() != 1 ||
            !count.dtype().is(py::dtype::of<std::int64_t>()))
          throw py::value_error("window must be a writable contiguous (n, w, q) array, count a writable (n,) "
                                "int64 vector");
        const py::ssize_t n = window.shape(0), w = window.shape(1), q = window.shape(2);
        auto is_table = [&](const py::array& a) {
          return a.ndim() == 2 && a.shape(0) == n && a.shape(1) == q && writable(a) && a.dtype().is(E.dtype());
        };
        const py::ssize_t m = rows.size();
        if (count.size() != n || w < 1 || q < 1 || !is_table(E) || (track_phi && !is_table(phi)) ||
            (track_loss && !is_table(loss)) || outputs.ndim() != 2 || !contiguous(outputs) || outputs.shape(0) != m ||
            outputs.shape(1) != q || indptr.ndim() != 1 || indptr.size() != n + 1 || !contiguous(indptr) ||
            cols.ndim() != 1 || !contiguous(cols) || !cols.dtype().is(indptr.dtype()))
          throw py::value_error("inconsistent shapes, dtypes or layouts of the window tables, outputs or labels");
        FloatArray sample_loss(m);
        bool known = false, ok = false;
        auto run = [&](auto real, auto code, auto table, auto index) {
          using Real = decltype(real);
          using W = decltype(code);
          using T = decltype(table);
          using Index = decltype(index);
          if (!outputs.dtype().is(py::dtype::of<Real>()) || !window.dtype().is(py::dtype::of<W>()) ||
              !E.dtype().is(py::dtype::of<T>()) || !indptr.dtype().is(py::dtype::of<Index>()))
            return;
          known = true;
          mlbs::WindowTables<W, T> tab{static_cast<W*>(window.mutable_data()),
                                       static_cast<std::int64_t*>(count.mutable_data()),
                                       static_cast<T*>(E.mutable_data()),
                                       track_phi ? static_cast<T*>(phi.mutable_data()) : nullptr,
                                       track_loss ? static_cast<T*>(loss.mutable_data()) : nullptr,
                                       static_cast<std::size_t>(n),
                                       static_cast<std::size_t>(w),
                                       static_cast<std::size_t>(q),
                                       alpha,
                                       entropy_nan,
                                       short_nan};
          py::gil_scoped_release nogil;
          ok = mlbs::visit_prediction_window(tab, rows.data(), static_cast<std::size_t>(m),
                                             static_cast<const Real*>(outputs.data()), logits,
                                             static_cast<const Index*>(indptr.data()),
                                             static_cast<const Index*>(cols.data()),
                                             static_cast<std::size_t>(cols.size()), sample_loss.mutable_data());
        };
        auto with_index = [&](auto real, auto code, auto table) {
          run(real, code, table, std::int32_t{});
          run(real, code, table, std::int64_t{});
        };
        auto with_table = [&](auto real, auto code) {
          with_index(real, code, float{});
          with_index(real, code, double{});
        };
        auto with_code = [&](auto real) {
          with_table(real, double{});
          with_table(real, float{});
          with_table(real, std::uint16_t{});
          with_table(real, std::uint8_t{});
        };
        with_code(float{});
        with_code(double{});
        if (!known)
          throw py::type_error("unsupported dtypes: outputs float32/float64, window float64/float32/uint16/uint8, "
                               "tables float32/float64, labels int32/int64");
        if (!ok)
          throw py::value_error("a row index or visit count is out of range, or labels not in canonical CSR form");
        return sample_loss;
      },
      "Internal: one batch of visits of mlbs.policies.signals.PredictionWindow (see "
      "cpp/mlbs/kernels/prediction_window.hpp): updates window, count, E and, when tracked, phi and loss in "
      "place; returns the per-sample mean BCE (float64). Rows are visited in order.");
  m.def(
      "_observe_quantized",
      [](py::array table, const FloatArray& w, const IndexArray& idx, const FloatArray& loss, double table_max,
         std::int64_t argmax, double pressure) -> py::object {
        if (table.ndim() != 1 || !table.dtype().is(py::dtype::of<double>()) || !table.writeable() ||
            !(table.flags() & py::array::c_style))
          throw py::type_error("table must be a writable contiguous float64 vector");
        const auto n = static_cast<std::size_t>(table.size());
        if (static_cast<std::size_t>(w.size()) != n || idx.size() != loss.size())
          throw py::value_error("inconsistent lengths");
        mlbs::check_indices(idx.data(), static_cast<std::size_t>(idx.size()), n);
        FloatArray omega(idx.size());
        bool moved;
        {
          py::gil_scoped_release nogil;
          moved = call_flattened_for_active_isa([&] {
            return mlbs::observe_quantized(static_cast<double*>(table.mutable_data()), w.data(), idx.data(),
                                           loss.data(), static_cast<std::size_t>(idx.size()), table_max, argmax,
                                           n, pressure, omega.mutable_data());
          });
        }
        if (moved) return py::none();
        return std::move(omega);
      },
      "Internal: one batch of Adaptive observations (see cpp/mlbs/kernels/quantized.hpp); None when the "
      "maximum moved, else the new weights of the visited samples. Inputs are checked by the caller.");
}

}  // namespace mlbs::binding
