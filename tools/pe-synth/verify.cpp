#include "verify.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <boost/multiprecision/cpp_bin_float.hpp>
#include <nlohmann/json.hpp>

#include "config.hpp"
#include "files.hpp"
#include "generate.hpp"
#include "pe/detail/format.hpp"
#include "pe/schedule_types.hpp"
#include "tables.hpp"
#include "thread_pool.hpp"

namespace pe::synth {

namespace fs = std::filesystem;
using pe::detail::OwnedBucketTable;

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string entry_name(int p, int degree, double l_edge) {
  return "p=" + std::to_string(p) + " degree=" + std::to_string(degree) + " l_edge=" + fmt("%.17g", l_edge);
}

// The certificate of stored coefficients must sit inside the stored bounds.
void check_cert(const std::string& name, const char* what, const Recheck& fresh, double eps, double lo, double hi,
                std::vector<std::string>& out) {
  if (fresh.cert.eps.empty()) {
    out.push_back(name + ": " + what + " coefficients no longer certify (q not provably positive on [l, 1])");
    return;
  }
  if (!(fresh.cert.eps_d <= eps))
    out.push_back(name + ": stored eps_" + what + " " + fmt("%.17g", eps) + " is below the certified bound " +
                  fmt("%.17g", fresh.cert.eps_d));
  if (!(lo <= fresh.cert.image_lo_d && fresh.cert.image_hi_d <= hi))
    out.push_back(name + ": stored image_" + what + " [" + fmt("%.17g", lo) + ", " + fmt("%.17g", hi) +
                  "] does not contain the certified image [" + fmt("%.17g", fresh.cert.image_lo_d) + ", " +
                  fmt("%.17g", fresh.cert.image_hi_d) + "]");
}

bool worse_than_fresh(double stored, double fresh, double rel_tol) { return stored > fresh * (1 + rel_tol) + 1e-300; }

template <class T>
std::vector<Value> values(const T* c, int degree) {
  std::vector<Value> out;
  for (int i = 0; i <= degree; ++i) out.push_back(Value::of(static_cast<double>(c[i])));
  return out;
}

// What a verify work item checks.
enum class ItemKind {
  stored_entry,  // re-certify the stored coefficients and compare with a fresh solve
  left_out_edge  // a config edge without an entry: it must still have no guarded solution, or be dominated
};

}  // namespace

std::vector<std::string> verify_tables(const std::string& dir, const VerifyOptions& options) {
  if (!(std::isfinite(options.rel_tol) && options.rel_tol >= 0))
    throw Error("pe-synth: --rel-tol = " + pe::detail::format_number(options.rel_tol) +
                " is not a finite number >= 0 (the relative excess a stored bound may have over a fresh solve)");
  std::vector<std::string> failures;
  const fs::path json_path = fs::path(dir) / "pe_schedules.json", header_path = fs::path(dir) / "pe_schedules.hpp";
  const TableFile file = load_table_file(json_path.string());
  if (read_text_file(header_path.string(), "table header") != emit_header(file))
    failures.push_back(header_path.string() + ": does not match " + json_path.string() +
                       " (a hand edit, a stale file or a pair from different generates; regenerate both with pe-synth "
                       "generate)");
  Config config = config_from_json(nlohmann::json::parse(file.config.dump()), json_path.string() + " $.config");
  config.name = file.config_name;
  if (config.hash() != file.config_hash)
    failures.push_back(json_path.string() + ": config_hash " + file.config_hash + " does not match the echoed config (" +
                       config.hash() + ")");
  const GuardSpec guards = config.guards();
  const std::vector<double> edges = bucket_edges(config);

  struct Item {
    ItemKind kind;
    std::size_t table, index;  // entry index (stored_entry) or the stored entry below (left_out_edge; npos: none)
    double l;
  };
  std::vector<Item> items;
  for (const OwnedBucketTable& t : file.tables)
    if (std::find(config.p.begin(), config.p.end(), t.p) == config.p.end() ||
        std::find(config.degrees.begin(), config.degrees.end(), t.degree) == config.degrees.end())
      failures.push_back("p=" + std::to_string(t.p) + " degree=" + std::to_string(t.degree) +
                         ": table is not in the config");
  for (int p : config.p)
    for (int degree : config.degrees) {
      const OwnedBucketTable* t = file.find(p, degree);
      if (!t) {
        failures.push_back("p=" + std::to_string(p) + " degree=" + std::to_string(degree) + ": table missing");
        continue;
      }
      const auto ti = static_cast<std::size_t>(t - file.tables.data());
      if (t->eta != config.eta)
        failures.push_back("p=" + std::to_string(p) + " degree=" + std::to_string(degree) + ": table eta " +
                           fmt("%.17g", t->eta) + " differs from the config's");
      std::set<double> stored;
      for (std::size_t ei = 0; ei < t->entries.size(); ++ei) {
        const double l = t->entries[ei].l_edge;
        if (!std::binary_search(edges.begin(), edges.end(), l))
          failures.push_back(entry_name(p, degree, l) + ": not a bucket edge of the config");
        stored.insert(l);
        items.push_back({ItemKind::stored_entry, ti, ei, l});
      }
      for (double l : edges) {
        if (stored.count(l)) continue;
        std::size_t below = std::string::npos;
        for (std::size_t ei = 0; ei < t->entries.size() && t->entries[ei].l_edge < l; ++ei) below = ei;
        items.push_back({ItemKind::left_out_edge, ti, below, l});
      }
    }

  std::vector<std::vector<std::string>> results(items.size());
  parallel_for(items.size(), options.threads, options.progress, "pe-synth verify", [&](std::size_t i) {
    const Item& item = items[i];
    std::vector<std::string>& out = results[i];
    const OwnedBucketTable& t = file.tables[item.table];
    const std::string name = entry_name(t.p, t.degree, item.l);
    StepRequest req;
    req.p = t.p;
    req.degree = t.degree;
    req.l = Value::of(item.l);
    req.digits = config.digits;
    req.kind = StepKind::guarded;
    req.guards = guards;
    if (item.kind == ItemKind::left_out_edge) {
      Step s;
      try {
        s = solve_step(req);
      } catch (const NoTableEntry&) {
        return;  // still no guarded solution: rightly left out
      }
      BucketEntry fresh;
      pe::detail::EntryText text;
      entry_from_step(s, item.l, fresh, text);
      const bool dominated = item.index != std::string::npos &&
                             !(image_not_worse(t.entries[item.index], fresh, false) &&
                               image_not_worse(t.entries[item.index], fresh, true));
      if (!dominated)
        out.push_back(name + ": left out of the table although the solver now finds guarded coefficients (eps_f64 " +
                      fmt("%.6e", s.cert_f64.eps_d) + ") that the entry below does not dominate");
      return;
    }
    const BucketEntry& e = t.entries[item.index];
    const Value l = Value::of(e.l_edge);
    const Recheck r64 = recertify(t.p, l, values(e.coeff_f64, t.degree), config.digits, guards);
    check_cert(name, "f64", r64, e.eps_f64, e.image_lo_f64, e.image_hi_f64, out);
    const Recheck r32 = recertify(t.p, l, values(e.coeff_f32, t.degree), config.digits, guards);
    check_cert(name, "f32", r32, e.eps_f32, e.image_lo_f32, e.image_hi_f32, out);
    if (!r64.guards.ok()) out.push_back(name + ": f64 coefficients break a guard: " + r64.guards.failure);
    if (!r32.guards.ok()) out.push_back(name + ": f32 coefficients break a guard: " + r32.guards.failure);
    if (!(std::max(r64.guards.overshoot, r32.guards.overshoot) <= e.overshoot))
      out.push_back(name + ": stored overshoot " + fmt("%.17g", e.overshoot) + " is below the certified " +
                    fmt("%.17g", std::max(r64.guards.overshoot, r32.guards.overshoot)));
    std::vector<Value> mp;
    for (const std::string& c : t.text[item.index].coefficients) mp.push_back(Value::of(c));
    const Recheck rmp = recertify(t.p, l, mp, config.digits, guards);
    const std::string& eps_text = t.text[item.index].eps;
    if (rmp.cert.eps.empty() || std::stold(eps_text) < std::stold(rmp.cert.eps) * (1 - 1e-15L))
      out.push_back(name + ": stored eps " + eps_text + " is not an upper bound of the multiprecision coefficients' (" +
                    (rmp.cert.eps.empty() ? std::string("uncertifiable") : rmp.cert.eps) + ")");
    const Step fresh = solve_step(req);
    if (worse_than_fresh(e.eps_f64, fresh.cert_f64.eps_d, options.rel_tol))
      out.push_back(name + ": eps_f64 " + fmt("%.17g", e.eps_f64) + " is worse than a fresh solve's " +
                    fmt("%.17g", fresh.cert_f64.eps_d));
    if (worse_than_fresh(e.eps_f32, fresh.cert_f32.eps_d, options.rel_tol))
      out.push_back(name + ": eps_f32 " + fmt("%.17g", e.eps_f32) + " is worse than a fresh solve's " +
                    fmt("%.17g", fresh.cert_f32.eps_d));
    // The flag says which optimum the coefficients are; the solver decides it, not the file.
    if (e.guarded != fresh.guarded)
      out.push_back(name + ": guarded is " + (e.guarded ? "true" : "false") + " but a fresh solve finds the " +
                    (fresh.guarded ? "plain optimum breaks a guard (guarded true)" : "plain optimum keeps the guards (guarded false)"));
    if (e.guarded && worse_than_fresh(fresh.eps_plain, e.eps_plain, options.rel_tol))
      out.push_back(name + ": eps_plain " + fmt("%.17g", e.eps_plain) + " understates the plain optimum's bound " +
                    fmt("%.17g", fresh.eps_plain));
  });
  for (auto& r : results) failures.insert(failures.end(), r.begin(), r.end());
  return failures;
}

// ---------------------------------------------------------------- bounds, baseline, diff
BoundsFile bounds_of(const TableFile& file, const std::string& origin) {
  BoundsFile b;
  b.origin = origin;
  b.generator = file.generator;
  b.config_hash = file.config_hash;
  for (const OwnedBucketTable& t : file.tables)
    for (std::size_t i = 0; i < t.entries.size(); ++i) {
      const BucketEntry& e = t.entries[i];
      b.entries.push_back({t.p, t.degree, e.l_edge, e.eps_f64, e.image_lo_f64, e.image_hi_f64, e.eps_f32,
                           e.image_lo_f32, e.image_hi_f32, e.overshoot, i < t.text.size() ? t.text[i].eps : ""});
    }
  return b;
}

namespace {

constexpr const char* kBaselineKind = "pe-synth baseline";

nlohmann::ordered_json entry_json(const EntryBounds& e) {
  nlohmann::ordered_json j;
  j["p"] = e.p;
  j["degree"] = e.degree;
  j["l_edge"] = e.l_edge;
  j["eps_f64"] = e.eps_f64;
  j["image_lo_f64"] = e.image_lo_f64;
  j["image_hi_f64"] = e.image_hi_f64;
  j["eps_f32"] = e.eps_f32;
  j["image_lo_f32"] = e.image_lo_f32;
  j["image_hi_f32"] = e.image_hi_f32;
  j["overshoot"] = e.overshoot;
  j["eps"] = e.eps;
  return j;
}

}  // namespace

std::string emit_baseline(const BoundsFile& b) {
  nlohmann::ordered_json head;
  head["comment"] = "The frozen certified bounds of a table set (pe-synth baseline). Never regenerated by the build: "
                    "CI regenerates the tables and fails when any bound is worse than here; record an improvement "
                    "on purpose with pe-synth baseline.";
  head["kind"] = kBaselineKind;
  head["schema_version"] = kScheduleSchemaVersion;
  head["generator"] = b.generator;
  head["config_hash"] = b.config_hash;
  std::string text = head.dump();
  text.pop_back();  // the closing brace: the entries follow, one per line
  text += ",\n\"entries\": [\n";
  for (std::size_t i = 0; i < b.entries.size(); ++i)
    text += entry_json(b.entries[i]).dump() + (i + 1 < b.entries.size() ? ",\n" : "\n");
  return text + "]}\n";
}

namespace {
[[noreturn]] void baseline_fail(const std::string& origin, const std::string& what) {
  throw Error("pe-synth: baseline " + origin + ": " + what);
}
}  // namespace

BoundsFile parse_baseline(const std::string& text, const std::string& origin) {
  auto fail = [&](const std::string& what) { baseline_fail(origin, what); };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object() || doc.value("kind", "") != kBaselineKind) fail("is not a pe-synth baseline (no \"kind\": \"" + std::string(kBaselineKind) + "\")");
  BoundsFile b;
  b.origin = origin;
  try {
    b.generator = doc.at("generator").get<std::string>();
    b.config_hash = doc.at("config_hash").get<std::string>();
    for (const auto& e : doc.at("entries")) {
      EntryBounds x;
      if (!pe::detail::json_integer_in(e.at("p"), 1, 64) || !pe::detail::json_integer_in(e.at("degree"), 1, kMaxDegree))
        fail("an entry has p or degree out of range: " + e.dump());
      x.p = e.at("p").get<int>();
      x.degree = e.at("degree").get<int>();
      x.l_edge = e.at("l_edge").get<double>();
      x.eps_f64 = e.at("eps_f64").get<double>();
      x.image_lo_f64 = e.at("image_lo_f64").get<double>();
      x.image_hi_f64 = e.at("image_hi_f64").get<double>();
      x.eps_f32 = e.at("eps_f32").get<double>();
      x.image_lo_f32 = e.at("image_lo_f32").get<double>();
      x.image_hi_f32 = e.at("image_hi_f32").get<double>();
      x.overshoot = e.at("overshoot").get<double>();
      x.eps = e.at("eps").get<std::string>();
      if (!x.eps.empty() && !pe::detail::is_decimal_number(x.eps)) fail("an entry's eps is not a decimal number: " + e.dump());
      b.entries.push_back(std::move(x));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed (") + e.what() + ")");
  }
  return b;
}

BoundsFile load_bounds(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const std::string text = read_text_file(path, "bounds");
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_object() && doc.value("kind", "") == kBaselineKind) return parse_baseline(text, path);
  }
  return bounds_of(load_table_file(path), path);
}

std::vector<std::string> diff_bounds(const BoundsFile& older, const BoundsFile& newer, std::size_t* compared) {
  using R = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<100>>;
  std::vector<std::string> worse;
  std::size_t count = 0;
  auto cmp = [&](const std::string& name, const char* field, double before, double after, bool higher_is_worse) {
    ++count;
    if (higher_is_worse ? after > before : after < before)
      worse.push_back(name + ": " + field + " " + fmt("%.17g", before) + " -> " + fmt("%.17g", after));
  };
  std::map<std::pair<int, int>, std::vector<const EntryBounds*>> by_table;
  for (const EntryBounds& e : newer.entries) by_table[{e.p, e.degree}].push_back(&e);
  std::set<std::pair<int, int>> reported;
  for (const EntryBounds& e : older.entries) {
    const std::string name = entry_name(e.p, e.degree, e.l_edge);
    const auto it = by_table.find({e.p, e.degree});
    if (it == by_table.end()) {
      if (reported.insert({e.p, e.degree}).second)
        worse.push_back("p=" + std::to_string(e.p) + " degree=" + std::to_string(e.degree) + ": table removed");
      continue;
    }
    const EntryBounds* serving = nullptr;  // the largest edge <= e.l_edge
    for (const EntryBounds* n : it->second)
      if (n->l_edge <= e.l_edge) serving = n;
    if (!serving) {
      worse.push_back(name + ": no entry serves this edge any more");
      continue;
    }
    cmp(name, "eps_f64", e.eps_f64, serving->eps_f64, true);
    cmp(name, "image_f64.lo", e.image_lo_f64, serving->image_lo_f64, false);
    cmp(name, "image_f64.hi", e.image_hi_f64, serving->image_hi_f64, true);
    cmp(name, "eps_f32", e.eps_f32, serving->eps_f32, true);
    cmp(name, "image_f32.lo", e.image_lo_f32, serving->image_lo_f32, false);
    cmp(name, "image_f32.hi", e.image_hi_f32, serving->image_hi_f32, true);
    cmp(name, "overshoot", e.overshoot, serving->overshoot, true);
    if (!e.eps.empty()) {
      ++count;
      if (serving->eps.empty() || R(serving->eps) > R(e.eps))
        worse.push_back(name + ": eps " + e.eps + " -> " + (serving->eps.empty() ? std::string("(none)") : serving->eps));
    }
  }
  if (compared) *compared = count;
  return worse;
}

std::vector<std::string> diff_tables(const TableFile& older, const TableFile& newer, std::size_t* compared) {
  return diff_bounds(bounds_of(older, "old"), bounds_of(newer, "new"), compared);
}

}  // namespace pe::synth
