// verify (re-solve and re-certify every stored entry) and diff (which bounds got worse).
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "pe/schedule_types.hpp"
#include "tables.hpp"

namespace pe::synth {

namespace fs = std::filesystem;

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

void parallel(std::size_t n, int threads, const std::function<void(std::size_t)>& task) {
  std::atomic<std::size_t> next{0};
  std::mutex m;
  std::string error;
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        task(i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(m);
        if (error.empty()) error = e.what();
      }
    }
  };
  int count = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  count = std::max(1, std::min<int>(count, static_cast<int>(n)));
  std::vector<std::thread> pool;
  for (int t = 0; t < count; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (!error.empty()) throw Error(error);
}

bool worse_than_fresh(double stored, double fresh, double rel_tol) {
  return stored > fresh * (1 + rel_tol) + 1e-300;
}

}  // namespace

std::vector<std::string> verify_tables(const std::string& dir, const VerifyOptions& options) {
  std::vector<std::string> failures;
  const fs::path json_path = fs::path(dir) / "pe_schedules.json", header_path = fs::path(dir) / "pe_schedules.hpp";
  const TableFile file = load_table_file(json_path.string());
  {
    std::ifstream in(header_path, std::ios::binary);
    if (!in) throw Error("pe-synth: verify: " + header_path.string() + " cannot be opened");
    std::ostringstream s;
    s << in.rdbuf();
    if (s.str() != emit_header(file))
      failures.push_back(header_path.string() + ": does not match " + json_path.string() +
                         " (a hand edit or a stale file; regenerate both with pe-synth generate)");
  }
  Config config = config_from_json(nlohmann::json::parse(file.config.dump()), json_path.string() + " $.config");
  config.name = file.config_name;
  if (config.hash() != file.config_hash)
    failures.push_back(json_path.string() + ": config_hash " + file.config_hash + " does not match the echoed config (" +
                       config.hash() + ")");
  const GuardSpec guards = config.guards();
  const int digits = config.digits;
  const std::vector<double> edges = bucket_edges(config);

  // Work items: stored entries, config edges left out, fixed schedules.
  struct Item {
    int kind;  // 0 entry, 1 missing edge, 2 fixed
    std::size_t table, index;
    double l;
  };
  std::vector<Item> items;
  for (int p : config.p)
    for (int degree : config.degrees) {
      auto it = std::find_if(file.tables.begin(), file.tables.end(),
                             [&](const TableRecord& t) { return t.p == p && t.degree == degree; });
      if (it == file.tables.end()) {
        failures.push_back("p=" + std::to_string(p) + " degree=" + std::to_string(degree) + ": table missing");
        continue;
      }
      const std::size_t ti = static_cast<std::size_t>(it - file.tables.begin());
      std::set<double> stored;
      for (std::size_t ei = 0; ei < it->entries.size(); ++ei) {
        const double l = it->entries[ei].l_edge;
        if (!std::binary_search(edges.begin(), edges.end(), l))
          failures.push_back(entry_name(p, degree, l) + ": not a bucket edge of the config");
        if (ei > 0 && !(it->entries[ei - 1].l_edge < l))
          failures.push_back(entry_name(p, degree, l) + ": entries not sorted ascending");
        if (it->eta != config.eta) failures.push_back(entry_name(p, degree, l) + ": table eta differs from the config");
        stored.insert(l);
        items.push_back({0, ti, ei, l});
      }
      for (double l : edges)
        if (!stored.count(l)) items.push_back({1, ti, 0, l});
    }
  for (std::size_t fi = 0; fi < file.fixed.size(); ++fi) items.push_back({2, 0, fi, 0});
  if (file.fixed.size() != config.fixed.p.size() * config.fixed.degrees.size() * config.fixed.kappa0.size())
    failures.push_back("fixed_schedules: " + std::to_string(file.fixed.size()) + " stored, the config asks for " +
                       std::to_string(config.fixed.p.size() * config.fixed.degrees.size() * config.fixed.kappa0.size()));

  std::vector<std::vector<std::string>> results(items.size());
  std::atomic<std::size_t> done{0};
  parallel(items.size(), options.threads, [&](std::size_t i) {
    const Item& item = items[i];
    std::vector<std::string>& out = results[i];
    if (item.kind == 2) {
      const FixedRecord& fr = file.fixed[item.index];
      const std::string name = "fixed p=" + std::to_string(fr.p) + " degree=" + std::to_string(fr.degree) +
                               " kappa0=" + fmt("%g", fr.kappa0);
      if (fr.steps.front().l != fr.l0) out.push_back(name + ": steps[0].l differs from l0");
      for (std::size_t k = 0; k < fr.steps.size(); ++k) {
        const StepRecord& s = fr.steps[k];
        const std::string sname = name + " step " + std::to_string(k + 1);
        const Recheck r = recertify(fr.p, Value::of(s.l), {Value::of(s.coeff_f64[0]), Value::of(s.coeff_f64[1]),
                                                           Value::of(s.coeff_f64[2])},
                                    digits, guards);
        check_cert(sname, "f64", r, s.eps_f64, s.image_lo_f64, s.image_hi_f64, out);
        // lo / hi rounded to nearest is >= the stored next l (which was rounded down from the exact ratio).
        if (k + 1 < fr.steps.size() && !(fr.steps[k + 1].l <= s.image_lo_f64 / s.image_hi_f64))
          out.push_back(sname + ": the next step starts above the certified image ratio lo/hi");
      }
      if (fr.final_eps != fr.steps.back().eps_f64) out.push_back(name + ": final_eps is not the last step's eps_f64");
      if (fr.gemms != pe::schedule_gemms(fr.p, fr.degree, static_cast<int>(fr.steps.size())))
        out.push_back(name + ": gemms " + std::to_string(fr.gemms) + " is not pe::schedule_gemms");
      ScheduleRequest req;
      req.p = fr.p;
      req.degree = fr.degree;
      req.digits = digits;
      req.l0 = Value::of(fr.l0);
      req.target = config.fixed.target_eps;
      req.step_limit = config.fixed.max_steps;
      req.guards = guards;
      req.chain_f64 = true;
      req.allow_unreached = true;
      const Schedule fresh = greedy_schedule(req);
      if (fresh.steps.size() < fr.steps.size())
        out.push_back(name + ": the solver now needs " + std::to_string(fresh.steps.size()) + " steps, stored " +
                      std::to_string(fr.steps.size()));
      else if (worse_than_fresh(fr.final_eps, fresh.steps.back().cert_f64.eps_d, options.rel_tol))
        out.push_back(name + ": final_eps " + fmt("%.6e", fr.final_eps) + " is worse than a fresh solve's " +
                      fmt("%.6e", fresh.steps.back().cert_f64.eps_d));
    } else {
      const TableRecord& t = file.tables[item.table];
      const std::string name = entry_name(t.p, t.degree, item.l);
      StepRequest req;
      req.p = t.p;
      req.degree = t.degree;
      req.l = Value::of(item.l);
      req.digits = digits;
      req.kind = StepKind::guarded;
      req.guards = guards;
      if (item.kind == 1) {
        try {
          const Step s = solve_step(req);
          out.push_back(name + ": left out of the table although the solver now finds guarded coefficients (eps_f64 " +
                        fmt("%.6e", s.cert_f64.eps_d) + ")");
        } catch (const NoGuardedSolution&) {
        }
      } else {
        const EntryRecord& e = t.entries[item.index];
        const Value l = Value::of(e.l_edge);
        const Recheck r64 = recertify(t.p, l, {Value::of(e.coeff_f64[0]), Value::of(e.coeff_f64[1]),
                                               Value::of(e.coeff_f64[2])}, digits, guards);
        check_cert(name, "f64", r64, e.eps_f64, e.image_lo_f64, e.image_hi_f64, out);
        const Recheck r32 = recertify(t.p, l, {Value::of(double(e.coeff_f32[0])), Value::of(double(e.coeff_f32[1])),
                                               Value::of(double(e.coeff_f32[2]))}, digits, guards);
        check_cert(name, "f32", r32, e.eps_f32, e.image_lo_f32, e.image_hi_f32, out);
        if (!r64.guards.ok()) out.push_back(name + ": f64 coefficients break a guard: " + r64.guards.failure);
        if (!r32.guards.ok()) out.push_back(name + ": f32 coefficients break a guard: " + r32.guards.failure);
        if (!(std::max(r64.guards.overshoot, r32.guards.overshoot) <= e.overshoot))
          out.push_back(name + ": stored overshoot " + fmt("%.17g", e.overshoot) + " is below the certified " +
                        fmt("%.17g", std::max(r64.guards.overshoot, r32.guards.overshoot)));
        const Recheck rmp = recertify(t.p, l, {Value::of(e.coefficients[0]), Value::of(e.coefficients[1]),
                                               Value::of(e.coefficients[2])}, digits, guards);
        if (rmp.cert.eps.empty() || std::stold(e.eps) < std::stold(rmp.cert.eps) * (1 - 1e-15L))
          out.push_back(name + ": stored eps " + e.eps + " is not an upper bound of the multiprecision coefficients' (" +
                        (rmp.cert.eps.empty() ? std::string("uncertifiable") : rmp.cert.eps) + ")");
        const Step fresh = solve_step(req);
        if (worse_than_fresh(e.eps_f64, fresh.cert_f64.eps_d, options.rel_tol))
          out.push_back(name + ": eps_f64 " + fmt("%.17g", e.eps_f64) + " is worse than a fresh solve's " +
                        fmt("%.17g", fresh.cert_f64.eps_d));
        if (worse_than_fresh(e.eps_f32, fresh.cert_f32.eps_d, options.rel_tol))
          out.push_back(name + ": eps_f32 " + fmt("%.17g", e.eps_f32) + " is worse than a fresh solve's " +
                        fmt("%.17g", fresh.cert_f32.eps_d));
      }
    }
    const std::size_t d = ++done;
    if (options.progress && isatty(fileno(stderr)) && (d % 16 == 0 || d == items.size()))
      std::fprintf(stderr, "\rpe-synth verify %zu/%zu", d, items.size());
  });
  if (options.progress && isatty(fileno(stderr))) std::fprintf(stderr, "\n");
  for (auto& r : results) failures.insert(failures.end(), r.begin(), r.end());
  return failures;
}

std::vector<std::string> diff_tables(const TableFile& older, const TableFile& newer, std::size_t* compared) {
  std::vector<std::string> worse;
  std::size_t count = 0;
  auto cmp = [&](const std::string& name, const char* field, double before, double after, bool higher_is_worse) {
    ++count;
    if (higher_is_worse ? after > before : after < before)
      worse.push_back(name + ": " + field + " " + fmt("%.17g", before) + " -> " + fmt("%.17g", after));
  };
  for (const TableRecord& t : older.tables) {
    auto it = std::find_if(newer.tables.begin(), newer.tables.end(),
                           [&](const TableRecord& n) { return n.p == t.p && n.degree == t.degree; });
    if (it == newer.tables.end()) {
      worse.push_back("p=" + std::to_string(t.p) + " degree=" + std::to_string(t.degree) + ": table removed");
      continue;
    }
    std::map<double, const EntryRecord*> by_edge;
    for (const auto& e : it->entries) by_edge[e.l_edge] = &e;
    for (const EntryRecord& e : t.entries) {
      const std::string name = entry_name(t.p, t.degree, e.l_edge);
      auto found = by_edge.find(e.l_edge);
      if (found == by_edge.end()) {
        worse.push_back(name + ": entry removed");
        continue;
      }
      const EntryRecord& n = *found->second;
      cmp(name, "eps_f64", e.eps_f64, n.eps_f64, true);
      cmp(name, "image_f64.lo", e.image_lo_f64, n.image_lo_f64, false);
      cmp(name, "image_f64.hi", e.image_hi_f64, n.image_hi_f64, true);
      cmp(name, "eps_f32", e.eps_f32, n.eps_f32, true);
      cmp(name, "image_f32.lo", e.image_lo_f32, n.image_lo_f32, false);
      cmp(name, "image_f32.hi", e.image_hi_f32, n.image_hi_f32, true);
      cmp(name, "overshoot", e.overshoot, n.overshoot, true);
    }
  }
  for (const FixedRecord& f : older.fixed) {
    const std::string name = "fixed p=" + std::to_string(f.p) + " degree=" + std::to_string(f.degree) +
                             " kappa0=" + fmt("%g", f.kappa0);
    auto it = std::find_if(newer.fixed.begin(), newer.fixed.end(), [&](const FixedRecord& n) {
      return n.p == f.p && n.degree == f.degree && n.kappa0 == f.kappa0;
    });
    if (it == newer.fixed.end()) {
      worse.push_back(name + ": schedule removed");
      continue;
    }
    const std::size_t common = std::min(f.steps.size(), it->steps.size());
    for (std::size_t k = 0; k < common; ++k)
      cmp(name + " step " + std::to_string(k + 1), "eps_f64", f.steps[k].eps_f64, it->steps[k].eps_f64, true);
    cmp(name, "steps", static_cast<double>(f.steps.size()), static_cast<double>(it->steps.size()), true);
    cmp(name, "final_eps", f.final_eps, it->final_eps, true);
  }
  if (compared) *compared = count;
  return worse;
}

}  // namespace pe::synth
