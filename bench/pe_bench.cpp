// pe-bench: our inverse root and direct apply against what a user would pick instead, on the CPU
// backend, measured in one run: an eigendecomposition root (LAPACK syevd), the classic coupled Newton
// iteration (Guo & Higham 2006, their optimal scalar start) and the bare BLAS time of our GEMM count.
// Prints a table and writes every number to a JSON file (rewritten after each case, so a long run that
// is cut short keeps what it measured).
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include "baselines.hpp"
#include "pe/pe.hpp"
#include "pe/solve.hpp"
#include "pe_schedules.hpp"
#include "reference.hpp"
#include "report_figures.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Settings {
  std::vector<std::int64_t> sizes{256, 512, 1024, 2048};
  std::vector<int> powers{1, 2, 4};
  std::vector<double> kappas{1e2, 1e4, 1e6};
  std::vector<std::string> dtypes{"f32", "f64"};
  int repeats = 5;
  int repeats_large = 3;           // for n >= large_from (the O(n^3) baselines take seconds there)
  std::int64_t large_from = 2048;
  std::int64_t rhs_cols = 64;      // k of the direct apply Z = A^{-1/p} B
  double target_f32 = 1e-3;
  double target_f64 = 1e-8;
  int newton_max_iterations = 100;
  std::string json_path = "pe-bench.json";
  std::string markdown_path;       // empty: no markdown tables
  std::string schedules;           // empty: the compiled-in tables
  std::uint64_t seed = 20261123;
  bool quick = false;
  int soak_calls = 0;              // > 0: the soak mode instead of the comparison
  std::int64_t soak_n = 64;
  double soak_max_growth = 0;      // > 0: exit non-zero when an entry grows more (bytes)
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Median wall time of `repeats` calls of f.
template <class F>
double time_median(int repeats, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

// Two timings taken side by side: each repeat runs f then g, so a change of the shared machine's speed
// during the run hits both alike. ratio is the median of the per-repeat ratios f/g, which is what the
// ratio targets are judged by (the ratio of two medians taken minutes apart mixes two machine states).
struct PairedTimes {
  double f_seconds = 0, g_seconds = 0, ratio = 0;
};

template <class F, class G>
PairedTimes time_paired(int repeats, F&& f, G&& g) {
  std::vector<double> tf, tg, ratio;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    f();
    tf.push_back(seconds_since(t0));
    t0 = Clock::now();
    g();
    tg.push_back(seconds_since(t0));
    ratio.push_back(tf.back() / tg.back());
  }
  return {median(tf), median(tg), median(ratio)};
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// One matrix and its double references, shared by every p and dtype of a (n, kappa) pair.
struct Problem {
  std::int64_t n = 0;
  double kappa = 0;
  double lambda_min = 0, lambda_max = 0;  // exact: the spectrum is prescribed
  std::vector<double> a;
  std::vector<double> b;                  // n x k right-hand sides
};

struct References {
  std::vector<double> x;  // A^{-1/p}
  std::vector<double> z;  // A^{-1/p} B
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

template <class T>
json run_case(const Settings& s, const Problem& prob, const References& ref, int p) {
  constexpr bool is_f32 = std::is_same_v<T, float>;
  const pe::DType dtype = is_f32 ? pe::DType::f32 : pe::DType::f64;
  const double target = is_f32 ? s.target_f32 : s.target_f64;
  const std::int64_t n = prob.n, k = s.rhs_cols;
  const int repeats = n >= s.large_from ? s.repeats_large : s.repeats;
  const std::vector<T> a(prob.a.begin(), prob.a.end()), b(prob.b.begin(), prob.b.end());

  pe::Options opt;
  opt.p = p;
  opt.target = target;
  if (!s.schedules.empty()) {
    opt.schedule_source = pe::ScheduleSource::json_file;
    opt.schedule_file = s.schedules;
  }
  const pe::Matrix a_view{a.data(), n, n, n, dtype};

  // (a) our root, one-shot: one untimed run for the report and the error (and to warm up BLAS threads).
  // Verification is on, as it is by default: a user who calls inverse_root gets (and pays for) it.
  std::vector<T> x(a.size());
  const pe::MutableMatrix x_view{x.data(), n, n, n, dtype};
  const pe::Report root = pe::inverse_root(a_view, x_view, opt);
  const double err_root = pe::reference::relative_error(to_double(x), ref.x);
  // The true eps of the returned X, measured in double against A as it was handed over (in this dtype):
  // what verified_eps must bound. (Against the f64 A it would also hold the rounding of A to f32.)
  const double true_eps = pe::reference::root_eps(to_double(a), to_double(x), n, p);

  // (a') the plan path: RootPlan made once, executed many times, with the certificate and without it.
  // verify_share is the certificate's part of a verified execute (its own clock, median over executes).
  // The one-shot call and the verified execute alternate within each repeat, so that their ratio is
  // measured under the same load (as the unverified execute and the GEMM floor below).
  pe::RootPlan plan(pe::describe(a_view), opt);
  plan.execute(a_view, x_view);
  std::vector<double> verify_seconds;
  const PairedTimes one_shot_vs_plan = time_paired(
      repeats, [&] { pe::inverse_root(a_view, x_view, opt); },
      [&] { verify_seconds.push_back(plan.execute(a_view, x_view).verify_seconds); });
  const double t_root = one_shot_vs_plan.f_seconds, t_plan = one_shot_vs_plan.g_seconds;
  pe::Options unverified_opt = opt;
  unverified_opt.verify = false;
  pe::RootPlan plan_unverified(pe::describe(a_view), unverified_opt);
  const pe::Report plan_report = plan_unverified.execute(a_view, x_view);
  const double verify_share = median(verify_seconds) / t_plan;

  // GEMMs of steps that ran above the storage precision (per-step precision) cost an f64 product each.
  const int elevated_gemms = pe_bench::elevated_gemms(plan_report);
  const int storage_gemms = plan_report.gemms - elevated_gemms;

  // (d) the GEMM floor: our root's GEMM count as bare n x n x n products, storage-precision GEMMs in the
  // same dtype and the elevated ones in double (what those steps run in). Timed side by side with the
  // unverified plan execute, whose ratio to it is the engine's overhead target.
  std::vector<T> c_buf(a.size());
  std::vector<double> c64(prob.a.size());
  const PairedTimes plan_vs_floor = time_paired(
      repeats, [&] { plan_unverified.execute(a_view, x_view); },
      [&] {
        for (int g = 0; g < storage_gemms; ++g) pe_bench::gemm(n, a.data(), x.data(), c_buf.data());
        for (int g = 0; g < elevated_gemms; ++g) pe_bench::gemm(n, prob.a.data(), prob.a.data(), c64.data());
      });
  const double t_plan_unverified = plan_vs_floor.f_seconds, t_floor = plan_vs_floor.g_seconds;

  // (a) our direct apply Z = A^{-1/p} B, never forming X.
  pe::Options apply_opt = opt;
  apply_opt.mode = pe::ApplyMode::direct;
  std::vector<T> z(b.size());
  const pe::Matrix b_view{b.data(), n, k, n, dtype};
  const pe::MutableMatrix z_view{z.data(), n, k, n, dtype};
  const pe::Report apply = pe::apply_inverse_root(a_view, b_view, z_view, apply_opt);
  const double err_apply = pe::reference::relative_error(to_double(z), ref.z);
  const double t_apply = time_median(repeats, [&] { pe::apply_inverse_root(a_view, b_view, z_view, apply_opt); });

  // (b) syevd root in the same dtype.
  std::vector<T> xe;
  const bool eigh_ok = pe_bench::eigh_inverse_root(a, n, p, xe);
  const double err_eigh = eigh_ok ? pe::reference::relative_error(to_double(xe), ref.x) : NAN;
  const double t_eigh = time_median(repeats, [&] { pe_bench::eigh_inverse_root(a, n, p, xe); });

  // (c) coupled Newton, stopped at the first iteration whose error reaches ours (an oracle stop: it is
  // told the iteration count that a residual test would find, and pays for no test). When it cannot
  // reach our error in this dtype, it stops where its error stops improving.
  const double c = pe_bench::newton_scaling(prob.lambda_min, prob.lambda_max, p);
  pe_bench::CoupledNewton<T> newton(n, p);
  std::vector<T> xn;
  int best_iteration = 1, stalled = 0;
  double best_err = INFINITY;
  bool newton_reached = false;
  newton.run(a, c, s.newton_max_iterations, xn, [&](int it, const std::vector<T>& xk) {
    const double e = pe::reference::relative_error(to_double(xk), ref.x);
    if (!std::isfinite(e)) return false;
    if (e < best_err * 0.999) {
      best_err = e;
      best_iteration = it;
      stalled = 0;
    } else if (best_err < 0.5 && ++stalled >= 3) {
      // Stagnation at the dtype's attainable accuracy. (Before the error first drops below 1/2 it may sit
      // near 1 for many iterations while the small eigenvalues grow: that is progress, not stagnation.)
      return false;
    }
    if (e <= err_root) {
      newton_reached = true;
      return false;
    }
    return true;
  });
  int newton_gemm_count = 0;
  const double t_newton =
      time_median(repeats, [&] { newton_gemm_count = newton.run(a, c, best_iteration, xn); });
  const double err_newton = pe::reference::relative_error(to_double(xn), ref.x);

  json j;
  j["n"] = n;
  j["p"] = p;
  j["kappa"] = prob.kappa;
  j["dtype"] = is_f32 ? "f32" : "f64";
  j["target"] = target;
  j["repeats"] = repeats;
  j["ours_root"] = {{"seconds", t_root},       {"error", err_root},         {"steps", root.steps},
                    {"gemms", root.gemms},     {"degree", root.degree},     {"tracked_bound", root.final_eps},
                    {"certified", root.certified}, {"fallback", root.fallback}, {"l0_source", root.l0_source},
                    {"model_eps", root.model_eps},
                    {"verified_eps", root.verified_eps ? json(*root.verified_eps) : json(nullptr)},
                    {"true_eps", true_eps},      {"target_reached", root.target_reached},
                    {"elevated_gemms", elevated_gemms}};
  j["ours_plan"] = {{"seconds", t_plan},
                    {"gemms", plan_report.gemms},
                    {"verify_share", verify_share},
                    {"unverified_seconds", t_plan_unverified}};
  j["ours_apply"] = {{"seconds", t_apply}, {"error", err_apply}, {"rhs_cols", k}, {"steps", apply.steps},
                     {"gemms", apply.gemms}, {"mode", apply.mode}, {"fallback", apply.fallback}};
  j["eigh"] = {{"seconds", t_eigh}, {"error", eigh_ok ? json(err_eigh) : json(nullptr)}, {"ok", eigh_ok}};
  j["newton"] = {{"seconds", t_newton},          {"error", err_newton},          {"iterations", best_iteration},
                 {"gemms", newton_gemm_count},   {"reached_ours", newton_reached}, {"c", c}};
  j["gemm_floor"] = {{"seconds", t_floor}, {"gemms", plan_report.gemms}, {"elevated_gemms", elevated_gemms}};
  j["ratios"] = {{"ours_over_eigh", t_root / t_eigh},
                 {"ours_over_newton", t_root / t_newton},
                 {"ours_over_gemm_floor", root.gemms > 0 ? json(t_root / t_floor) : json(nullptr)},
                 // The iteration against its own GEMM count (no certificate), and with it.
                 {"plan_over_gemm_floor", root.gemms > 0 ? json(plan_vs_floor.ratio) : json(nullptr)},
                 {"plan_verified_over_gemm_floor", root.gemms > 0 ? json(t_plan / t_floor) : json(nullptr)},
                 {"one_shot_over_plan", one_shot_vs_plan.ratio}};

  std::printf("%5lld %2d %6.0e %4s | %3d %4d %8.4f %8.1e%s | %8.4f %8.1e | %8.4f %8.1e | %3d %4d %8.4f %8.1e%s | %8.4f |"
              " %6.2f %6.2f %6s | %8.4f %8.4f %4.0f%% %6.2f | %8.1e %8.1e\n",
              static_cast<long long>(n), p, prob.kappa, is_f32 ? "f32" : "f64", root.steps, root.gemms, t_root,
              err_root, root.fallback ? "F" : " ", t_apply, err_apply, t_eigh, err_eigh, best_iteration,
              newton_gemm_count, t_newton, err_newton, newton_reached ? " " : "*", t_floor, t_root / t_eigh,
              t_root / t_newton, root.gemms > 0 ? fmt("%.2f", t_root / t_floor).c_str() : "-", t_plan,
              t_plan_unverified, 100 * verify_share, plan_vs_floor.ratio,
              root.verified_eps ? *root.verified_eps : NAN, true_eps);
  std::fflush(stdout);
  return j;
}

// The 1-minute load average: timings on a shared machine are only as clean as this says.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// Writes through a temporary file in the same directory and a rename: never a half-written file.
void write_atomically(const char* option, const std::string& path, const std::string& text) {
  const std::filesystem::path target(path);
  const std::filesystem::path tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error(std::string(option) + " " + path + ": cannot write " + tmp.string());
    out << text;
    if (!out) throw std::runtime_error(std::string(option) + " " + path + ": write failed");
  }
  std::filesystem::rename(tmp, target);
}

// The results as markdown tables, one per dtype (what bench/RESULTS.md shows).
std::string markdown(const json& doc) {
  std::string md;
  char line[512];
  for (const char* dt : {"f32", "f64"}) {
    bool header = false;
    for (const json& r : doc["results"]) {
      if (r["dtype"] != dt) continue;
      if (!header) {
        std::snprintf(line, sizeof line, "\n#### %s, target %g\n\n", dt, r["target"].get<double>());
        md += line;
        md += "| n | p | κ | steps | GEMMs | ours root [s] | error | direct apply [s] | error | syevd root [s] | error "
              "| Newton it / GEMMs | Newton [s] | error | GEMM floor [s] | ours/eigh | ours/Newton | ours/floor |\n";
        md += "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
        header = true;
      }
      const json &o = r["ours_root"], &a = r["ours_apply"], &e = r["eigh"], &nw = r["newton"], &f = r["gemm_floor"],
                 &q = r["ratios"];
      auto err = [](const json& v) { return v.is_null() ? std::string("-") : fmt("%.1e", v.get<double>()); };
      std::snprintf(line, sizeof line,
                    "| %lld | %d | %.0e | %d | %d | %.4f%s | %s | %.4f | %s | %.4f | %s | %d / %d%s | %.4f | %s | %.4f | "
                    "%.2f | %.2f | %s |\n",
                    r["n"].get<long long>(), r["p"].get<int>(), r["kappa"].get<double>(), o["steps"].get<int>(),
                    o["gemms"].get<int>(), o["seconds"].get<double>(), o["fallback"].get<bool>() ? " (fallback)" : "",
                    err(o["error"]).c_str(), a["seconds"].get<double>(), err(a["error"]).c_str(),
                    e["seconds"].get<double>(), err(e["error"]).c_str(), nw["iterations"].get<int>(),
                    nw["gemms"].get<int>(), nw["reached_ours"].get<bool>() ? "" : "*", nw["seconds"].get<double>(),
                    err(nw["error"]).c_str(), f["seconds"].get<double>(), q["ours_over_eigh"].get<double>(),
                    q["ours_over_newton"].get<double>(),
                    q["ours_over_gemm_floor"].is_null() ? "-" : fmt("%.2f", q["ours_over_gemm_floor"].get<double>()).c_str());
      md += line;
    }
  }
  // The plan path and the certificate: what a caller who plans once pays, and what the bound says.
  for (const char* dt : {"f32", "f64"}) {
    bool header = false;
    for (const json& r : doc["results"]) {
      if (r["dtype"] != dt) continue;
      if (!header) {
        std::snprintf(line, sizeof line, "\n#### %s, target %g: plan path and certificate\n\n", dt, r["target"].get<double>());
        md += line;
        md += "| n | p | κ | GEMMs (elevated) | one-shot [s] | plan [s] | plan, no verify [s] | verify share | GEMM floor [s] "
              "| plan no-verify/floor | plan/floor | one-shot/plan | model eps | verified eps | true eps |\n";
        md += "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
        header = true;
      }
      const json &o = r["ours_root"], &pl = r["ours_plan"], &f = r["gemm_floor"], &q = r["ratios"];
      auto num = [](const json& v, const char* f) { return v.is_null() ? std::string("-") : fmt(f, v.get<double>()); };
      std::snprintf(line, sizeof line,
                    "| %lld | %d | %.0e | %d (%d) | %.4f | %.4f | %.4f | %.0f%% | %.4f | %s | %s | %.2f | %.1e | %s | %.1e |\n",
                    r["n"].get<long long>(), r["p"].get<int>(), r["kappa"].get<double>(), pl["gemms"].get<int>(),
                    f["elevated_gemms"].get<int>(), o["seconds"].get<double>(), pl["seconds"].get<double>(),
                    pl["unverified_seconds"].get<double>(), 100 * pl["verify_share"].get<double>(),
                    f["seconds"].get<double>(), num(q["plan_over_gemm_floor"], "%.2f").c_str(),
                    num(q["plan_verified_over_gemm_floor"], "%.2f").c_str(), q["one_shot_over_plan"].get<double>(),
                    o["model_eps"].get<double>(), num(o["verified_eps"], "%.1e").c_str(), o["true_eps"].get<double>());
      md += line;
    }
  }
  return md;
}

int run(const Settings& s, const std::string& command) {
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  json doc;
  doc["generator"] = "pe-bench";
  doc["command"] = command;
  doc["machine"] = {{"cpu", cpu_model()},
                    {"hardware_threads", std::thread::hardware_concurrency()},
                    {"openblas_num_threads", threads ? threads : "unset"},
                    {"openblas_config", openblas_get_config()},
                    {"openblas_core", openblas_get_corename()},
                    {"load_average_at_start", load_average()}};
  doc["settings"] = {{"sizes", s.sizes},           {"p", s.powers},         {"kappa", s.kappas},
                     {"dtypes", s.dtypes},         {"repeats", s.repeats},  {"repeats_large", s.repeats_large},
                     {"rhs_cols", s.rhs_cols},     {"target_f32", s.target_f32}, {"target_f64", s.target_f64},
                     {"schedules", s.schedules.empty() ? "compiled" : s.schedules},
                     {"compiled_tables", std::string(pe::generated::kGeneratorVersion) + ", config " +
                                             pe::generated::kConfigHash},
                     {"seed", s.seed},
                     {"spectrum", "log-spaced in [1/kappa, 1], Haar-random eigenvectors"}};
  doc["results"] = json::array();
  // Fail on an unwritable output now, not after the first (possibly long) case.
  write_atomically("--json", s.json_path, doc.dump(2) + "\n");
  if (!s.markdown_path.empty()) write_atomically("--markdown", s.markdown_path, markdown(doc));

  // OpenBLAS falls back to its slowest kernels on a CPU it does not know (0.3.21 on Sapphire Rapids picks
  // Prescott, about 5x slower GEMMs; OPENBLAS_CORETYPE=SkylakeX fixes it there but kills AVX2-only CPUs
  // with SIGILL), so the core is printed.
  std::printf("pe-bench: CPU backend, %s, OpenBLAS core %s, OPENBLAS_NUM_THREADS=%s; error = ||X - A^{-1/p}||_F / "
              "||A^{-1/p}||_F against dsyevd in double\n",
              cpu_model().c_str(), openblas_get_corename(), threads ? threads : "unset");
  std::printf("times are medians in seconds; apply: Z = A^{-1/p} B with k = %lld columns, direct mode; "
              "Newton stops at our error (* = could not reach it)\n"
              "plan: RootPlan.execute with the certificate (ver%% = its share), plan-nv: without (nv/flr = that over the "
              "floor); verified: verified_eps, true: max |lambda(X^p A) - 1| in double\n\n",
              static_cast<long long>(s.rhs_cols));
  std::printf("%5s %2s %6s %4s | %3s %4s %8s %8s  | %8s %8s | %8s %8s | %3s %4s %8s %8s  | %8s | %6s %6s %6s | %8s %8s %5s "
              "%6s | %8s %8s\n",
              "n", "p", "kappa", "dt", "stp", "gemm", "ours", "err", "apply", "err", "eigh", "err", "it", "gemm", "newton",
              "err", "floor", "/eigh", "/newt", "/floor", "plan", "plan-nv", "ver%", "nv/flr", "verified", "true");
  for (std::int64_t n : s.sizes)
    for (double kappa : s.kappas) {
      Problem prob;
      prob.n = n;
      prob.kappa = kappa;
      prob.lambda_min = 1 / kappa;
      prob.lambda_max = 1;
      const std::uint64_t seed = s.seed + static_cast<std::uint64_t>(n) * 1000 + static_cast<std::uint64_t>(std::log10(kappa));
      prob.a = pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), seed);
      std::mt19937_64 rng(seed + 1);
      std::normal_distribution<double> normal;
      prob.b.resize(static_cast<std::size_t>(n * s.rhs_cols));
      for (auto& v : prob.b) v = normal(rng);
      for (int p : s.powers) {
        References ref;
        ref.x = pe::reference::inverse_root(prob.a, n, p);
        ref.z = pe::reference::multiply(ref.x, prob.b, n, n, s.rhs_cols);
        for (const std::string& dt : s.dtypes) {
          doc["results"].push_back(dt == "f32" ? run_case<float>(s, prob, ref, p) : run_case<double>(s, prob, ref, p));
          doc["machine"]["load_average_at_last_case"] = load_average();
          write_atomically("--json", s.json_path, doc.dump(2) + "\n");
          if (!s.markdown_path.empty()) write_atomically("--markdown", s.markdown_path, markdown(doc));
        }
      }
    }
  std::printf("\nwrote %s\n", s.json_path.c_str());
  return 0;
}

// Resident set size now (bytes), from /proc/self/statm.
std::int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  std::int64_t pages_total = 0, pages_resident = 0;
  in >> pages_total >> pages_resident;
  if (!in) throw std::runtime_error("--soak: cannot read /proc/self/statm");
  return pages_resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

// Memory across calls: each entry point runs `calls` times on one small f32 problem; the growth of the
// resident set is measured from after a warm-up (a tenth of the calls, at least 10: first-call
// allocations such as BLAS buffers, scratch sized on first execute and the cache's own entry are not
// growth) to the end.
int soak(const Settings& s, const std::string& command) {
  const std::int64_t n = s.soak_n, k = 8, m = 2 * s.soak_n;
  const auto a64 = pe::reference::random_spd(pe::reference::make_spectrum(n, 1e3, pe::reference::Spectrum::spread), s.seed);
  std::mt19937_64 rng(s.seed + 1);
  std::normal_distribution<double> normal;
  std::vector<float> a(a64.begin(), a64.end()), b(static_cast<std::size_t>(n * k)), g(static_cast<std::size_t>(m * n));
  for (auto& v : b) v = static_cast<float>(normal(rng));
  for (auto& v : g) v = static_cast<float>(normal(rng));
  std::vector<float> x(a.size()), z(b.size());
  const pe::Matrix a_view{a.data(), n, n, n, pe::DType::f32}, b_view{b.data(), n, k, n, pe::DType::f32},
      g_view{g.data(), m, n, m, pe::DType::f32};
  const pe::MutableMatrix x_view{x.data(), n, n, n, pe::DType::f32}, z_view{z.data(), n, k, n, pe::DType::f32};

  pe::Options root_opt;
  root_opt.p = 2;
  pe::Options apply_opt = root_opt;
  apply_opt.mode = pe::ApplyMode::direct;
  pe::SolveOptions solve_opt;
  solve_opt.target = 1e-5;
  pe::GramOptions gram_opt;
  gram_opt.p = 2;
  gram_opt.lambda = 1e-3;
  pe::GramCache cache;
  pe::GramOptions cached_opt = gram_opt;
  cached_opt.cache = &cache;
  cached_opt.version = 1;
  pe::RootPlan root_plan(pe::describe(a_view), root_opt);
  pe::ApplyPlan apply_plan(pe::describe(a_view), pe::describe(b_view), apply_opt);
  pe::SolvePlan solve_plan(pe::describe(a_view), pe::describe(b_view), solve_opt);
  pe::GramPlan gram_plan(pe::describe(g_view), pe::describe(b_view), gram_opt);
  pe::GramCache plan_cache;
  pe::GramOptions plan_cached_opt = cached_opt;
  plan_cached_opt.cache = &plan_cache;
  pe::GramPlan gram_plan_cached(pe::describe(g_view), pe::describe(b_view), plan_cached_opt);

  const std::vector<std::pair<std::string, std::function<void()>>> entries{
      {"root", [&] { pe::inverse_root(a_view, x_view, root_opt); }},
      {"root_plan", [&] { root_plan.execute(a_view, x_view); }},
      {"apply", [&] { pe::apply_inverse_root(a_view, b_view, z_view, apply_opt); }},
      {"apply_plan", [&] { apply_plan.execute(a_view, b_view, z_view); }},
      {"solve", [&] { pe::solve(a_view, b_view, z_view, solve_opt); }},
      {"solve_plan", [&] { solve_plan.execute(a_view, b_view, z_view); }},
      {"gram", [&] { pe::gram_apply(g_view, b_view, z_view, gram_opt); }},
      {"gram_cached", [&] { pe::gram_apply(g_view, b_view, z_view, cached_opt); }},
      {"gram_plan", [&] { gram_plan.execute(g_view, b_view, z_view); }},
      {"gram_plan_cached", [&] { gram_plan_cached.execute(g_view, b_view, z_view); }},
  };
  json doc;
  doc["generator"] = "pe-bench --soak";
  doc["command"] = command;
  doc["settings"] = {{"n", n}, {"rhs_cols", k}, {"gram_rows", m}, {"dtype", "f32"}, {"p", 2}, {"calls", s.soak_calls}};
  doc["soak"] = json::object();
  write_atomically("--json", s.json_path, doc.dump(2) + "\n");
  const int warmup = std::max(10, s.soak_calls / 10);
  bool within = true;
  std::printf("pe-bench --soak: %d calls per entry point (after %d warm-up calls), n = %lld, f32\n", s.soak_calls, warmup,
              static_cast<long long>(n));
  std::printf("%-18s %10s %14s %12s\n", "entry", "calls", "rss growth [B]", "per call [B]");
  for (const auto& [name, call] : entries) {
    for (int i = 0; i < warmup; ++i) call();
    const std::int64_t before = resident_bytes();
    const auto t0 = Clock::now();
    for (int i = 0; i < s.soak_calls; ++i) call();
    const double seconds = seconds_since(t0);
    const std::int64_t growth = resident_bytes() - before;
    doc["soak"][name] = {{"calls", s.soak_calls}, {"rss_growth_bytes", growth}, {"seconds", seconds},
                         {"rss_bytes_after", before + growth}};
    std::printf("%-18s %10d %14lld %12.1f\n", name.c_str(), s.soak_calls, static_cast<long long>(growth),
                static_cast<double>(growth) / s.soak_calls);
    std::fflush(stdout);
    if (s.soak_max_growth > 0 && static_cast<double>(growth) > s.soak_max_growth) {
      std::fprintf(stderr, "pe-bench --soak: %s grew the resident set by %lld bytes over %d calls (limit %.0f)\n",
                   name.c_str(), static_cast<long long>(growth), s.soak_calls, s.soak_max_growth);
      within = false;
    }
    write_atomically("--json", s.json_path, doc.dump(2) + "\n");
  }
  std::printf("\nwrote %s\n", s.json_path.c_str());
  return within ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"pe-bench: our inverse root and apply vs syevd, coupled Newton and the GEMM floor (CPU backend)"};
  app.add_flag("--quick", s.quick, "a small subset for CI: n = 256, p = 2 and 4, kappa = 1e4, 3 repeats");
  app.add_option("--n", s.sizes, "matrix sizes")->check(CLI::Range(std::int64_t{2}, std::int64_t{16384}));
  app.add_option("--p", s.powers, "roots p")->check(CLI::Range(1, 64));
  app.add_option("--kappa", s.kappas, "condition numbers")->check(CLI::Range(1.0, 1e12));
  app.add_option("--dtype", s.dtypes, "f32 (target --target-f32) and/or f64 (--target-f64)")
      ->check(CLI::IsMember({"f32", "f64"}));
  app.add_option("--repeats", s.repeats, "timed runs per method (median reported)")->check(CLI::Range(1, 1000));
  app.add_option("--repeats-large", s.repeats_large, "timed runs per method for n >= --large-from")
      ->check(CLI::Range(1, 1000));
  app.add_option("--large-from", s.large_from, "size from which --repeats-large applies")->check(CLI::PositiveNumber);
  app.add_option("--rhs-cols", s.rhs_cols, "columns k of B for the direct apply")->check(CLI::Range(std::int64_t{1}, std::int64_t{16384}));
  app.add_option("--target-f32", s.target_f32, "our target bound in fp32")->check(CLI::Range(1e-12, 0.5));
  app.add_option("--target-f64", s.target_f64, "our target bound in fp64")->check(CLI::Range(1e-15, 0.5));
  app.add_option("--schedules", s.schedules, "schedule tables .json (default: compiled in)")->check(CLI::ExistingFile);
  app.add_option("--json", s.json_path, "where to write the results");
  app.add_option("--markdown", s.markdown_path, "also write the results as markdown tables (for bench/RESULTS.md)");
  app.add_option("--seed", s.seed, "seed of the random test matrices");
  app.add_option("--soak", s.soak_calls,
                 "instead of the comparison: N calls of every entry point (root, apply, solve, gram-apply with and "
                 "without its cache; one-shot and plan) and the resident-memory growth of each")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--soak-n", s.soak_n, "matrix size of the soak")->check(CLI::Range(std::int64_t{2}, std::int64_t{4096}));
  app.add_option("--soak-max-growth", s.soak_max_growth,
                 "exit non-zero when an entry point's resident-memory growth exceeds this many bytes")
      ->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (s.quick) {
    if (!app.count("--n")) s.sizes = {256};
    if (!app.count("--p")) s.powers = {2, 4};
    if (!app.count("--kappa")) s.kappas = {1e4};
    if (!app.count("--repeats")) s.repeats = 3;
  }
  std::string command = "pe-bench";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  try {
    return s.soak_calls > 0 ? soak(s, command) : run(s, command);
  } catch (const std::exception& e) {
    std::cerr << "pe-bench: error: " << e.what() << "\n";
    return 1;
  }
}
