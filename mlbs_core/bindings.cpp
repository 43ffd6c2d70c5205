// Python binding of the mlbs core (module mlbs._core). Thin: it converts and checks array
// arguments, releases the GIL around bulk work and maps C++ errors to Python exceptions
// (std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
// std::overflow_error -> OverflowError). The semantics are documented in the C++ headers.
//
// The methods of WeightedIndex and RankIndex reach their object through InUse, which refuses an
// object whose constructor never ran (TypeError) and one that another thread is using
// (RuntimeError): a structure used by two threads at once would otherwise be corrupted.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "mlbs/bce.hpp"
#include "mlbs/chain.hpp"
#include "mlbs/index_set.hpp"
#include "mlbs/prediction_window.hpp"
#include "mlbs/quantized.hpp"
#include "mlbs/rank_index.hpp"
#include "mlbs/weighted_index.hpp"

namespace py = pybind11;
using IndexArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += std::to_string(a.shape(d)) + (a.ndim() == 1 ? "," : d + 1 < a.ndim() ? ", " : "");
  return s + ")";
}

py::array as_1d(const py::handle& obj, const char* what) {
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
bool is_exact_vector(const py::handle& obj) {
  if (!py::isinstance<py::array>(obj)) return false;
  auto a = py::reinterpret_borrow<py::array>(obj);
  return a.ndim() == 1 && a.dtype().is(py::dtype::of<T>()) && (a.flags() & py::array::c_style);
}

IndexArray as_indices(const py::handle& obj) {
  if (is_exact_vector<std::int64_t>(obj)) return py::reinterpret_borrow<IndexArray>(obj);
  py::array a = as_1d(obj, "indices");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u' && a.size() > 0)
    throw py::type_error("indices must be integers, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  return IndexArray::ensure(a);
}

// Real array (float or integer dtype) -> contiguous float64.
FloatArray as_reals(const py::handle& obj, const char* what) {
  if (is_exact_vector<double>(obj)) return py::reinterpret_borrow<FloatArray>(obj);
  py::array a = as_1d(obj, what);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u' && a.size() > 0)
    throw py::type_error(std::string(what) + " must be real numbers, got dtype " +
                         py::str(a.dtype()).cast<std::string>());
  return FloatArray::ensure(a);
}

bool all_in_range(const std::int64_t* indices, std::size_t m, std::int64_t n) {
  bool ok = true;
  for (std::size_t t = 0; t < m; ++t) ok &= (indices[t] >= 0) & (indices[t] < n);
  return ok;
}

std::size_t as_count(std::int64_t k, const char* what) {
  if (k < 0) throw py::value_error(std::string(what) + " must be >= 0, got " + std::to_string(k));
  return static_cast<std::size_t>(k);
}

std::uint64_t seed_or_entropy(std::optional<std::uint64_t> seed) {
  if (seed) return *seed;
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

const char* name_of(const mlbs::WeightedIndex*) { return "WeightedIndex"; }
const char* name_of(const mlbs::RankIndex*) { return "RankIndex"; }

// The C++ object behind `self`, held by this call until it returns.
template <class Core>
class InUse {
 public:
  explicit InUse(py::handle self) : core_(constructed(self)) {
    if (!core_.in_use().try_acquire())
      throw std::runtime_error(std::string("this ") + name_of(&core_) +
                               " is in use by another thread: one object must not be used from several "
                               "threads at once (give each thread its own, or hold a lock around every call)");
  }
  ~InUse() { core_.in_use().release(); }
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;
  Core& operator*() const { return core_; }
  Core* operator->() const { return &core_; }

 private:
  static Core& constructed(py::handle self) {
    static py::detail::type_info* const info = py::detail::get_type_info(typeid(Core));
    const char* name = name_of(static_cast<Core*>(nullptr));
    if (!PyObject_TypeCheck(self.ptr(), info->type))
      throw py::type_error(std::string("expected a ") + name + ", got " + Py_TYPE(self.ptr())->tp_name);
    auto v_h = reinterpret_cast<py::detail::instance*>(self.ptr())->get_value_and_holder(info);
    if (!v_h || !v_h.holder_constructed() || v_h.value_ptr() == nullptr)
      throw py::type_error(std::string("this ") + name + " is not initialised (its constructor never ran): create it as " +
                           name + "(n, seed=...)");
    return *static_cast<Core*>(v_h.value_ptr());
  }
  Core& core_;
};

template <class Core, class Fill>
IndexArray draw_into(Core& core, std::size_t k, Fill fill) {
  IndexArray out(static_cast<py::ssize_t>(k));
  std::int64_t* dst = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    fill(core, k, dst);
  }
  return out;
}

template <class Core>
void bind_rng_state(py::class_<Core>& cls) {
  cls.def_property(
      "rng_state",
      [](py::handle self) { return InUse<Core>(self)->rng().state(); },
      [](py::handle self, const mlbs::Rng::State& s) { InUse<Core>(self)->rng().set_state(s); },
      "State of the xoshiro256** generator: four 64-bit words. Assign a saved value to resume "
      "exactly the same sequence of draws.");
  cls.def(
      "seed", [](py::handle self, std::uint64_t seed) { InUse<Core>(self)->rng().reseed(seed); }, py::arg("seed"),
      "Restart the generator from `seed`.");
}

void check_pair(const IndexArray& idx, const FloatArray& values, const std::string& what) {
  if (idx.size() != values.size())
    throw py::value_error("indices and " + what + " have different lengths (" +
                          std::to_string(idx.size()) + " and " + std::to_string(values.size()) + ")");
}

// What both cores share: construction from (n, seed), len, the per-item values (weights or
// scores) with assign/update, the generator state and pickling.
template <class Core, void (Core::*Copy)(double*) const>
void bind_items(py::class_<Core>& cls, const std::string& values, const char* assign_doc, const char* update_doc) {
  const std::string kind = py::str(cls.attr("__name__")).cast<std::string>();
  cls.def(py::init([kind](std::int64_t n, std::optional<std::uint64_t> seed) {
            if (n <= 0)
              throw py::value_error("a " + kind + " needs at least one item, got n = " + std::to_string(n));
            return new Core(static_cast<std::size_t>(n), seed_or_entropy(seed));
          }),
          py::arg("n"), py::kw_only(), py::arg("seed") = py::none());
  cls.def("__len__", [](py::handle self) { return InUse<Core>(self)->size(); });
  auto copy = [](const Core& self) {
    FloatArray out(static_cast<py::ssize_t>(self.size()));
    (self.*Copy)(out.mutable_data());
    return out;
  };
  cls.def(
      values.c_str(), [copy](py::handle self) { return copy(*InUse<Core>(self)); },
      ("Copy of all n " + values + ".").c_str());
  cls.def(
      "assign",
      [values](py::handle self, const py::handle& given) {
        InUse<Core> core(self);
        FloatArray v = as_reals(given, values.c_str());
        if (static_cast<std::size_t>(v.size()) != core->size())
          throw py::value_error("assign needs " + std::to_string(core->size()) + " " + values + ", got " +
                                std::to_string(v.size()));
        py::gil_scoped_release nogil;
        core->assign(v.data());
      },
      py::arg(values.c_str()), assign_doc);
  cls.def(
      "update",
      [values](py::handle self, const py::handle& indices, const py::handle& given) {
        InUse<Core> core(self);
        IndexArray idx = as_indices(indices);
        FloatArray v = as_reals(given, values.c_str());
        check_pair(idx, v, values);
        py::gil_scoped_release nogil;
        core->update(idx.data(), v.data(), static_cast<std::size_t>(idx.size()));
      },
      py::arg("indices"), py::arg(values.c_str()), update_doc);
  bind_rng_state(cls);
  // State: (n, the n values, the generator state). A state is checked whole (its n against the
  // length and type of the values, then the values as assign checks them) before it is used.
  cls.def(py::pickle(
      [copy](py::handle self) {
        InUse<Core> core(self);
        return py::make_tuple(core->size(), copy(*core), core->rng().state());
      },
      [kind, values](const py::tuple& t) {
        const std::string what = "a " + kind + " state";
        if (t.size() != 3)
          throw py::value_error(what + " is (n, " + values + ", generator state), got a tuple of " +
                                std::to_string(t.size()) + " items");
        if (!py::isinstance<py::int_>(t[0]))
          throw py::type_error(what + " needs an integer n, got " + py::repr(t[0]).cast<std::string>());
        const auto n = t[0].cast<std::int64_t>();
        FloatArray v = as_reals(t[1], values.c_str());
        if (n <= 0 || v.size() != n)
          throw py::value_error(what + " with n = " + std::to_string(n) + " holds " + std::to_string(v.size()) +
                                " " + values);
        mlbs::Rng::State rng_state;
        try {
          rng_state = t[2].cast<mlbs::Rng::State>();
        } catch (const py::cast_error&) {
          throw py::type_error(what + " needs a generator state of four 64-bit unsigned integers, got " +
                               py::repr(t[2]).cast<std::string>());
        }
        auto core = std::make_unique<Core>(static_cast<std::size_t>(n));
        core->assign(v.data());
        core->rng().set_state(rng_state);
        return core;
      }));
  // Every pickle protocol rebuilds through __setstate__ (object's own reduction for protocols 0
  // and 1 would call the base class of the binding, which cannot make an instance).
  auto reduce = [](py::handle self) {
    return py::make_tuple(py::module_::import("copyreg").attr("__newobj__"),
                          py::make_tuple(py::type::handle_of(self)), self.attr("__getstate__")());
  };
  cls.def("__reduce__", reduce);
  cls.def("__reduce_ex__", [reduce](py::handle self, int) { return reduce(self); }, py::arg("protocol"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Compiled sampling core of mlbs (weighted index, rank index, RNG).";
  m.attr("build_flags") = MLBS_BUILD_FLAGS;

  py::class_<mlbs::WeightedIndex> wi(m, "WeightedIndex", R"doc(
Weighted index over n items: O(log n) batched weight updates and weighted draws.

Parameters
----------
n : int
    Number of items (>= 1). All weights start at 0.
seed : int, optional
    Seed of the generator (xoshiro256**). None draws one from the operating system.

Notes
-----
An 8-ary tree: the fp64 weights in order, and above them blocks of 8 sums with their prefix
sums, about 10.3 bytes per item in all. Sums are
recomputed from their children in a fixed order, so the tree never drifts and the same weights
always give the same tree. See cpp/mlbs/weighted_index.hpp. Bulk calls release the GIL, so
one index must not be used from several threads at once (give each thread its own, or a lock).
)doc");
  bind_items<mlbs::WeightedIndex, &mlbs::WeightedIndex::copy_weights>(
      wi, "weights", "Set all n weights at once: O(n).",
      "Set weights[indices[t]] = weights[t] in order: O(k log n). A repeated index keeps the last "
      "weight given for it. Nothing changes if any input is invalid.");
  using Weighted = InUse<mlbs::WeightedIndex>;
  wi.def("total", [](py::handle self) { return Weighted(self)->total(); }, "Sum of all weights.");
  wi.def("nonzero", [](py::handle self) { return Weighted(self)->nonzero(); }, "Number of items with positive weight.");
  wi.def("memory_bytes", [](py::handle self) { return Weighted(self)->memory_bytes(); }, "Bytes held by the tree.");
  wi.def(
      "weight",
      [](py::handle self, std::int64_t i) {
        Weighted core(self);
        if (i < 0 || static_cast<std::size_t>(i) >= core->size())
          throw py::index_error("index " + std::to_string(i) + " is out of range for " +
                                std::to_string(core->size()) + " items");
        return core->weight(static_cast<std::size_t>(i));
      },
      py::arg("i"), "Weight of item i.");
  wi.def(
      "draw",
      [](py::handle self, std::int64_t k) {
        return draw_into(*Weighted(self), as_count(k, "k"),
                         [](auto& c, std::size_t n, std::int64_t* o) { c.draw(n, o); });
      },
      py::arg("k"), "k independent indices, each drawn with probability weight / total.");
  wi.def(
      "draw_distinct",
      [](py::handle self, std::int64_t k) {
        return draw_into(*Weighted(self), as_count(k, "k"),
                         [](auto& c, std::size_t n, std::int64_t* o) { c.draw_distinct(n, o); });
      },
      py::arg("k"),
      "k distinct indices drawn one after another, each with probability proportional to weight "
      "among the items not drawn yet (numpy Generator.choice(replace=False, p=...) semantics).");
  wi.def(
      "prefix",
      [](py::handle self, const py::handle& positions) {
        Weighted core(self);
        IndexArray pos = as_indices(positions);
        FloatArray out(pos.size());
        for (py::ssize_t t = 0; t < pos.size(); ++t) {
          const std::int64_t i = pos.data()[t];
          if (i < 0 || static_cast<std::size_t>(i) > core->size())
            throw py::index_error("prefix position " + std::to_string(i) + " is out of range [0, " +
                                  std::to_string(core->size()) + "]");
          out.mutable_data()[t] = core->prefix(static_cast<std::size_t>(i));
        }
        return out;
      },
      py::arg("positions"), "Sums of the weights of items 0..i-1 for each i (0 <= i <= n).");
  wi.def(
      "locate",
      [](py::handle self, const py::handle& masses) {
        Weighted core(self);
        FloatArray u = as_reals(masses, "masses");
        if (core->nonzero() == 0) throw py::value_error("cannot locate: the total weight is zero");
        IndexArray out(u.size());
        for (py::ssize_t t = 0; t < u.size(); ++t) {
          const double x = u.data()[t];
          if (!(x >= 0.0 && x < core->total()))
            throw py::value_error("mass " + std::to_string(x) + " is outside [0, total)");
          out.mutable_data()[t] = static_cast<std::int64_t>(core->locate(x));
        }
        return out;
      },
      py::arg("masses"), "Item in which each cumulative mass u (0 <= u < total) falls.");
  wi.def(
      "probabilities",
      [](py::handle self) {
        Weighted core(self);
        FloatArray out(static_cast<py::ssize_t>(core->size()));
        double* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          core->probabilities(dst);
        }
        return out;
      },
      "weights / total, for all items.");
  wi.def(
      "_level_addresses",
      [](const py::handle& self) {
        const auto& index = self.cast<const mlbs::WeightedIndex&>();
        IndexArray out(static_cast<py::ssize_t>(index.level_count()));
        for (std::size_t l = 0; l < index.level_count(); ++l)
          out.mutable_data()[l] = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(index.level_data(l)));
        return out;
      },
      "Internal: the address of each level of the tree's storage, the leaves (padded to blocks of 8) "
      "first, then the block records of each upper level (8 values, then their 8 prefix sums), for "
      "kernels that walk the tree in place (AdaC's chain, mlbs.policies._chain). The storage never "
      "moves while the index lives; a reader holds the index while it reads.");

  m.def(
      "_draw_chain",
      [](mlbs::WeightedIndex& items, const mlbs::WeightedIndex& pairs, const IndexArray& seed_label,
         const IndexArray& related_ptr, const IndexArray& related, const IndexArray& posting_ptr,
         const IndexArray& posting_item, const IndexArray& label_ptr, const IndexArray& labels,
         std::int64_t m) {
        const std::size_t n = items.size(), q = static_cast<std::size_t>(related_ptr.size()) - 1;
        if (static_cast<std::size_t>(seed_label.size()) != n || static_cast<std::size_t>(label_ptr.size()) != n + 1 ||
            static_cast<std::size_t>(posting_ptr.size()) != q + 1 ||
            static_cast<std::size_t>(posting_item.size()) != pairs.size())
          throw py::value_error("inconsistent chain graph arrays");
        mlbs::ChainGraph g;
        g.n = n;
        g.q = q;
        g.seed_label = seed_label.data();
        g.related_ptr = related_ptr.data();
        g.related = related.data();
        g.posting_ptr = posting_ptr.data();
        g.posting_item = posting_item.data();
        g.label_ptr = label_ptr.data();
        g.labels = labels.data();
        IndexArray out(static_cast<py::ssize_t>(as_count(m, "m")));
        std::size_t fallbacks;
        {
          py::gil_scoped_release nogil;
          mlbs::ChainSampler sampler;
          fallbacks = sampler.draw(items, pairs, g, static_cast<std::size_t>(m), out.mutable_data());
        }
        return py::make_tuple(out, fallbacks);
      },
      "Internal: one AdaC chain batch (see cpp/mlbs/chain.hpp). The graph arrays are built and "
      "checked by mlbs.policies.AdaC; only their lengths are checked here.");

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
          bad = mlbs::count_invalid_outputs(static_cast<const float*>(outputs.data()), count, probabilities);
        } else if (outputs.dtype().is(py::dtype::of<double>())) {
          py::gil_scoped_release nogil;
          bad = mlbs::count_invalid_outputs(static_cast<const double*>(outputs.data()), count, probabilities);
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
            !(cols.flags() & py::array::c_style) || !cols.dtype().is(indptr.dtype()) ||
            !all_in_range(idx.data(), m, n))
          return py::none();
        FloatArray loss(idx.size());
        auto run = [&](auto real, auto index) -> bool {
          using Real = decltype(real);
          using Index = decltype(index);
          const auto* z = static_cast<const Real*>(out.data());
          const auto* ptr = static_cast<const Index*>(indptr.data());
          const auto* col = static_cast<const Index*>(cols.data());
          thread_local std::vector<Real> scratch;
          py::gil_scoped_release nogil;
          return mlbs::per_sample_bce_csr(z, m, static_cast<std::size_t>(q), idx.data(), ptr, col,
                                          probabilities, loss.mutable_data(), scratch);
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
      "n = len(indptr) - 1 rows (see cpp/mlbs/bce.hpp); None when any input is off (out-of-range "
      "index, wrong shape or dtype, non-finite output, probability outside [0, 1]): "
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
      "cpp/mlbs/prediction_window.hpp): updates window, count, E and, when tracked, phi and loss in "
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
          moved = mlbs::observe_quantized(static_cast<double*>(table.mutable_data()), w.data(), idx.data(),
                                          loss.data(), static_cast<std::size_t>(idx.size()), table_max, argmax, n,
                                          pressure, omega.mutable_data());
        }
        if (moved) return py::none();
        return std::move(omega);
      },
      "Internal: one batch of Adaptive observations (see cpp/mlbs/quantized.hpp); None when the "
      "maximum moved, else the new weights of the visited samples. Inputs are checked by the caller.");

  py::class_<mlbs::RankIndex> ri(m, "RankIndex", R"doc(
Scores of n items kept in rank order, for rank-based selection (online batch selection).

p(item of rank r) = s^(r/n) / sum_j s^(j/n), ranks ascending (the largest score has rank n),
ties broken by item id. Updating a score and drawing an item are O(log n), exactly.

Parameters
----------
n : int
    Number of items (>= 1). All scores start at 0, so the initial ranks follow the ids.
seed : int, optional
    Seed of the generator (xoshiro256**). None draws one from the operating system.

Bulk calls release the GIL: one index must not be used from several threads at once.
)doc");
  bind_items<mlbs::RankIndex, &mlbs::RankIndex::copy_scores>(
      ri, "scores", "Set all n scores at once: O(n).",
      "Set scores[indices[t]] = scores[t] in order: O(k log n). Nothing changes if any input is "
      "invalid.");
  using Ranked = InUse<mlbs::RankIndex>;
  ri.def(
      "rank",
      [](py::handle self, const py::handle& indices) {
        Ranked core(self);
        IndexArray idx = as_indices(indices);
        mlbs::check_indices(idx.data(), static_cast<std::size_t>(idx.size()), core->size());
        IndexArray out(idx.size());
        for (py::ssize_t t = 0; t < idx.size(); ++t)
          out.mutable_data()[t] = static_cast<std::int64_t>(core->rank(static_cast<std::size_t>(idx.data()[t])));
        return out;
      },
      py::arg("indices"), "1-based ascending ranks of the given items.");
  ri.def(
      "select",
      [](py::handle self, const py::handle& ranks) {
        Ranked core(self);
        IndexArray r = as_indices(ranks);
        const std::int64_t n = static_cast<std::int64_t>(core->size());
        for (py::ssize_t t = 0; t < r.size(); ++t)
          if (r.data()[t] < 1 || r.data()[t] > n)
            throw py::index_error("rank " + std::to_string(r.data()[t]) + " at position " +
                                  std::to_string(t) + " is out of range 1.." + std::to_string(n));
        IndexArray out(r.size());
        for (py::ssize_t t = 0; t < r.size(); ++t)
          out.mutable_data()[t] = static_cast<std::int64_t>(core->select(static_cast<std::size_t>(r.data()[t])));
        return out;
      },
      py::arg("ranks"), "Items of the given 1-based ascending ranks (the inverse of rank).");
  ri.def(
      "order",
      [](py::handle self) {
        Ranked core(self);
        IndexArray out(static_cast<py::ssize_t>(core->size()));
        core->order(out.mutable_data());
        return out;
      },
      "All items in ascending rank order.");
  ri.def(
      "draw",
      [](py::handle self, std::int64_t k, double pressure) {
        return draw_into(*Ranked(self), as_count(k, "k"),
                         [pressure](auto& c, std::size_t n, std::int64_t* o) { c.draw(n, pressure, o); });
      },
      py::arg("k"), py::arg("pressure"), "k independent draws with p(rank r) ~ pressure^(r/n).");
  ri.def(
      "draw_distinct",
      [](py::handle self, std::int64_t k, double pressure) {
        return draw_into(*Ranked(self), as_count(k, "k"), [pressure](auto& c, std::size_t n, std::int64_t* o) {
          c.draw_distinct(n, pressure, o);
        });
      },
      py::arg("k"), py::arg("pressure"),
      "k distinct items drawn one after another with p(rank r) ~ pressure^(r/n) among those not "
      "drawn yet.");
  ri.def(
      "probabilities",
      [](py::handle self, double pressure) {
        Ranked core(self);
        FloatArray out(static_cast<py::ssize_t>(core->size()));
        double* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          core->probabilities(pressure, dst);
        }
        return out;
      },
      py::arg("pressure"), "Probability of every item under the rank law.");
}
