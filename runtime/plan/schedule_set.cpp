#include "schedule_set.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <type_traits>

#include "pe/detail/format.hpp"
#include "pe/types.hpp"

namespace pe::detail {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

const OwnedBucketTable* ScheduleSet::find(int p, int degree) const {
  for (const auto& t : tables)
    if (t.p == p && t.degree == degree) return &t;
  return nullptr;
}

std::vector<int> ScheduleSet::degrees(int p) const {
  std::vector<int> out;
  for (const auto& t : tables)
    if (t.p == p) out.push_back(t.degree);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

class Fnv {
 public:
  void add(std::string_view text) {
    for (unsigned char ch : text) {
      hash_ ^= ch;
      hash_ *= 1099511628211ull;
    }
  }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 1469598103934665603ull;
};

// "fnv1a64:<16 hex>" back to its value; false when malformed.
bool parse_hash(const std::string& text, std::uint64_t& out) {
  static constexpr std::string_view prefix = "fnv1a64:";
  if (text.size() != prefix.size() + 16 || text.compare(0, prefix.size(), prefix) != 0) return false;
  out = 0;
  for (std::size_t i = prefix.size(); i < text.size(); ++i) {
    const char c = text[i];
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return false;
    out = out << 4 | static_cast<std::uint64_t>(digit);
  }
  return true;
}

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("schedule file " + origin_ + ": field '" + field + "' " + what);
  }
  const json& member(const json& obj, const std::string& path, const char* key) const {
    if (!obj.is_object()) fail(path, "is not an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail(path + "." + key, "is missing");
    return *it;
  }
  // Unknown keys are an error: a misspelt or foreign field must not pass silently.
  void only_keys(const json& obj, const std::string& path, std::initializer_list<const char*> keys) const {
    if (!obj.is_object()) fail(path, "is not an object");
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }))
        fail(path + "." + it.key(), "is not a field of schema version " + std::to_string(kScheduleSchemaVersion));
  }
  double number(const json& v, const std::string& field) const {
    if (!v.is_number()) fail(field, "is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(field, "is not finite");
    return d;
  }
  // Integers are range-checked in 64 bits before narrowing (4294967297 must not read as 1).
  int integer(const json& obj, const std::string& path, const char* key, int lo, int hi) const {
    const json& v = member(obj, path, key);
    const std::string field = path + "." + key;
    if (!v.is_number_integer()) fail(field, "is not an integer");
    const bool in_range = json_integer_in(v, lo, hi);
    if (!in_range) fail(field, "= " + v.dump() + " is not in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<int>(v.get<std::int64_t>());
  }
  std::string string(const json& obj, const std::string& path, const char* key) const {
    const json& v = member(obj, path, key);
    if (!v.is_string()) fail(path + "." + key, "is not a string");
    return v.get<std::string>();
  }
  std::string decimal(const json& v, const std::string& field) const {
    if (!v.is_string()) fail(field, "is not a string");
    std::string s = v.get<std::string>();
    if (!is_decimal_number(s)) fail(field, "= '" + s + "' is not a decimal number");
    return s;
  }
  const json& array(const json& obj, const std::string& path, const char* key, std::size_t length) const {
    const json& v = member(obj, path, key);
    if (!v.is_array()) fail(path + "." + key, "is not an array");
    if (length != 0 && v.size() != length)
      fail(path + "." + key, "has " + std::to_string(v.size()) + " elements, expected " + std::to_string(length));
    return v;
  }
  std::uint64_t hash(const json& obj, const std::string& path, const char* key) const {
    std::uint64_t h = 0;
    if (!parse_hash(string(obj, path, key), h)) fail(path + "." + key, "is not of the form fnv1a64:<16 hex digits>");
    return h;
  }

  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
};

BucketEntry read_entry(const Reader& r, const json& obj, const std::string& path, int degree, EntryText& text) {
  r.only_keys(obj, path, {"l_edge", "coeff_f64", "eps_f64", "image_lo_f64", "image_hi_f64", "coeff_f32", "eps_f32",
                          "image_lo_f32", "image_hi_f32", "eps_plain", "overshoot", "guarded", "kappa_edge",
                          "coefficients", "eps"});
  BucketEntry e{};
  const auto n = static_cast<std::size_t>(degree + 1);
  for_each_entry_field(e, [&](const char* name, auto& value, FieldRule rule) {
    using T = std::remove_cvref_t<decltype(value)>;
    const std::string field = path + "." + name;
    if constexpr (std::is_same_v<T, bool>) {
      const json& v = r.member(obj, path, name);
      if (!v.is_boolean()) r.fail(field, "is not a boolean");
      value = v.get<bool>();
    } else if constexpr (std::is_array_v<T>) {
      using Element = std::remove_extent_t<T>;
      const json& v = r.array(obj, path, name, n);  // degree + 1 values; the rest stay 0
      for (std::size_t i = 0; i < n; ++i) {
        const std::string element = field + "[" + std::to_string(i) + "]";
        const double d = r.number(v[i], element);
        value[i] = static_cast<Element>(d);
        if (static_cast<double>(value[i]) != d) r.fail(element, "is not exactly representable as a float");
      }
    } else {
      const double d = r.number(r.member(obj, path, name), field);
      if (!field_value_ok(rule, d)) r.fail(field, "= " + format_number(d) + " is not " + expectation(rule));
      value = d;
    }
  });
  // The cross-field rules of an entry come with the table's, after its content hash (check_table), so an
  // edited number is reported as an edit.
  text.kappa_edge = r.decimal(r.member(obj, path, "kappa_edge"), path + ".kappa_edge");
  const json& coefficients = r.array(obj, path, "coefficients", n);
  for (std::size_t i = 0; i < n; ++i)
    text.coefficients.push_back(r.decimal(coefficients[i], path + ".coefficients[" + std::to_string(i) + "]"));
  text.eps = r.decimal(r.member(obj, path, "eps"), path + ".eps");
  return e;
}

// The table-level rules (sorted, monotone, content hash): one message naming the table and entry.
template <class Fail>
void check_table(const OwnedBucketTable& t, const std::string& path, const Fail& fail) {
  std::size_t index = 0;
  const char* field = nullptr;
  if (const char* broken = table_violation(t.view(), &index, &field)) {
    const std::string where = index < t.entries.size() ? path + ".entries[" + std::to_string(index) + "]" : path;
    fail(*field ? where + "." + field : where, broken);
  }
}

}  // namespace

std::string hash_string(std::uint64_t hash) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016" PRIx64, hash);
  return buf;
}

std::string fnv1a64(std::string_view text) {
  Fnv f;
  f.add(text);
  return hash_string(f.value());
}

std::uint64_t table_text_hash(const OwnedBucketTable& table) {
  Fnv f;
  // Each string ends with a NUL so that moving characters between neighbours changes the hash.
  auto add = [&](const std::string& s) {
    f.add(s);
    f.add(std::string_view("\0", 1));
  };
  for (const EntryText& t : table.text) {
    add(t.kappa_edge);
    for (const std::string& c : t.coefficients) add(c);
    add(t.eps);
  }
  return f.value();
}

ScheduleSet parse_schedules_json(const std::string& text, const std::string& origin) {
  Reader r(origin);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("schedule file " + origin + ": not valid JSON (" + e.what() + ")");
  }
  r.only_keys(doc, "$", {"banner", "schema_version", "generator", "config_hash", "config_name", "config", "digits",
                         "bucket_tables"});
  ScheduleSet set;
  set.origin = origin;
  set.schema_version = r.integer(doc, "$", "schema_version", 0, std::numeric_limits<int>::max());
  if (set.schema_version != kScheduleSchemaVersion)
    r.fail("$.schema_version", "is " + std::to_string(set.schema_version) + ", this reader reads version " +
                                   std::to_string(kScheduleSchemaVersion) + " (regenerate with pe-synth generate)");
  set.generator = r.string(doc, "$", "generator");
  set.config_hash = r.string(doc, "$", "config_hash");
  set.config_name = r.string(doc, "$", "config_name");
  set.config = r.member(doc, "$", "config");
  if (!set.config.is_object()) r.fail("$.config", "is not an object");
  // The config echoed as written hashes to config_hash: a hand-edited setting is caught here.
  const std::string computed = fnv1a64(set.config.dump());
  std::uint64_t unused = 0;
  if (!parse_hash(set.config_hash, unused))
    r.fail("$.config_hash", "= '" + set.config_hash + "' is not of the form fnv1a64:<16 hex digits>");
  if (computed != set.config_hash)
    r.fail("$.config_hash", "= " + set.config_hash + " does not match the echoed config (" + computed +
                                "): the config was edited after pe-synth wrote the file");
  set.digits = r.integer(doc, "$", "digits", 30, 100);

  const json& tables = r.array(doc, "$", "bucket_tables", 0);
  if (tables.empty()) r.fail("$.bucket_tables", "is empty");
  for (std::size_t ti = 0; ti < tables.size(); ++ti) {
    const std::string tp = "$.bucket_tables[" + std::to_string(ti) + "]";
    r.only_keys(tables[ti], tp, {"p", "degree", "eta", "content_hash", "text_hash", "entries"});
    OwnedBucketTable t;
    t.p = r.integer(tables[ti], tp, "p", 1, 64);
    t.degree = r.integer(tables[ti], tp, "degree", 1, kMaxDegree);
    t.eta = r.number(r.member(tables[ti], tp, "eta"), tp + ".eta");
    if (set.find(t.p, t.degree))
      r.fail(tp, "repeats the table for p = " + std::to_string(t.p) + ", degree " + std::to_string(t.degree));
    t.content_hash = r.hash(tables[ti], tp, "content_hash");
    const std::uint64_t text_hash = r.hash(tables[ti], tp, "text_hash");
    const json& entries = r.array(tables[ti], tp, "entries", 0);
    if (entries.empty()) r.fail(tp + ".entries", "is empty");
    for (std::size_t ei = 0; ei < entries.size(); ++ei) {
      EntryText et;
      t.entries.push_back(read_entry(r, entries[ei], tp + ".entries[" + std::to_string(ei) + "]", t.degree, et));
      t.text.push_back(std::move(et));
    }
    check_table(t, tp, [&](const std::string& field, const std::string& what) { r.fail(field, what); });
    if (table_text_hash(t) != text_hash)
      r.fail(tp + ".text_hash", "does not match the table's decimal strings (coefficients, eps, kappa_edge were "
                                "edited after pe-synth wrote the file)");
    set.tables.push_back(std::move(t));
  }
  return set;
}

ScheduleSet load_schedules_json(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw Error("schedule file " + path + ": is a directory; expected a pe_schedules.json file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("schedule file " + path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("schedule file " + path + ": cannot be read");
  const fs::path parent = fs::path(path).parent_path();
  check_no_interrupted_generate(parent.empty() ? "." : parent.string(), "schedule file " + path);
  return parse_schedules_json(text.str(), path);
}

ScheduleSet schedule_set_from(const CompiledScheduleSet& compiled, const std::string& origin) {
  auto fail = [&](const std::string& field, const std::string& what) {
    throw Error("schedule set " + origin + " (" + (compiled.config_hash ? compiled.config_hash : "?") + "): " +
                field + " " + what);
  };
  if (compiled.schema_version != kScheduleSchemaVersion)
    fail("schema_version", "is " + std::to_string(compiled.schema_version) + ", this runtime reads version " +
                               std::to_string(kScheduleSchemaVersion) + " (regenerate with pe-synth generate)");
  if (compiled.tables == nullptr || compiled.count == 0) fail("tables", "are empty");
  ScheduleSet set;
  set.schema_version = compiled.schema_version;
  set.origin = origin;
  set.generator = compiled.generator ? compiled.generator : "";
  set.config_hash = compiled.config_hash ? compiled.config_hash : "";
  for (std::size_t i = 0; i < compiled.count; ++i) {
    const BucketTable& bt = compiled.tables[i];
    const std::string tp = "table " + std::to_string(i) + " (p = " + std::to_string(bt.p) + ", degree " +
                           std::to_string(bt.degree) + ")";
    if (bt.entries == nullptr && bt.count > 0) fail(tp, "has a null entry pointer");
    OwnedBucketTable t{bt.p, bt.degree, bt.eta, bt.content_hash,
                       std::vector<BucketEntry>(bt.entries, bt.entries + bt.count), {}};
    check_table(t, tp, fail);
    if (set.find(t.p, t.degree)) fail(tp, "repeats an earlier table's (p, degree)");
    set.tables.push_back(std::move(t));
  }
  return set;
}

void check_no_interrupted_generate(const std::string& dir, const std::string& what) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / kStagingDirName / kCommitMarkerName, ec))
    throw Error(what + ": " + dir + " holds an interrupted pe-synth generate (" + kStagingDirName + "/" +
                kCommitMarkerName + "): the header/JSON pair may be half replaced; run pe-synth generate --out " + dir +
                " again to finish or redo it");
}

}  // namespace pe::detail
