// pe._pe: the compiled half of the Python package. Each entry point takes the caller's arrays as
// zero-copy views (views.hpp), the keyword options as a dict (options.hpp) and an output array that the
// Python layer (pe/__init__.py) allocated in the caller's framework and device; it runs the C++ call
// with the GIL released, on the arrays' CUDA device when they are on one, and returns the report as the
// dict json.loads(pe::to_json(report)) would give, built from the same field list without the text (so
// a field added to the C++ Report appears there by itself).
//
// Plans (pe::RootPlan, ApplyPlan, SolvePlan, GramPlan) are classes made once for a shape, dtype,
// placement and options; their execute(...) takes views and calls the C++ plan's execute, which
// allocates nothing and loads no tables. The Python layer wraps them (pe.RootPlan & co.).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "options.hpp"
#include "pe/pe.hpp"
#include "pe/solve.hpp"
#include "report_fields.hpp"
#include "views.hpp"

#ifdef PE_PYTHON_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace nb = nanobind;
using namespace nb::literals;

namespace pe_python {

namespace {

// Makes the arrays' CUDA device current for the call (the runtime works on the current device) and
// restores the caller's afterwards.
class DeviceScope {
 public:
  explicit DeviceScope([[maybe_unused]] Placement where) {
#ifdef PE_PYTHON_WITH_CUDA
    if (where.device != pe::Device::cuda) return;
    if (cudaGetDevice(&previous_) != cudaSuccess) return;  // no usable device: the runtime says so
    if (previous_ != where.device_id && cudaSetDevice(where.device_id) == cudaSuccess) restore_ = true;
#endif
  }
  ~DeviceScope() {
#ifdef PE_PYTHON_WITH_CUDA
    if (restore_) (void)cudaSetDevice(previous_);
#endif
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  [[maybe_unused]] int previous_ = 0;
  [[maybe_unused]] bool restore_ = false;
};

// report_fields' sink for Python: the dict json.loads(pe::to_json(report)) would give, without the
// text in between. Non-finite numbers, which the JSON writes as null, are None here too.
struct DictSink {
  nb::dict out;

  // The keys are string literals: each becomes one interned Python str, made once and then found by its
  // address (the GIL is held here), instead of a new str per key per call. The references are kept for
  // the life of the process on purpose: releasing them from a static destructor would run after the
  // interpreter has finalised.
  static PyObject* key_object(const char* key) {
    static std::unordered_map<const char*, PyObject*> keys;
    auto it = keys.find(key);
    if (it == keys.end()) {
      PyObject* interned = PyUnicode_InternFromString(key);
      if (!interned) throw nb::python_error();
      it = keys.emplace(key, interned).first;
    }
    return it->second;
  }
  void set(const char* key, nb::object value) {
    if (PyDict_SetItem(out.ptr(), key_object(key), value.ptr()) != 0) throw nb::python_error();
  }
  static nb::object number(double v) { return std::isfinite(v) ? nb::object(nb::float_(v)) : nb::none(); }
  static nb::object text(const std::string& v) { return nb::str(v.data(), v.size()); }

  void field(const char* key, bool v) { set(key, nb::bool_(v)); }
  void field(const char* key, int v) { set(key, nb::int_(v)); }
  void field(const char* key, double v) { set(key, number(v)); }
  void field(const char* key, const char* v) { set(key, nb::str(v)); }
  void field(const char* key, const std::string& v) { set(key, text(v)); }
  void field(const char* key, const std::optional<double>& v) { set(key, v ? number(*v) : nb::none()); }
  void field(const char* key, const std::vector<double>& v) {
    nb::list list;
    for (double x : v) list.append(number(x));
    set(key, list);
  }
  void field(const char* key, const std::vector<std::string>& v) {
    nb::list list;
    for (const std::string& x : v) list.append(text(x));
    set(key, list);
  }
  void field(const char* key, const std::vector<pe::Interval>& v) {
    nb::list list;
    for (const pe::Interval& iv : v) {
      nb::list pair;
      pair.append(number(iv.lo));
      pair.append(number(iv.hi));
      list.append(pair);
    }
    set(key, list);
  }
  template <class Fill>
  void object(const char* key, Fill&& fill) {
    DictSink sub;
    fill(sub);
    set(key, sub.out);
  }
  template <class Items, class Fill>
  void objects(const char* key, const Items& items, Fill&& fill) {
    nb::list list;
    for (const auto& item : items) {
      DictSink sub;
      fill(item, sub);
      list.append(sub.out);
    }
    set(key, list);
  }
};

template <class Call>
nb::dict run(Placement where, Call&& call) {
  auto report = [&] {
    DeviceScope device(where);
    nb::gil_scoped_release unlocked;
    return std::forward<Call>(call)();
  }();
  DictSink sink;
  pe::detail::report_fields(report, sink);
  return sink.out;
}

nb::dict inverse_root(const InArray& a, const OutArray& x, const nb::dict& options) {
  const Placement where = PlacementCheck().add("a", a).add("x", x).placement();
  const pe::Matrix av = matrix_view("a", a);
  const pe::MutableMatrix xv = mutable_view("x", x);
  const pe::Options o = root_options(options, where, OptionSet::root);
  return run(where, [&] { return pe::inverse_root(av, xv, o); });
}

nb::dict apply_inverse_root(const InArray& a, const InArray& b, const OutArray& z, const nb::dict& options) {
  const Placement where = PlacementCheck().add("a", a).add("b", b).add("z", z).placement();
  const pe::Matrix av = matrix_view("a", a), bv = matrix_view("b", b);
  const pe::MutableMatrix zv = mutable_view("z", z);
  const pe::Options o = root_options(options, where, OptionSet::apply);
  return run(where, [&] { return pe::apply_inverse_root(av, bv, zv, o); });
}

nb::dict solve(const InArray& a, const InArray& b, const OutArray& x, const nb::dict& options) {
  const Placement where = PlacementCheck().add("a", a).add("b", b).add("x", x).placement();
  const pe::Matrix av = matrix_view("a", a), bv = matrix_view("b", b);
  const pe::MutableMatrix xv = mutable_view("x", x);
  const pe::SolveOptions o = solve_options(options, where);
  return run(where, [&] { return pe::solve(av, bv, xv, o); });
}

nb::dict gram_apply(const InArray& g, const InArray& c, const OutArray& z, const nb::dict& options) {
  const Placement where = PlacementCheck().add("g", g).add("c", c).add("z", z).placement();
  const pe::Matrix gv = matrix_view("g", g), cv = matrix_view("c", c);
  const pe::MutableMatrix zv = mutable_view("z", z);
  SharedGramCache* cache = nullptr;
  const pe::GramOptions o = gram_options(options, where, cache);
  return run(where, [&] {
    std::unique_lock<std::mutex> lock;
    if (cache) lock = std::unique_lock<std::mutex>(cache->mutex);
    return pe::gram_apply(gv, cv, zv, o);
  });
}

pe::DType dtype_named(const std::string& name) {
  if (name == "f32" || name == "float32") return pe::DType::f32;
  if (name == "f64" || name == "float64") return pe::DType::f64;
  throw pe::Error("dtype = '" + name + "' is unknown (expected f32 or f64)");
}

Placement placement_named(const std::string& device, int device_id) {
  if (device == "cpu") return {pe::Device::cpu, 0};
  if (device == "cuda") return {pe::Device::cuda, device_id};
  throw pe::Error("device = '" + device + "' is unknown (expected cpu or cuda)");
}

void check_placement(const Placement& plan, const Placement& arrays) {
  if (!(plan == arrays))
    throw pe::Error("the arrays are on " + describe(arrays) + " but the plan was made for " + describe(plan));
}

// The four plan classes: the C++ plan with the placement it was made for.
class RootPlan {
 public:
  RootPlan(std::int64_t n, std::int64_t batch, const std::string& dtype, const std::string& device, int device_id,
           const nb::dict& options)
      : where_(placement_named(device, device_id)),
        plan_(pe::MatrixDesc{n, n, batch, dtype_named(dtype), where_.device},
              root_options(options, where_, OptionSet::root)) {}
  nb::dict execute(const InArray& a, const OutArray& x) {
    check_placement(where_, PlacementCheck().add("a", a).add("x", x).placement());
    const pe::Matrix av = matrix_view("a", a);
    const pe::MutableMatrix xv = mutable_view("x", x);
    return run(where_, [&] { return plan_.execute(av, xv); });
  }
  void enqueue(const InArray& a, const OutArray& x) {
    check_placement(where_, PlacementCheck().add("a", a).add("x", x).placement());
    const pe::Matrix av = matrix_view("a", a);
    const pe::MutableMatrix xv = mutable_view("x", x);
    DeviceScope device(where_);
    nb::gil_scoped_release unlocked;
    plan_.enqueue(av, xv);
  }
  nb::dict collect() { return run(where_, [&] { return plan_.collect(); }); }

 private:
  Placement where_;
  pe::RootPlan plan_;
};

class ApplyPlan {
 public:
  ApplyPlan(std::int64_t n, std::int64_t k, std::int64_t batch, const std::string& dtype, const std::string& device,
            int device_id, const nb::dict& options)
      : where_(placement_named(device, device_id)),
        plan_(pe::MatrixDesc{n, n, batch, dtype_named(dtype), where_.device},
              pe::MatrixDesc{n, k, batch, dtype_named(dtype), where_.device},
              root_options(options, where_, OptionSet::apply)) {}
  nb::dict execute(const InArray& a, const InArray& b, const OutArray& z) {
    check_placement(where_, PlacementCheck().add("a", a).add("b", b).add("z", z).placement());
    const pe::Matrix av = matrix_view("a", a), bv = matrix_view("b", b);
    const pe::MutableMatrix zv = mutable_view("z", z);
    return run(where_, [&] { return plan_.execute(av, bv, zv); });
  }
  void enqueue(const InArray& a, const InArray& b, const OutArray& z) {
    check_placement(where_, PlacementCheck().add("a", a).add("b", b).add("z", z).placement());
    const pe::Matrix av = matrix_view("a", a), bv = matrix_view("b", b);
    const pe::MutableMatrix zv = mutable_view("z", z);
    DeviceScope device(where_);
    nb::gil_scoped_release unlocked;
    plan_.enqueue(av, bv, zv);
  }
  nb::dict collect() { return run(where_, [&] { return plan_.collect(); }); }
  bool direct() const { return plan_.direct(); }

 private:
  Placement where_;
  pe::ApplyPlan plan_;
};

class SolvePlan {
 public:
  SolvePlan(std::int64_t n, std::int64_t k, const std::string& dtype, const std::string& device, int device_id,
            const nb::dict& options)
      : where_(placement_named(device, device_id)),
        plan_(pe::MatrixDesc{n, n, 1, dtype_named(dtype), where_.device},
              pe::MatrixDesc{n, k, 1, dtype_named(dtype), where_.device}, solve_options(options, where_)) {}
  nb::dict execute(const InArray& a, const InArray& b, const OutArray& x) {
    check_placement(where_, PlacementCheck().add("a", a).add("b", b).add("x", x).placement());
    const pe::Matrix av = matrix_view("a", a), bv = matrix_view("b", b);
    const pe::MutableMatrix xv = mutable_view("x", x);
    return run(where_, [&] { return plan_.execute(av, bv, xv); });
  }

 private:
  Placement where_;
  pe::SolvePlan plan_;
};

class GramPlan {
 public:
  GramPlan(std::int64_t m, std::int64_t n, std::int64_t c_rows, std::int64_t k, const std::string& dtype,
           const std::string& device, int device_id, const nb::dict& options)
      : where_(placement_named(device, device_id)), cache_(nullptr),
        plan_(pe::MatrixDesc{m, n, 1, dtype_named(dtype), where_.device},
              pe::MatrixDesc{c_rows, k, 1, dtype_named(dtype), where_.device}, gram_options(options, where_, cache_)) {
    if (cache_) cache_owner_ = options["cache"];  // the plan's options point into it: keep it alive
  }
  nb::dict execute(const InArray& g, const InArray& c, const OutArray& z) {
    check_placement(where_, PlacementCheck().add("g", g).add("c", c).add("z", z).placement());
    const pe::Matrix gv = matrix_view("g", g), cv = matrix_view("c", c);
    const pe::MutableMatrix zv = mutable_view("z", z);
    return run(where_, [&] {
      std::unique_lock<std::mutex> lock;
      if (cache_) lock = std::unique_lock<std::mutex>(cache_->mutex);
      return plan_.execute(gv, cv, zv);
    });
  }

 private:
  Placement where_;
  SharedGramCache* cache_;
  nb::object cache_owner_;
  pe::GramPlan plan_;
};

OptionSet option_set(const std::string& name) {
  if (name == "root") return OptionSet::root;
  if (name == "apply") return OptionSet::apply;
  if (name == "solve") return OptionSet::solve;
  if (name == "gram") return OptionSet::gram;
  throw pe::Error("option set '" + name + "' is unknown (expected root, apply, solve or gram)");
}

}  // namespace

}  // namespace pe_python

NB_MODULE(_pe, m) {
  using namespace pe_python;
  m.doc() = "The compiled half of the pe package; use the functions of `pe` itself.";

  // pe::Error is bad input (a ValueError to Python), with the runtime's message.
  nb::exception<pe::Error>(m, "Error", PyExc_ValueError);

  nb::class_<SharedGramCache>(m, "GramCache",
                              "Reuses the formed Gram matrix and materialised roots across gram_apply calls with "
                              "the same G (keyed by G's memory, shape, dtype, device, the version token and the "
                              "root's options; host arrays are also fingerprinted). Bump `version` whenever G's "
                              "contents change. Safe to share between threads (calls on one cache take turns).")
      .def(nb::init<std::size_t>(), "max_entries"_a = 4)
      .def("clear", [](SharedGramCache& c) {
        std::lock_guard<std::mutex> lock(c.mutex);
        c.cache.clear();
      }, "Drops every entry.")
      .def("__len__", [](SharedGramCache& c) {
        std::lock_guard<std::mutex> lock(c.mutex);
        return c.cache.size();
      }, "Entries held (one per G version and side).");

  m.def("inverse_root", &inverse_root, "a"_a, "x"_a, "options"_a,
        "X <- A^{-1/p} into x (allocated by the caller); returns the dict of pe::to_json of the Report.");
  m.def("apply_inverse_root", &apply_inverse_root, "a"_a, "b"_a, "z"_a, "options"_a,
        "Z <- A^{-1/p} B into z; returns the dict of pe::to_json of the Report.");
  m.def("solve", &solve, "a"_a, "b"_a, "x"_a, "options"_a,
        "X <- A^{-1} B into x; returns the dict of pe::to_json of the SolveReport.");
  m.def("gram_apply", &gram_apply, "g"_a, "c"_a, "z"_a, "options"_a,
        "Z <- (G^T G + lam I)^{-1/p} C (rhs='plain') or ... G^T C (rhs='range') into z; returns the dict of "
        "pe::to_json of the GramReport.");
  const char* execute_doc =
      "Runs the plan on views of the arrays (allocates nothing, loads no tables); returns the dict of pe::to_json of the "
      "report. Not thread-safe on one plan; distinct plans may run concurrently.";
  const char* enqueue_doc =
      "Issues the plan's work on its stream and reads nothing back (CUDA graph capture; docs/graphs.md): needs "
      "verify=False, fallback='never', lambda_min_hint and lambda_max_hint. collect() then returns the report.";
  const char* collect_doc =
      "Waits for the plan's stream and returns the report of the last enqueue (or of the last replay of a captured one).";
  nb::class_<RootPlan>(m, "RootPlan", "pe::RootPlan: X <- A^{-1/p} for one shape, dtype, placement and options.")
      .def(nb::init<std::int64_t, std::int64_t, const std::string&, const std::string&, int, const nb::dict&>(), "n"_a,
           "batch"_a, "dtype"_a, "device"_a, "device_id"_a, "options"_a)
      .def("execute", &RootPlan::execute, "a"_a, "x"_a, execute_doc)
      .def("enqueue", &RootPlan::enqueue, "a"_a, "x"_a, enqueue_doc)
      .def("collect", &RootPlan::collect, collect_doc);
  nb::class_<ApplyPlan>(m, "ApplyPlan", "pe::ApplyPlan: Z <- A^{-1/p} B for one shape, dtype, placement and options.")
      .def(nb::init<std::int64_t, std::int64_t, std::int64_t, const std::string&, const std::string&, int,
                    const nb::dict&>(),
           "n"_a, "k"_a, "batch"_a, "dtype"_a, "device"_a, "device_id"_a, "options"_a)
      .def("execute", &ApplyPlan::execute, "a"_a, "b"_a, "z"_a, execute_doc)
      .def("enqueue", &ApplyPlan::enqueue, "a"_a, "b"_a, "z"_a, enqueue_doc)
      .def("collect", &ApplyPlan::collect, collect_doc)
      .def_prop_ro("direct", &ApplyPlan::direct, "Whether the plan carries Z through the steps (else materialises X).");
  nb::class_<SolvePlan>(m, "SolvePlan", "pe::SolvePlan: X <- A^{-1} B for one shape, dtype, placement and options.")
      .def(nb::init<std::int64_t, std::int64_t, const std::string&, const std::string&, int, const nb::dict&>(), "n"_a,
           "k"_a, "dtype"_a, "device"_a, "device_id"_a, "options"_a)
      .def("execute", &SolvePlan::execute, "a"_a, "b"_a, "x"_a, execute_doc);
  nb::class_<GramPlan>(m, "GramPlan", "pe::GramPlan: Gram applies for one shape, dtype, placement and options.")
      .def(nb::init<std::int64_t, std::int64_t, std::int64_t, std::int64_t, const std::string&, const std::string&, int,
                    const nb::dict&>(),
           "m"_a, "n"_a, "c_rows"_a, "k"_a, "dtype"_a, "device"_a, "device_id"_a, "options"_a)
      .def("execute", &GramPlan::execute, "g"_a, "c"_a, "z"_a, execute_doc);
  m.def("default_options", [](const std::string& set) { return default_options(option_set(set)); }, "set"_a,
        "The C++ defaults of one option set ('root', 'apply', 'solve' or 'gram') in the Python spellings.");
#ifdef PE_PYTHON_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
}
