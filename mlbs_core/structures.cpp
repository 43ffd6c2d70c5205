// Binding of the sampling structures: WeightedIndex and RankIndex (cpp/mlbs/structures/). Thin:
// it converts and checks arguments, releases the GIL around bulk work and maps C++ errors to
// Python exceptions (std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
// std::overflow_error -> OverflowError). The semantics are documented in the C++ headers.
//
// Every method reaches its object through InUse, which refuses an object whose constructor never
// ran (TypeError) and one that another thread is using (RuntimeError): a structure used by two
// threads at once would otherwise be corrupted.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include "arrays.hpp"
#include "bind.hpp"
#include "mlbs/structures/rank_index.hpp"
#include "mlbs/structures/weighted_index.hpp"

namespace mlbs::binding {
namespace {

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

void bind_structures(py::module_& m) {
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
always give the same tree. See cpp/mlbs/structures/weighted_index.hpp. Bulk calls release the GIL, so
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
        Weighted index(self);
        IndexArray out(static_cast<py::ssize_t>(index->level_count()));
        for (std::size_t l = 0; l < index->level_count(); ++l)
          out.mutable_data()[l] = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(index->level_data(l)));
        return out;
      },
      "Internal: the address of each level of the tree's storage, the leaves (padded to blocks of 8) "
      "first, then the block records of each upper level (8 values, then their 8 prefix sums), for "
      "kernels that walk the tree in place (AdaC's chain, mlbs.policies._chain). The storage never "
      "moves while the index lives; a reader holds the index while it reads.");

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

}  // namespace mlbs::binding
