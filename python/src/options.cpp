#include "options.hpp"

#include <array>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include <vector>

namespace pe_python {

namespace {

// Names of the enums the runtime has no parser for (Precond and Structure use pe::parse_precond and
// pe::parse_structure, so their names and messages are the runtime's own).
template <class E>
struct EnumNames;
template <>
struct EnumNames<pe::ApplyMode> {
  static constexpr std::array<std::pair<const char*, pe::ApplyMode>, 3> values{
      {{"automatic", pe::ApplyMode::automatic}, {"materialize", pe::ApplyMode::materialize}, {"direct", pe::ApplyMode::direct}}};
};
template <>
struct EnumNames<pe::ScheduleSource> {
  static constexpr std::array<std::pair<const char*, pe::ScheduleSource>, 2> values{
      {{"compiled", pe::ScheduleSource::compiled}, {"json_file", pe::ScheduleSource::json_file}}};
};
template <>
struct EnumNames<pe::ComputeMode> {
  static constexpr std::array<std::pair<const char*, pe::ComputeMode>, 2> values{
      {{"native", pe::ComputeMode::native}, {"tf32", pe::ComputeMode::tf32}}};
};
template <>
struct EnumNames<pe::Device> {
  static constexpr std::array<std::pair<const char*, pe::Device>, 2> values{
      {{"cpu", pe::Device::cpu}, {"cuda", pe::Device::cuda}}};
};
template <>
struct EnumNames<pe::Fallback> {
  static constexpr std::array<std::pair<const char*, pe::Fallback>, 3> values{
      {{"never", pe::Fallback::never}, {"on_failure", pe::Fallback::on_failure},
       {"on_unverified", pe::Fallback::on_unverified}}};
};
template <>
struct EnumNames<pe::GramRhs> {
  static constexpr std::array<std::pair<const char*, pe::GramRhs>, 2> values{
      {{"plain", pe::GramRhs::plain}, {"range", pe::GramRhs::range}}};
};
template <>
struct EnumNames<pe::GramSide> {
  static constexpr std::array<std::pair<const char*, pe::GramSide>, 3> values{
      {{"automatic", pe::GramSide::automatic}, {"primal", pe::GramSide::primal}, {"dual", pe::GramSide::dual}}};
};

template <class E>
E parse_enum(const char* option, const std::string& name) {
  std::string expected;
  const auto& values = EnumNames<E>::values;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (name == values[i].first) return values[i].second;
    expected += std::string(i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") + values[i].first;
  }
  throw pe::Error(std::string(option) + " = '" + name + "' is unknown (expected " + expected + ")");
}

template <class E>
const char* enum_name(E value) {
  for (const auto& [name, v] : EnumNames<E>::values)
    if (v == value) return name;
  return "?";
}

std::string type_of(nb::handle h) { return nb::cast<std::string>(nb::type_name(h.type())); }

[[noreturn]] void wrong_type(const char* option, const char* expected, nb::handle value) {
  throw nb::type_error((std::string(option) + ": expected " + expected + ", got " + type_of(value)).c_str());
}

// Reads the options that `given` names into a struct (fields visited one by one), and counts them, so
// that a name no field consumed is reported instead of ignored.
class Reader {
 public:
  Reader(const nb::dict& given, Placement arrays) : given_(given), arrays_(arrays) {}

  void operator()(const char* option, int& out) {
    if (nb::handle h = find(option)) {
      long long v = 0;
      if (nb::isinstance<nb::bool_>(h) || !nb::try_cast<long long>(h, v)) wrong_type(option, "an int", h);
      if (v < INT_MIN || v > INT_MAX)
        throw pe::Error(std::string(option) + " = " + std::to_string(v) + ": out of range for a C int");
      out = static_cast<int>(v);
    }
  }
  void operator()(const char* option, std::uint64_t& out) {
    if (nb::handle h = find(option)) {
      long long v = 0;
      if (nb::isinstance<nb::bool_>(h) || !nb::try_cast<long long>(h, v)) wrong_type(option, "an int", h);
      if (v < 0) throw pe::Error(std::string(option) + " = " + std::to_string(v) + ": expected >= 0");
      out = static_cast<std::uint64_t>(v);
    }
  }
  void operator()(const char* option, double& out) {
    if (nb::handle h = find(option)) {
      if (nb::isinstance<nb::bool_>(h) || !nb::try_cast<double>(h, out)) wrong_type(option, "a number", h);
    }
  }
  void operator()(const char* option, bool& out) {
    if (nb::handle h = find(option)) {
      if (!nb::isinstance<nb::bool_>(h)) wrong_type(option, "a bool", h);
      out = nb::cast<bool>(h);
    }
  }
  void operator()(const char* option, std::string& out) {
    if (nb::handle h = find(option)) out = string(option, h);
  }
  void operator()(const char* option, pe::Precond& out) {
    if (nb::handle h = find(option)) out = pe::parse_precond(string(option, h));
  }
  void operator()(const char* option, pe::Structure& out) {
    if (nb::handle h = find(option)) out = pe::parse_structure(string(option, h));
  }
  template <class E>
  void operator()(const char* option, E& out) {
    if (nb::handle h = find(option)) out = parse_enum<E>(option, string(option, h));
  }
  void device(const char* option, pe::Device& out) {
    nb::handle h = find(option);
    out = (!h || h.is_none()) ? arrays_.device : parse_enum<pe::Device>(option, string(option, h));
  }
  void stream(const char* option, void*& out) {
    nb::handle h = find(option);
    if (!h || h.is_none()) return;
    unsigned long long v = 0;
    if (nb::isinstance<nb::bool_>(h) || !nb::try_cast<unsigned long long>(h, v))
      wrong_type(option, "None or an int (a cudaStream_t)", h);
    out = reinterpret_cast<void*>(static_cast<std::uintptr_t>(v));
  }
  void storage(const char* option, pe::DType& out, bool& from_input) {
    nb::handle h = find(option);
    if (!h || h.is_none()) {
      from_input = true;
      return;
    }
    const std::string name = string(option, h);
    from_input = false;
    if (name == "f32") out = pe::DType::f32;
    else if (name == "f64") out = pe::DType::f64;
    else if (name == "bf16") out = pe::DType::bf16;  // emulated on the CPU, native on CUDA
    else if (name == "f16") out = pe::DType::f16;
    else throw pe::Error(std::string(option) + " = '" + name + "' is unknown (expected None, f32, f64, bf16 or f16)");
  }
  nb::handle take(const char* option) { return find(option); }

  // Every key of `given` must have been consumed by a field.
  void finish() const {
    if (used_ == given_.size()) return;
    for (auto [key, value] : given_) {
      (void)value;
      const std::string name = nb::cast<std::string>(nb::str(key));
      bool known = false;
      for (const char* option : consumed_) known = known || name == option;
      if (!known) throw nb::type_error(("unexpected option '" + name + "'").c_str());
    }
  }

 private:
  // A borrowed reference (the dict keeps the value alive), or null when the option is not given.
  nb::handle find(const char* option) {
    PyObject* value = PyDict_GetItemString(given_.ptr(), option);
    if (!value) return {};
    ++used_;
    consumed_.push_back(option);
    return value;
  }
  static std::string string(const char* option, nb::handle h) {
    if (!nb::isinstance<nb::str>(h)) wrong_type(option, "a str", h);
    return nb::cast<std::string>(h);
  }

  const nb::dict& given_;
  Placement arrays_;
  std::size_t used_ = 0;
  std::vector<const char*> consumed_;  // option names are string literals
};

// Writes a struct's fields into a dict, in the Python spellings (see options.hpp).
class Writer {
 public:
  explicit Writer(nb::dict& out) : out_(out) {}
  template <class T>
  void operator()(const char* option, const T& value) {
    if constexpr (std::is_enum_v<T>)
      out_[option] = name_of(value);
    else
      out_[option] = value;
  }
  void device(const char* option, pe::Device) { out_[option] = nb::none(); }
  void stream(const char* option, void*) { out_[option] = nb::none(); }
  void storage(const char* option, pe::DType dtype, bool from_input) {
    if (from_input)
      out_[option] = nb::none();
    else
      out_[option] = pe::to_string(dtype);
  }

 private:
  static const char* name_of(pe::Precond v) { return pe::to_string(v); }
  static const char* name_of(pe::Structure v) { return pe::to_string(v); }
  template <class E>
  static const char* name_of(E v) {
    return enum_name(v);
  }
  nb::dict& out_;
};

// Where and in what the call runs: the same members in Options, SolveOptions and GramOptions.
template <class O, class V>
void visit_placement(O& o, V& v) {
  v("schedule_source", o.schedule_source);
  v("schedule_file", o.schedule_file);
  v.device("device", o.device);
  v.stream("stream", o.stream);
  v("compute", o.compute);
  v.storage("storage", o.storage, o.storage_from_input);
}

// The fields of each option set, once, for reading and for writing the defaults. Hooks for tests
// (Options::on_step) and the Gram cache (a Python object, handled by gram_options) are not fields.
template <class O, class V>
void visit_root(O& o, V& v, OptionSet set) {
  v("p", o.p);
  v("target", o.target);
  v("max_gemms", o.max_gemms);
  v("max_steps", o.max_steps);
  v("degree", o.degree);
  v("precond", o.precond);
  v("ridge", o.ridge);
  v("l_target", o.l_target);
  v("lambda_min_hint", o.lambda_min_hint);
  v("kappa_hint", o.kappa_hint);
  v("lambda_max_hint", o.lambda_max_hint);
  if (set == OptionSet::apply) {  // a root has no apply mode and no reuse count
    v("mode", o.mode);
    v("reuse_count", o.reuse_count);
  }
  v("symmetrize_every", o.symmetrize_every);
  v("renormalize", o.renormalize);
  v("symmetry_tolerance", o.symmetry_tolerance);
  v("verify", o.verify);
  v("fallback", o.fallback);
  v("fallback_factor", o.fallback_factor);
  v("elevated_steps", o.elevated_steps);
  v("newton_steps", o.newton_steps);
  visit_placement(o, v);
}

template <class O, class V>
void visit_solve(O& o, V& v) {
  v("target", o.target);
  v("max_gemms", o.max_gemms);
  v("max_corrections", o.max_corrections);
  v("structure", o.structure);
  v("inner_target", o.inner_target);
  v("polar_target", o.polar_target);
  v("precond", o.precond);
  v("lambda_min_hint", o.lambda_min_hint);
  v("kappa_hint", o.kappa_hint);
  v("allow_fallback", o.allow_fallback);
  v("symmetry_tolerance", o.symmetry_tolerance);
  visit_placement(o, v);
}

template <class O, class V>
void visit_gram(O& o, V& v) {
  v("p", o.p);
  v("lam", o.lambda);
  v("target", o.target);
  v("max_gemms", o.max_gemms);
  v("degree", o.degree);
  v("rhs", o.rhs);
  v("side", o.side);
  v("version", o.version);
  v("lambda_min_hint", o.lambda_min_hint);
  v("kappa_hint", o.kappa_hint);
  v("verify", o.verify);
  visit_placement(o, v);
}

}  // namespace

pe::Options root_options(const nb::dict& given, Placement arrays, OptionSet set) {
  pe::Options o;
  Reader r(given, arrays);
  visit_root(o, r, set);
  r.finish();
  return o;
}

pe::SolveOptions solve_options(const nb::dict& given, Placement arrays) {
  pe::SolveOptions o;
  Reader r(given, arrays);
  visit_solve(o, r);
  r.finish();
  return o;
}

pe::GramOptions gram_options(const nb::dict& given, Placement arrays, SharedGramCache*& cache) {
  pe::GramOptions o;
  Reader r(given, arrays);
  visit_gram(o, r);
  cache = nullptr;
  if (nb::handle h = r.take("cache"); h && !h.is_none()) {
    if (!nb::try_cast<SharedGramCache*>(h, cache)) wrong_type("cache", "None or a pe.GramCache", h);
    o.cache = &cache->cache;
  }
  r.finish();
  return o;
}

nb::dict default_options(OptionSet set) {
  nb::dict out;
  Writer w(out);
  switch (set) {
    case OptionSet::root:
    case OptionSet::apply: {
      const pe::Options o;
      visit_root(o, w, set);
      break;
    }
    case OptionSet::solve: {
      const pe::SolveOptions o;
      visit_solve(o, w);
      break;
    }
    case OptionSet::gram: {
      const pe::GramOptions o;
      visit_gram(o, w);
      out["cache"] = nb::none();
      break;
    }
  }
  return out;
}

}  // namespace pe_python
