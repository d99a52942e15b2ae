#include "tables.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/multiprecision/cpp_bin_float.hpp>

#include "pe/schedule_types.hpp"
#include "pe/types.hpp"

namespace pe::synth {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------- small helpers
std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A C++ floating literal: %.17g (doubles) / %.9g with an f suffix (floats), always with a '.' or exponent.
std::string cpp_double(double v) {
  std::string s = fmt("%.17g", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}
std::string cpp_float(float v) {
  std::string s = fmt("%.9g", static_cast<double>(v));
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s + "f";
}

std::string fnv1a64(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

[[noreturn]] void config_fail(const std::string& origin, const std::string& field, const std::string& what) {
  throw Error("pe-synth: config " + origin + ": field '" + field + "' " + what);
}

// A config value for a message: scalars as written (cut at 64 characters), containers by kind and size.
// Dumping a container recurses as deep as it nests, and a config nested a few hundred thousand levels
// deep overflowed the stack (found by fuzzing).
std::string describe_value(const json& v) {
  if (v.is_array()) return "an array of " + std::to_string(v.size()) + " element(s)";
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " member(s)";
  const std::string text = v.dump();
  return text.size() <= 64 ? text : text.substr(0, 61) + "...";
}

std::vector<int> int_list(const json& j, const std::string& origin, const std::string& field, int lo, int hi) {
  if (!j.is_array() || j.empty()) config_fail(origin, field, "must be a non-empty array of integers");
  std::vector<int> out;
  for (const auto& v : j) {
    if (!v.is_number_integer()) config_fail(origin, field, "must hold integers, found " + describe_value(v));
    const long long x = v.get<long long>();
    if (x < lo || x > hi)
      config_fail(origin, field, "value " + std::to_string(x) + " is not in [" + std::to_string(lo) + ", " +
                                     std::to_string(hi) + "]");
    if (std::find(out.begin(), out.end(), static_cast<int>(x)) != out.end())
      config_fail(origin, field, "lists " + std::to_string(x) + " twice");
    out.push_back(static_cast<int>(x));
  }
  return out;
}
double number(const json& j, const std::string& origin, const std::string& field) {
  if (!j.is_number()) config_fail(origin, field, "must be a number, found " + describe_value(j));
  const double d = j.get<double>();
  if (!std::isfinite(d)) config_fail(origin, field, "must be finite");
  return d;
}
int integer(const json& j, const std::string& origin, const std::string& field, int lo, int hi) {
  if (!j.is_number_integer()) config_fail(origin, field, "must be an integer, found " + describe_value(j));
  const long long x = j.get<long long>();
  if (x < lo || x > hi)
    config_fail(origin, field, "= " + std::to_string(x) + " is not in [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
  return static_cast<int>(x);
}
void known_keys(const json& j, const std::string& origin, const std::string& where,
                std::initializer_list<const char*> keys) {
  if (!j.is_object()) config_fail(origin, where.empty() ? "$" : where, "must be an object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
      config_fail(origin, (where.empty() ? "" : where + ".") + it.key(), "is not a known setting");
}

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("pe-synth: " + what + " " + path + " cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("pe-synth: " + what + " " + path + " cannot be read");
  return s.str();
}

int thread_count(int requested) {
  if (requested > 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Runs task(i) for i in [0, n) on a pool; results are stored by index, so output order is fixed.
void parallel_for(std::size_t n, int threads, bool progress, const char* label,
                  const std::function<void(std::size_t)>& task) {
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex error_mutex;
  std::string first_error;
  const bool tty = progress && isatty(fileno(stderr));
  auto worker = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        task(i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error.empty()) first_error = e.what();
        next = n;
      }
      const std::size_t d = ++done;
      if (tty && (d % 8 == 0 || d == n)) {
        std::lock_guard<std::mutex> lock(error_mutex);
        std::fprintf(stderr, "\r%s %zu/%zu", label, d, n);
        std::fflush(stderr);
      }
    }
  };
  std::vector<std::thread> pool;
  const int count = std::max(1, std::min<int>(thread_count(threads), static_cast<int>(n)));
  for (int t = 0; t < count; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (tty) std::fprintf(stderr, "\r%s done%30s\n", label, "");
  if (!first_error.empty()) throw Error(first_error);
}

EntryRecord entry_from_step(const Step& s, double l_edge) {
  using R = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<50>>;
  EntryRecord e;
  e.l_edge = l_edge;
  e.kappa_edge = R(1 / R(l_edge)).str(17);
  e.coefficients = s.coefficients;
  e.coeff_f64 = s.coeff_f64;
  e.eps_f64 = s.cert_f64.eps_d;
  e.image_lo_f64 = s.cert_f64.image_lo_d;
  e.image_hi_f64 = s.cert_f64.image_hi_d;
  e.coeff_f32 = s.coeff_f32;
  e.eps_f32 = s.cert_f32.eps_d;
  e.image_lo_f32 = s.cert_f32.image_lo_d;
  e.image_hi_f32 = s.cert_f32.image_hi_d;
  e.eps = s.cert.eps;
  e.eps_plain = s.eps_plain;
  e.overshoot = s.overshoot;
  e.guarded = s.guarded;
  return e;
}

StepRecord step_record(const Step& s, double l) {
  StepRecord r;
  r.l = l;
  r.coefficients = s.coefficients;
  r.coeff_f64 = s.coeff_f64;
  r.coeff_f32 = s.coeff_f32;
  r.eps_f64 = s.cert_f64.eps_d;
  r.image_lo_f64 = s.cert_f64.image_lo_d;
  r.image_hi_f64 = s.cert_f64.image_hi_d;
  return r;
}

std::string kappa_tag(double kappa0) {
  const double e = std::log10(kappa0);
  if (std::abs(e - std::round(e)) < 1e-12) return "k1e" + std::to_string(static_cast<int>(std::round(e)));
  std::string s = fmt("%g", kappa0);
  for (char& c : s)
    if (c == '.' || c == '+' || c == '-') c = '_';
  return "k" + s;
}

}  // namespace

// ---------------------------------------------------------------- config
ordered_json Config::to_json() const {
  ordered_json j;
  j["p"] = p;
  j["degrees"] = degrees;
  j["buckets"] = {{"kappa_minus_one_min", kappa_minus_one_min},
                  {"kappa_minus_one_max", kappa_minus_one_max},
                  {"per_decade", per_decade}};
  j["eta"] = eta;
  j["overshoot_cap"] = overshoot_cap;
  j["digits"] = digits;
  j["fixed_schedules"] = {{"p", fixed.p},
                          {"degrees", fixed.degrees},
                          {"kappa0", fixed.kappa0},
                          {"target_eps", fixed.target_eps},
                          {"max_steps", fixed.max_steps}};
  return j;
}

std::string Config::hash() const { return fnv1a64(to_json().dump()); }

Config config_from_json(const json& j, const std::string& origin) {
  Config c;
  known_keys(j, origin, "", {"p", "degrees", "buckets", "eta", "overshoot_cap", "digits", "fixed_schedules", "comment"});
  if (j.contains("p")) c.p = int_list(j["p"], origin, "p", 1, 64);
  if (j.contains("degrees")) c.degrees = int_list(j["degrees"], origin, "degrees", 1, 2);
  if (j.contains("buckets")) {
    const json& b = j["buckets"];
    known_keys(b, origin, "buckets", {"kappa_minus_one_min", "kappa_minus_one_max", "per_decade"});
    if (b.contains("kappa_minus_one_min"))
      c.kappa_minus_one_min = number(b["kappa_minus_one_min"], origin, "buckets.kappa_minus_one_min");
    if (b.contains("kappa_minus_one_max"))
      c.kappa_minus_one_max = number(b["kappa_minus_one_max"], origin, "buckets.kappa_minus_one_max");
    if (b.contains("per_decade")) c.per_decade = integer(b["per_decade"], origin, "buckets.per_decade", 1, 64);
    if (!(c.kappa_minus_one_min >= 1e-12 && c.kappa_minus_one_min <= c.kappa_minus_one_max &&
          c.kappa_minus_one_max <= 1e15))
      config_fail(origin, "buckets", "needs 1e-12 <= kappa_minus_one_min <= kappa_minus_one_max <= 1e15");
  }
  const bool cap_given = j.contains("overshoot_cap");
  if (j.contains("eta")) {
    c.eta = number(j["eta"], origin, "eta");
    if (!(c.eta >= 0 && c.eta <= 0.5)) config_fail(origin, "eta", "= " + j["eta"].dump() + " is not in [0, 0.5]");
  }
  c.overshoot_cap = 1 + c.eta;
  if (cap_given) {
    c.overshoot_cap = number(j["overshoot_cap"], origin, "overshoot_cap");
    if (!(c.overshoot_cap >= 1)) config_fail(origin, "overshoot_cap", "= " + j["overshoot_cap"].dump() + " is not >= 1");
  }
  if (j.contains("digits")) c.digits = integer(j["digits"], origin, "digits", kMinDigits, kMaxDigits);
  if (j.contains("fixed_schedules")) {
    const json& f = j["fixed_schedules"];
    known_keys(f, origin, "fixed_schedules", {"p", "degrees", "kappa0", "target_eps", "max_steps"});
    if (f.contains("p")) c.fixed.p = int_list(f["p"], origin, "fixed_schedules.p", 1, 64);
    if (f.contains("degrees")) c.fixed.degrees = int_list(f["degrees"], origin, "fixed_schedules.degrees", 1, 2);
    if (f.contains("kappa0")) {
      const json& k = f["kappa0"];
      if (!k.is_array()) config_fail(origin, "fixed_schedules.kappa0", "must be an array of numbers");
      c.fixed.kappa0.clear();
      for (const auto& v : k) {
        const double x = number(v, origin, "fixed_schedules.kappa0");
        if (!(x > 1 && x <= 1e15)) config_fail(origin, "fixed_schedules.kappa0", "value " + v.dump() + " is not in (1, 1e15]");
        c.fixed.kappa0.push_back(x);
      }
    }
    if (f.contains("target_eps")) {
      c.fixed.target_eps = number(f["target_eps"], origin, "fixed_schedules.target_eps");
      if (!(c.fixed.target_eps >= 1e-15 && c.fixed.target_eps < 1))
        config_fail(origin, "fixed_schedules.target_eps", "is not in [1e-15, 1)");
    }
    if (f.contains("max_steps")) c.fixed.max_steps = integer(f["max_steps"], origin, "fixed_schedules.max_steps", 1, 64);
  }
  return c;
}

Config load_config(const std::string& path) {
  const std::string text = read_file(path, "config");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("pe-synth: config " + path + " is not valid JSON (" + std::string(e.what()) + ")");
  }
  Config c = config_from_json(j, path);
  c.name = fs::path(path).filename().string();
  return c;
}

std::vector<double> bucket_edges(const Config& config) {
  using R = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<50>>;
  const R lo = log10(R(config.kappa_minus_one_min)), hi = log10(R(config.kappa_minus_one_max));
  const int count = static_cast<int>(std::llround(((hi - lo) * config.per_decade).convert_to<double>()));
  std::vector<double> edges;
  for (int k = count; k >= 0; --k) {
    const R e = lo + R(k) / config.per_decade;
    edges.push_back(R(1 / (1 + pow(R(10), e))).convert_to<double>());
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  return edges;
}

// ---------------------------------------------------------------- generate
TableFile build_tables(const Config& config, const GenerateOptions& options) {
  TableFile file;
  file.generator = std::string("pe-synth ") + kGeneratorVersion;
  file.config_hash = config.hash();
  file.config_name = config.name;
  file.config = config.to_json();
  file.digits = working_digits(config.digits);
  file.eta = config.eta;
  const std::vector<double> edges = bucket_edges(config);
  struct Task {
    int table, p, degree;
    double l;
  };
  std::vector<Task> tasks;
  for (int p : config.p)
    for (int degree : config.degrees) {
      file.tables.push_back({p, degree, config.eta, {}});
      for (double l : edges) tasks.push_back({static_cast<int>(file.tables.size()) - 1, p, degree, l});
    }
  std::vector<std::optional<EntryRecord>> results(tasks.size());
  struct FixedTask {
    int p, degree;
    double kappa0;
  };
  std::vector<FixedTask> fixed_tasks;
  for (int p : config.fixed.p)
    for (int degree : config.fixed.degrees)
      for (double k : config.fixed.kappa0) fixed_tasks.push_back({p, degree, k});
  std::vector<FixedRecord> fixed(fixed_tasks.size());
  const std::size_t total = fixed_tasks.size() + tasks.size();
  // Fixed schedules first: each is a sequential chain, so they should not be the tail of the pool.
  parallel_for(total, options.threads, options.progress, "pe-synth generate", [&](std::size_t i) {
    if (i < fixed_tasks.size()) {
      const FixedTask& t = fixed_tasks[i];
      ScheduleRequest r;
      r.p = t.p;
      r.degree = t.degree;
      r.digits = config.digits;
      r.l0 = Value::of(1 / t.kappa0);
      r.target = config.fixed.target_eps;
      r.step_limit = config.fixed.max_steps;
      r.kind = StepKind::minimax;
      r.guards = config.guards();
      r.chain_f64 = true;
      r.allow_unreached = true;
      const Schedule s = greedy_schedule(r);
      FixedRecord& f = fixed[i];
      f.p = t.p;
      f.degree = t.degree;
      f.l0 = 1 / t.kappa0;
      f.kappa0 = t.kappa0;
      double l = f.l0;
      for (const Step& st : s.steps) {
        f.steps.push_back(step_record(st, l));
        l = st.cert_f64.next_l_d;
      }
      f.final_eps = f.steps.back().eps_f64;
      f.gemms = s.gemms;
      return;
    }
    const Task& t = tasks[i - fixed_tasks.size()];
    StepRequest r;
    r.p = t.p;
    r.degree = t.degree;
    r.l = Value::of(t.l);
    r.digits = config.digits;
    r.kind = StepKind::guarded;
    r.guards = config.guards();
    try {
      results[i - fixed_tasks.size()] = entry_from_step(solve_step(r), t.l);
    } catch (const NoGuardedSolution&) {
      // Left out of the table (the runtime then uses the next lower edge, valid for every l above it);
      // verify re-checks that the edge still has no guarded solution.
    }
  });
  for (std::size_t i = 0; i < tasks.size(); ++i)
    if (results[i]) file.tables[tasks[i].table].entries.push_back(*results[i]);
  for (const TableRecord& t : file.tables)
    if (t.entries.empty())
      throw Error("pe-synth: no bucket of p = " + std::to_string(t.p) + ", degree " + std::to_string(t.degree) +
                  " satisfies the guards");
  file.fixed = std::move(fixed);
  return file;
}

// ---------------------------------------------------------------- emitters
namespace {

std::string banner(const TableFile& f) {
  return "generated by " + f.generator + " from " + f.config_name + " (config hash " + f.config_hash +
         "), do not edit";
}

ordered_json doubles(const double* v, std::size_t n) {
  ordered_json a = ordered_json::array();
  for (std::size_t i = 0; i < n; ++i) a.push_back(v[i]);
  return a;
}
ordered_json floats(const float* v, std::size_t n) {
  ordered_json a = ordered_json::array();
  for (std::size_t i = 0; i < n; ++i) a.push_back(static_cast<double>(v[i]));
  return a;
}

}  // namespace

std::string emit_json(const TableFile& f) {
  ordered_json j;
  j["banner"] = banner(f);
  j["schema_version"] = kScheduleSchemaVersion;
  j["generator"] = f.generator;
  j["config_hash"] = f.config_hash;
  j["config_name"] = f.config_name;
  j["config"] = f.config;
  j["digits"] = f.digits;
  j["eta"] = f.eta;
  ordered_json tables = ordered_json::array();
  for (const TableRecord& t : f.tables) {
    ordered_json tj;
    tj["p"] = t.p;
    tj["degree"] = t.degree;
    tj["eta"] = t.eta;
    ordered_json entries = ordered_json::array();
    for (const EntryRecord& e : t.entries) {
      ordered_json ej;
      ej["l_edge"] = e.l_edge;
      ej["kappa_edge"] = e.kappa_edge;
      ej["coefficients"] = e.coefficients;
      ej["coefficients_f64"] = doubles(e.coeff_f64.data(), 3);
      ej["eps_f64"] = e.eps_f64;
      ej["image_f64"] = {e.image_lo_f64, e.image_hi_f64};
      ej["coefficients_f32"] = floats(e.coeff_f32.data(), 3);
      ej["eps_f32"] = e.eps_f32;
      ej["image_f32"] = {e.image_lo_f32, e.image_hi_f32};
      ej["eps"] = e.eps;
      ej["eps_plain"] = e.eps_plain;
      ej["overshoot"] = e.overshoot;
      ej["guarded"] = e.guarded;
      entries.push_back(std::move(ej));
    }
    tj["entries"] = std::move(entries);
    tables.push_back(std::move(tj));
  }
  j["bucket_tables"] = std::move(tables);
  ordered_json fixed = ordered_json::array();
  for (const FixedRecord& fr : f.fixed) {
    ordered_json fj;
    fj["p"] = fr.p;
    fj["degree"] = fr.degree;
    fj["l0"] = fr.l0;
    fj["kappa0"] = fr.kappa0;
    ordered_json steps = ordered_json::array();
    for (const StepRecord& s : fr.steps) {
      ordered_json sj;
      sj["l"] = s.l;
      sj["coefficients"] = s.coefficients;
      sj["coefficients_f64"] = doubles(s.coeff_f64.data(), 3);
      sj["coefficients_f32"] = floats(s.coeff_f32.data(), 3);
      sj["eps_f64"] = s.eps_f64;
      sj["image_f64"] = {s.image_lo_f64, s.image_hi_f64};
      steps.push_back(std::move(sj));
    }
    fj["steps"] = std::move(steps);
    fj["final_eps"] = fr.final_eps;
    fj["gemms"] = fr.gemms;
    fixed.push_back(std::move(fj));
  }
  j["fixed_schedules"] = std::move(fixed);
  return j.dump(1) + "\n";
}

std::string emit_header(const TableFile& f) {
  std::ostringstream o;
  o << "// " << banner(f) << "\n"
    << "// Certified minimax steps for pe's runtime (records: include/pe/schedule_types.hpp, format:\n"
    << "// docs/schedule-format.md). Regenerate with `pe-synth generate`; CI checks them with `pe-synth verify`.\n"
    << "#pragma once\n\n#include <cstddef>\n\n#include \"pe/schedule_types.hpp\"\n\nnamespace pe::generated {\n\n"
    << "inline constexpr int kSchemaVersion = " << kScheduleSchemaVersion << ";\n"
    << "inline constexpr const char* kGeneratorVersion = \"" << f.generator << "\";\n"
    << "inline constexpr const char* kConfigHash = \"" << f.config_hash << "\";\n\n";
  auto triple_d = [](const std::array<double, 3>& c) {
    return "{" + cpp_double(c[0]) + ", " + cpp_double(c[1]) + ", " + cpp_double(c[2]) + "}";
  };
  auto triple_f = [](const std::array<float, 3>& c) {
    return "{" + cpp_float(c[0]) + ", " + cpp_float(c[1]) + ", " + cpp_float(c[2]) + "}";
  };
  o << "// BucketEntry: l_edge, coeff_f64, eps_f64, image_lo_f64, image_hi_f64, coeff_f32, eps_f32, image_lo_f32,\n"
    << "// image_hi_f32, eps_plain, overshoot, guarded\n";
  for (const TableRecord& t : f.tables) {
    o << "inline constexpr pe::BucketEntry kEntries_p" << t.p << "_deg" << t.degree << "[] = {\n";
    for (const EntryRecord& e : t.entries)
      o << "    {" << cpp_double(e.l_edge) << ", " << triple_d(e.coeff_f64) << ", " << cpp_double(e.eps_f64) << ", "
        << cpp_double(e.image_lo_f64) << ", " << cpp_double(e.image_hi_f64) << ", " << triple_f(e.coeff_f32) << ", "
        << cpp_double(e.eps_f32) << ", " << cpp_double(e.image_lo_f32) << ", " << cpp_double(e.image_hi_f32) << ", "
        << cpp_double(e.eps_plain) << ", " << cpp_double(e.overshoot) << ", " << (e.guarded ? "true" : "false")
        << "},\n";
    o << "};\n\n";
  }
  o << "inline constexpr pe::BucketTable kBucketTables[] = {\n";
  for (const TableRecord& t : f.tables)
    o << "    {" << t.p << ", " << t.degree << ", " << cpp_double(t.eta) << ", kEntries_p" << t.p << "_deg" << t.degree
      << ", " << t.entries.size() << "},\n";
  o << "};\ninline constexpr std::size_t kBucketTableCount = " << f.tables.size() << ";\n\n";
  o << "// FixedStep: l, coeff_f64, coeff_f32, eps_f64, image_lo_f64, image_hi_f64\n";
  auto fixed_name = [](const FixedRecord& fr) {
    return "kSteps_p" + std::to_string(fr.p) + "_deg" + std::to_string(fr.degree) + "_" + kappa_tag(fr.kappa0);
  };
  for (const FixedRecord& fr : f.fixed) {
    o << "inline constexpr pe::FixedStep " << fixed_name(fr) << "[] = {\n";
    for (const StepRecord& s : fr.steps)
      o << "    {" << cpp_double(s.l) << ", " << triple_d(s.coeff_f64) << ", " << triple_f(s.coeff_f32) << ", "
        << cpp_double(s.eps_f64) << ", " << cpp_double(s.image_lo_f64) << ", " << cpp_double(s.image_hi_f64) << "},\n";
    o << "};\n";
  }
  if (f.fixed.empty()) {
    o << "inline constexpr const pe::FixedSchedule* kFixedSchedules = nullptr;\n";
  } else {
    o << "\ninline constexpr pe::FixedSchedule kFixedSchedules[] = {\n";
    for (const FixedRecord& fr : f.fixed)
      o << "    {" << fr.p << ", " << fr.degree << ", " << cpp_double(fr.l0) << ", " << fixed_name(fr) << ", "
        << fr.steps.size() << "},\n";
    o << "};\n";
  }
  o << "inline constexpr std::size_t kFixedScheduleCount = " << f.fixed.size() << ";\n\n}  // namespace pe::generated\n";
  return o.str();
}

// ---------------------------------------------------------------- parsing a table file back
namespace {

struct Reader {
  std::string origin;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("pe-synth: table file " + origin + ": field '" + field + "' " + what);
  }
  const json& member(const json& o, const std::string& path, const char* key) const {
    if (!o.is_object()) fail(path, "is not an object");
    auto it = o.find(key);
    if (it == o.end()) fail(path + "." + key, "is missing");
    return *it;
  }
  double num(const json& o, const std::string& path, const char* key) const {
    const json& v = member(o, path, key);
    if (!v.is_number()) fail(path + "." + key, "is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(path + "." + key, "is not finite");
    return d;
  }
  int integer(const json& o, const std::string& path, const char* key) const {
    const json& v = member(o, path, key);
    if (!v.is_number_integer()) fail(path + "." + key, "is not an integer");
    return v.get<int>();
  }
  std::string string(const json& o, const std::string& path, const char* key) const {
    const json& v = member(o, path, key);
    if (!v.is_string()) fail(path + "." + key, "is not a string");
    return v.get<std::string>();
  }
  template <class T, std::size_t N>
  std::array<T, N> nums(const json& o, const std::string& path, const char* key) const {
    const json& v = member(o, path, key);
    if (!v.is_array() || v.size() != N) fail(path + "." + key, "is not an array of " + std::to_string(N) + " numbers");
    std::array<T, N> out{};
    for (std::size_t i = 0; i < N; ++i) {
      if (!v[i].is_number()) fail(path + "." + key, "holds a non-number");
      const double d = v[i].get<double>();
      out[i] = static_cast<T>(d);
      if (static_cast<double>(out[i]) != d || !std::isfinite(d))
        fail(path + "." + key, "holds a value not exactly representable in the stored type");
    }
    return out;
  }
  std::array<std::string, 3> strings3(const json& o, const std::string& path, const char* key) const {
    const json& v = member(o, path, key);
    if (!v.is_array() || v.size() != 3) fail(path + "." + key, "is not an array of 3 strings");
    std::array<std::string, 3> out;
    for (std::size_t i = 0; i < 3; ++i) {
      if (!v[i].is_string()) fail(path + "." + key, "holds a non-string");
      out[i] = v[i].get<std::string>();
    }
    return out;
  }
};

}  // namespace

TableFile parse_table_file(const std::string& text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("pe-synth: table file " + origin + " is not valid JSON (" + std::string(e.what()) + ")");
  }
  Reader r{origin};
  TableFile f;
  if (r.integer(doc, "$", "schema_version") != kScheduleSchemaVersion)
    r.fail("$.schema_version", "is not " + std::to_string(kScheduleSchemaVersion));
  f.generator = r.string(doc, "$", "generator");
  f.config_hash = r.string(doc, "$", "config_hash");
  f.config_name = r.string(doc, "$", "config_name");
  r.member(doc, "$", "config");
  f.config = ordered_json::parse(text)["config"];  // parsed again to keep the key order as written
  f.digits = r.integer(doc, "$", "digits");
  f.eta = r.num(doc, "$", "eta");
  const json& tables = r.member(doc, "$", "bucket_tables");
  if (!tables.is_array()) r.fail("$.bucket_tables", "is not an array");
  for (std::size_t ti = 0; ti < tables.size(); ++ti) {
    const std::string tp = "$.bucket_tables[" + std::to_string(ti) + "]";
    TableRecord t;
    t.p = r.integer(tables[ti], tp, "p");
    t.degree = r.integer(tables[ti], tp, "degree");
    t.eta = r.num(tables[ti], tp, "eta");
    const json& entries = r.member(tables[ti], tp, "entries");
    if (!entries.is_array()) r.fail(tp + ".entries", "is not an array");
    for (std::size_t ei = 0; ei < entries.size(); ++ei) {
      const std::string ep = tp + ".entries[" + std::to_string(ei) + "]";
      const json& e = entries[ei];
      EntryRecord x;
      x.l_edge = r.num(e, ep, "l_edge");
      x.kappa_edge = r.string(e, ep, "kappa_edge");
      x.coefficients = r.strings3(e, ep, "coefficients");
      x.coeff_f64 = r.nums<double, 3>(e, ep, "coefficients_f64");
      x.eps_f64 = r.num(e, ep, "eps_f64");
      const auto i64 = r.nums<double, 2>(e, ep, "image_f64");
      x.image_lo_f64 = i64[0];
      x.image_hi_f64 = i64[1];
      x.coeff_f32 = r.nums<float, 3>(e, ep, "coefficients_f32");
      x.eps_f32 = r.num(e, ep, "eps_f32");
      const auto i32 = r.nums<double, 2>(e, ep, "image_f32");
      x.image_lo_f32 = i32[0];
      x.image_hi_f32 = i32[1];
      x.eps = r.string(e, ep, "eps");
      x.eps_plain = r.num(e, ep, "eps_plain");
      x.overshoot = r.num(e, ep, "overshoot");
      const json& g = r.member(e, ep, "guarded");
      if (!g.is_boolean()) r.fail(ep + ".guarded", "is not a boolean");
      x.guarded = g.get<bool>();
      t.entries.push_back(x);
    }
    f.tables.push_back(std::move(t));
  }
  const json& fixed = r.member(doc, "$", "fixed_schedules");
  if (!fixed.is_array()) r.fail("$.fixed_schedules", "is not an array");
  for (std::size_t fi = 0; fi < fixed.size(); ++fi) {
    const std::string fp = "$.fixed_schedules[" + std::to_string(fi) + "]";
    FixedRecord fr;
    fr.p = r.integer(fixed[fi], fp, "p");
    fr.degree = r.integer(fixed[fi], fp, "degree");
    fr.l0 = r.num(fixed[fi], fp, "l0");
    fr.kappa0 = r.num(fixed[fi], fp, "kappa0");
    const json& steps = r.member(fixed[fi], fp, "steps");
    if (!steps.is_array() || steps.empty()) r.fail(fp + ".steps", "is not a non-empty array");
    for (std::size_t si = 0; si < steps.size(); ++si) {
      const std::string sp = fp + ".steps[" + std::to_string(si) + "]";
      StepRecord s;
      s.l = r.num(steps[si], sp, "l");
      s.coefficients = r.strings3(steps[si], sp, "coefficients");
      s.coeff_f64 = r.nums<double, 3>(steps[si], sp, "coefficients_f64");
      s.coeff_f32 = r.nums<float, 3>(steps[si], sp, "coefficients_f32");
      s.eps_f64 = r.num(steps[si], sp, "eps_f64");
      const auto img = r.nums<double, 2>(steps[si], sp, "image_f64");
      s.image_lo_f64 = img[0];
      s.image_hi_f64 = img[1];
      fr.steps.push_back(s);
    }
    fr.final_eps = r.num(fixed[fi], fp, "final_eps");
    fr.gemms = r.integer(fixed[fi], fp, "gemms");
    f.fixed.push_back(std::move(fr));
  }
  return f;
}

TableFile load_table_file(const std::string& dir_or_json) {
  std::string path = dir_or_json;
  std::error_code ec;
  if (fs::is_directory(path, ec)) path = (fs::path(path) / "pe_schedules.json").string();
  return parse_table_file(read_file(path, "table file"), path);
}

// ---------------------------------------------------------------- writing
void prepare_output_dir(const std::string& dir) {
  if (dir.empty()) throw Error("pe-synth: --out = '' is not a directory path");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("pe-synth: --out = " + dir + " exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("pe-synth: --out = " + dir + " cannot be created (" + ec.message() + ")");
  if (access(dir.c_str(), W_OK) != 0) throw Error("pe-synth: --out = " + dir + " is not writable");
}

void write_tables(const TableFile& file, const std::string& dir) {
  const std::pair<std::string, std::string> outputs[] = {{"pe_schedules.json", emit_json(file)},
                                                        {"pe_schedules.hpp", emit_header(file)}};
  std::vector<std::pair<fs::path, fs::path>> renames;
  for (const auto& [name, content] : outputs) {
    const fs::path final_path = fs::path(dir) / name;
    const fs::path tmp = fs::path(dir) / ("." + name + ".tmp" + std::to_string(getpid()));
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << content;
      out.flush();
      if (!out) {
        std::error_code ec;
        fs::remove(tmp, ec);
        for (auto& [t, f] : renames) fs::remove(t, ec);
        throw Error("pe-synth: cannot write " + tmp.string());
      }
    }
    renames.emplace_back(tmp, final_path);
  }
  for (auto& [tmp, final_path] : renames) {
    std::error_code ec;
    fs::rename(tmp, final_path, ec);
    if (ec) throw Error("pe-synth: cannot rename " + tmp.string() + " to " + final_path.string() + ": " + ec.message());
  }
}

// ---------------------------------------------------------------- summary
std::string summary(const TableFile& f) {
  std::ostringstream o;
  o << "bucket tables: kappa' = image_hi / image_lo (f64) after one step from the bucket serving kappa, and the\n"
    << "bound eps_f64 near convergence; guarded = entries where the plain optimum broke G1..G3\n";
  o << "   p  deg  entries  guarded  kappa'(1e2)  kappa'(1e4)  kappa'(1e8) kappa'(1e12)   eps(1.01)\n";
  for (const TableRecord& t : f.tables) {
    int guarded = 0;
    for (const auto& e : t.entries) guarded += e.guarded;
    o << fmt("%4.0f", t.p) << fmt("%5.0f", t.degree) << fmt("%9.0f", static_cast<double>(t.entries.size()))
      << fmt("%9.0f", guarded);
    auto serving = [&](double kappa) -> const EntryRecord* {
      const EntryRecord* pick = nullptr;
      for (const auto& e : t.entries)
        if (e.l_edge <= 1 / kappa) pick = &e;
      return pick ? pick : (t.entries.empty() ? nullptr : &t.entries.front());
    };
    for (double kappa : {1e2, 1e4, 1e8, 1e12}) {
      const EntryRecord* e = serving(kappa);
      o << (e ? fmt("%13.4g", e->image_hi_f64 / e->image_lo_f64) : std::string("            -"));
    }
    const EntryRecord* near = serving(1.01);
    o << (near ? fmt("%12.3e", near->eps_f64) : std::string("           -")) << "\n";
  }
  if (!f.fixed.empty()) {
    o << "fixed greedy schedules (steps until eps_f64 <= target)\n";
    o << "   p  deg      kappa0  steps  gemms   final_eps\n";
    for (const FixedRecord& fr : f.fixed)
      o << fmt("%4.0f", fr.p) << fmt("%5.0f", fr.degree) << fmt("%12.3g", fr.kappa0)
        << fmt("%7.0f", static_cast<double>(fr.steps.size())) << fmt("%7.0f", fr.gemms) << fmt("%12.3e", fr.final_eps)
        << "\n";
  }
  return o.str();
}

}  // namespace pe::synth
