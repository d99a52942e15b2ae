#include "schedules.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "pe/detail/format.hpp"
#include "pe/types.hpp"

#if __has_include("pe_schedules.hpp")
#include "pe_schedules.hpp"
#define PE_HAVE_COMPILED_SCHEDULES 1
#else
#define PE_HAVE_COMPILED_SCHEDULES 0
#endif

namespace pe::detail {

const OwnedBucketTable* ScheduleSet::find(int p, int degree) const {
  for (const auto& t : tables)
    if (t.p == p && t.degree == degree) return &t;
  return nullptr;
}

const ScheduleSet& compiled_schedules() {
#if PE_HAVE_COMPILED_SCHEDULES
  static const ScheduleSet set = [] {
    static_assert(pe::generated::kSchemaVersion == kScheduleSchemaVersion,
                  "schedules/pe_schedules.hpp was generated for another schema version");
    ScheduleSet s;
    s.schema_version = pe::generated::kSchemaVersion;
    s.origin = "compiled";
    for (std::size_t i = 0; i < pe::generated::kBucketTableCount; ++i) {
      const BucketTable& t = pe::generated::kBucketTables[i];
      s.tables.push_back({t.p, t.degree, t.eta, std::vector<BucketEntry>(t.entries, t.entries + t.count)});
    }
    for (std::size_t i = 0; i < pe::generated::kFixedScheduleCount; ++i) {
      const FixedSchedule& f = pe::generated::kFixedSchedules[i];
      s.fixed.push_back({f.p, f.degree, f.l0, std::vector<FixedStep>(f.steps, f.steps + f.count)});
    }
    return s;
  }();
  return set;
#else
  throw Error("pe was built without compiled-in schedule tables (schedules/pe_schedules.hpp is missing); "
              "load a JSON table with schedule_source = json_file");
#endif
}

namespace {

using nlohmann::json;

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
  double number(const json& obj, const std::string& path, const char* key) const {
    const json& v = member(obj, path, key);
    if (!v.is_number()) fail(path + "." + key, "is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(path + "." + key, "is not finite");
    return d;
  }
  int integer(const json& obj, const std::string& path, const char* key) const {
    const json& v = member(obj, path, key);
    if (!v.is_number_integer()) fail(path + "." + key, "is not an integer");
    return v.get<int>();
  }
  bool boolean(const json& obj, const std::string& path, const char* key) const {
    const json& v = member(obj, path, key);
    if (!v.is_boolean()) fail(path + "." + key, "is not a boolean");
    return v.get<bool>();
  }
  const json& array(const json& obj, const std::string& path, const char* key, std::size_t length) const {
    const json& v = member(obj, path, key);
    if (!v.is_array()) fail(path + "." + key, "is not an array");
    if (length != 0 && v.size() != length)
      fail(path + "." + key, "has " + std::to_string(v.size()) + " elements, expected " + std::to_string(length));
    return v;
  }
  void numbers(const json& obj, const std::string& path, const char* key, double* out, std::size_t length) const {
    const json& v = array(obj, path, key, length);
    for (std::size_t i = 0; i < length; ++i) {
      const std::string field = path + "." + key + "[" + std::to_string(i) + "]";
      if (!v[i].is_number()) fail(field, "is not a number");
      out[i] = v[i].get<double>();
      if (!std::isfinite(out[i])) fail(field, "is not finite");
    }
  }
  void floats(const json& obj, const std::string& path, const char* key, float* out, std::size_t length) const {
    double tmp[3];
    numbers(obj, path, key, tmp, length);
    for (std::size_t i = 0; i < length; ++i) {
      out[i] = static_cast<float>(tmp[i]);
      if (static_cast<double>(out[i]) != tmp[i])
        fail(path + "." + key + "[" + std::to_string(i) + "]", "is not exactly representable as a float");
    }
  }
  void bound(double v, const std::string& field) const {
    if (!(v >= 0 && v < 1)) fail(field, "= " + format_number(v) + " is not in [0, 1)");
  }
  void image(double lo, double hi, const std::string& field) const {
    if (!(lo > 0 && lo <= 1 && 1 <= hi))
      fail(field, "= [" + format_number(lo) + ", " + format_number(hi) + "] is not 0 < lo <= 1 <= hi");
  }

 private:
  std::string origin_;
};

}  // namespace

ScheduleSet parse_schedules_json(const std::string& text, const std::string& origin) {
  Reader r(origin);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("schedule file " + origin + ": not valid JSON (" + e.what() + ")");
  }
  ScheduleSet set;
  set.origin = origin;
  set.schema_version = r.integer(doc, "$", "schema_version");
  if (set.schema_version != kScheduleSchemaVersion)
    r.fail("$.schema_version", "is " + std::to_string(set.schema_version) + ", this runtime reads version " +
                                   std::to_string(kScheduleSchemaVersion));
  const json& tables = r.array(doc, "$", "bucket_tables", 0);
  for (std::size_t ti = 0; ti < tables.size(); ++ti) {
    const std::string tp = "$.bucket_tables[" + std::to_string(ti) + "]";
    OwnedBucketTable t;
    t.p = r.integer(tables[ti], tp, "p");
    t.degree = r.integer(tables[ti], tp, "degree");
    t.eta = r.number(tables[ti], tp, "eta");
    if (t.p < 1) r.fail(tp + ".p", "must be >= 1");
    if (t.degree != 1 && t.degree != 2) r.fail(tp + ".degree", "must be 1 or 2");
    if (!(t.eta >= 0)) r.fail(tp + ".eta", "must be >= 0");
    const json& entries = r.array(tables[ti], tp, "entries", 0);
    if (entries.empty()) r.fail(tp + ".entries", "is empty");
    for (std::size_t ei = 0; ei < entries.size(); ++ei) {
      const std::string ep = tp + ".entries[" + std::to_string(ei) + "]";
      const json& e = entries[ei];
      BucketEntry b{};
      b.l_edge = r.number(e, ep, "l_edge");
      if (!(b.l_edge > 0 && b.l_edge < 1)) r.fail(ep + ".l_edge", "is not in (0, 1)");
      r.numbers(e, ep, "coefficients_f64", b.coeff_f64, 3);
      b.eps_f64 = r.number(e, ep, "eps_f64");
      r.bound(b.eps_f64, ep + ".eps_f64");
      double img[2];
      r.numbers(e, ep, "image_f64", img, 2);
      r.image(img[0], img[1], ep + ".image_f64");
      b.image_lo_f64 = img[0];
      b.image_hi_f64 = img[1];
      r.floats(e, ep, "coefficients_f32", b.coeff_f32, 3);
      b.eps_f32 = r.number(e, ep, "eps_f32");
      r.bound(b.eps_f32, ep + ".eps_f32");
      r.numbers(e, ep, "image_f32", img, 2);
      r.image(img[0], img[1], ep + ".image_f32");
      b.image_lo_f32 = img[0];
      b.image_hi_f32 = img[1];
      b.eps_plain = r.number(e, ep, "eps_plain");
      r.bound(b.eps_plain, ep + ".eps_plain");
      b.overshoot = r.number(e, ep, "overshoot");
      if (!(b.overshoot > 0)) r.fail(ep + ".overshoot", "must be > 0");
      b.guarded = r.boolean(e, ep, "guarded");
      if (t.degree == 1 && (b.coeff_f64[2] != 0 || b.coeff_f32[2] != 0))
        r.fail(ep + ".coefficients_f64[2]", "must be 0 for a degree-1 table");
      if (!t.entries.empty() && !(t.entries.back().l_edge < b.l_edge))
        r.fail(ep + ".l_edge", "is not above the previous entry's (entries must be sorted ascending)");
      t.entries.push_back(b);
    }
    set.tables.push_back(std::move(t));
  }
  const json& fixed = r.array(doc, "$", "fixed_schedules", 0);
  for (std::size_t fi = 0; fi < fixed.size(); ++fi) {
    const std::string fp = "$.fixed_schedules[" + std::to_string(fi) + "]";
    OwnedFixedSchedule f;
    f.p = r.integer(fixed[fi], fp, "p");
    f.degree = r.integer(fixed[fi], fp, "degree");
    f.l0 = r.number(fixed[fi], fp, "l0");
    if (f.p < 1) r.fail(fp + ".p", "must be >= 1");
    if (f.degree != 1 && f.degree != 2) r.fail(fp + ".degree", "must be 1 or 2");
    if (!(f.l0 > 0 && f.l0 <= 1)) r.fail(fp + ".l0", "is not in (0, 1]");
    const json& steps = r.array(fixed[fi], fp, "steps", 0);
    for (std::size_t si = 0; si < steps.size(); ++si) {
      const std::string sp = fp + ".steps[" + std::to_string(si) + "]";
      FixedStep s{};
      s.l = r.number(steps[si], sp, "l");
      if (!(s.l > 0 && s.l <= 1)) r.fail(sp + ".l", "is not in (0, 1]");
      r.numbers(steps[si], sp, "coefficients_f64", s.coeff_f64, 3);
      r.floats(steps[si], sp, "coefficients_f32", s.coeff_f32, 3);
      s.eps_f64 = r.number(steps[si], sp, "eps_f64");
      r.bound(s.eps_f64, sp + ".eps_f64");
      double img[2];
      r.numbers(steps[si], sp, "image_f64", img, 2);
      r.image(img[0], img[1], sp + ".image_f64");
      s.image_lo_f64 = img[0];
      s.image_hi_f64 = img[1];
      f.steps.push_back(s);
    }
    set.fixed.push_back(std::move(f));
  }
  return set;
}

ScheduleSet load_schedules_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("schedule file " + path + ": cannot be opened");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_schedules_json(text.str(), path);
}

}  // namespace pe::detail
