#include "config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>

#include <boost/multiprecision/cpp_bin_float.hpp>

#include "files.hpp"
#include "pe/schedule_types.hpp"
#include "plan/schedule_set.hpp"

namespace pe::synth {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

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

// Integers are range-checked in 64 bits before narrowing.
long long checked_integer(const json& v, const std::string& origin, const std::string& field, int lo, int hi) {
  if (!v.is_number_integer()) config_fail(origin, field, "must hold integers, found " + describe_value(v));
  const bool in_range = pe::detail::json_integer_in(v, lo, hi);
  if (!in_range)
    config_fail(origin, field, "value " + describe_value(v) + " is not in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v.get<std::int64_t>();
}

std::vector<int> int_list(const json& j, const std::string& origin, const std::string& field, int lo, int hi) {
  if (!j.is_array() || j.empty()) config_fail(origin, field, "must be a non-empty array of integers");
  std::vector<int> out;
  for (const auto& v : j) {
    const int x = static_cast<int>(checked_integer(v, origin, field, lo, hi));
    if (std::find(out.begin(), out.end(), x) != out.end()) config_fail(origin, field, "lists " + std::to_string(x) + " twice");
    out.push_back(x);
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
  return static_cast<int>(checked_integer(j, origin, field, lo, hi));
}
void known_keys(const json& j, const std::string& origin, const std::string& where,
                std::initializer_list<const char*> keys) {
  if (!j.is_object()) config_fail(origin, where.empty() ? "$" : where, "must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (where.empty() && it.key() == "fixed_schedules")
      config_fail(origin, it.key(), "is no longer a setting (schema 2 dropped the fixed greedy schedules: the step "
                                    "planner chooses steps from the bucket tables); delete it");
    if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
      config_fail(origin, (where.empty() ? "" : where + ".") + it.key(), "is not a known setting");
  }
}

}  // namespace

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
  return j;
}

std::string Config::hash() const { return pe::detail::fnv1a64(to_json().dump()); }

Config config_from_json(const json& j, const std::string& origin) {
  Config c;
  known_keys(j, origin, "", {"p", "degrees", "buckets", "eta", "overshoot_cap", "digits", "comment"});
  if (j.contains("p")) c.p = int_list(j["p"], origin, "p", 1, 64);
  if (j.contains("degrees")) c.degrees = int_list(j["degrees"], origin, "degrees", 1, kMaxDegree);
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
    if (!(c.eta >= 0 && c.eta <= 0.5)) config_fail(origin, "eta", "= " + describe_value(j["eta"]) + " is not in [0, 0.5]");
  }
  c.overshoot_cap = 1 + c.eta;
  if (cap_given) {
    c.overshoot_cap = number(j["overshoot_cap"], origin, "overshoot_cap");
    if (!(c.overshoot_cap >= 1)) config_fail(origin, "overshoot_cap", "= " + describe_value(j["overshoot_cap"]) + " is not >= 1");
  }
  if (j.contains("digits")) c.digits = integer(j["digits"], origin, "digits", kMinDigits, kMaxDigits);
  return c;
}

Config load_config(const std::string& path) {
  const std::string text = read_text_file(path, "config");
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

}  // namespace pe::synth
