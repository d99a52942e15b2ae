#include "solve_commands.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "device_option.hpp"
#include "npy.hpp"
#include "pe/solve.hpp"
#include "reference.hpp"
#include "reference_general.hpp"

namespace pe_run {

namespace {

pe::DType dtype_of(const std::string& name, pe::DType file) {
  return name.empty() ? file : (name == "f32" ? pe::DType::f32 : pe::DType::f64);
}

// Row-major (C order) .npy data as views.
pe::Matrix view(const NpyArray& a) {
  return pe::Matrix{a.data.data(), a.rows, a.cols, a.cols, pe::DType::f64, pe::Layout::row_major};
}

struct SolveArgs {
  std::string in, rhs, out, dtype, schedules, device = "cpu";
  double target = 1e-6;
  double kappa_hint = 0;
  double inner_target = 0;
  int max_gemms = 0;
  int max_corrections = 3;
  bool spd = false, general = false, json = false, no_fallback = false;
};

struct GramArgs {
  int p = 2;
  std::string in, rhs, out, dtype, schedules, side = "auto", device = "cpu";
  double target = 1e-3, lambda = 0;
  int max_gemms = 0;
  bool range = false, json = false;
};

struct BenchArgs {
  int repeats = 3;
  std::int64_t n = 1024, k = 16;
  bool general = true;
  std::string schedules;
};

int run_solve(const SolveArgs& a) {
  const NpyArray am = read_npy(a.in), bm = read_npy(a.rhs);
  if (am.rows != am.cols)
    throw pe::Error(a.in + ": shape (" + std::to_string(am.rows) + ", " + std::to_string(am.cols) + ") is not square");
  if (bm.rows != am.rows)
    throw pe::Error(a.rhs + ": has " + std::to_string(bm.rows) + " rows, expected " + std::to_string(am.rows) +
                    " to match " + a.in);
  const pe::DType storage = dtype_of(a.dtype, am.dtype);
  pe::SolveOptions o;
  o.target = a.target;
  o.max_gemms = a.max_gemms;
  o.max_corrections = a.max_corrections;
  o.kappa_hint = a.kappa_hint;
  o.inner_target = a.inner_target;
  o.allow_fallback = !a.no_fallback;
  o.device = device_of(a.device);
  o.structure = a.spd ? pe::Structure::spd : a.general ? pe::Structure::general : pe::Structure::automatic;
  o.storage_from_input = false;
  o.storage = storage;
  if (!a.schedules.empty()) {
    o.schedule_source = pe::ScheduleSource::json_file;
    o.schedule_file = a.schedules;
  }
  std::vector<double> x(bm.data.size());
  const pe::SolveReport r = pe::solve(
      view(am), view(bm), pe::MutableMatrix{x.data(), bm.rows, bm.cols, bm.cols, pe::DType::f64, pe::Layout::row_major},
      o);
  write_npy(a.out, bm.rows, bm.cols, storage, x);
  if (a.json) {
    std::cout << pe::to_json(r) << "\n";
  } else {
    std::printf("method %s (%s), GEMMs %d (inverse %d, polar %d), corrections %d, relative residual %.3g, target %s, "
                "fallback %s%s, %.3f s\n",
                r.method.c_str(), r.structure.c_str(), r.gemms, r.inverse_gemms, r.polar_gemms, r.corrections,
                r.residual, r.target_reached ? "reached" : "not reached", r.fallback ? "yes: " : "no",
                r.fallback ? r.fallback_reason.c_str() : "", r.seconds);
  }
  return 0;
}

int run_gram(const GramArgs& a) {
  const NpyArray gm = read_npy(a.in), bm = read_npy(a.rhs);
  const pe::DType storage = dtype_of(a.dtype, gm.dtype);
  pe::GramOptions o;
  o.p = a.p;
  o.lambda = a.lambda;
  o.target = a.target;
  o.max_gemms = a.max_gemms;
  o.rhs = a.range ? pe::GramRhs::range : pe::GramRhs::plain;
  o.side = a.side == "primal" ? pe::GramSide::primal : a.side == "dual" ? pe::GramSide::dual : pe::GramSide::automatic;
  o.device = device_of(a.device);
  o.storage_from_input = false;
  o.storage = storage;
  if (!a.schedules.empty()) {
    o.schedule_source = pe::ScheduleSource::json_file;
    o.schedule_file = a.schedules;
  }
  const std::int64_t expected = a.range ? gm.rows : gm.cols;
  if (bm.rows != expected)
    throw pe::Error(a.rhs + ": has " + std::to_string(bm.rows) + " rows, expected " + std::to_string(expected) +
                    (a.range ? " (the rows of G: --range takes C with Z = A^{-1/p} G^T C)" : " (the columns of G)"));
  std::vector<double> z(static_cast<std::size_t>(gm.cols * bm.cols));
  const pe::GramReport r = pe::gram_apply(
      view(gm), view(bm), pe::MutableMatrix{z.data(), gm.cols, bm.cols, bm.cols, pe::DType::f64, pe::Layout::row_major},
      o);
  write_npy(a.out, gm.cols, bm.cols, storage, z);
  if (a.json) {
    std::cout << pe::to_json(r) << "\n";
  } else {
    std::printf("side %s, GEMMs %d (root %d), tracked bound %.3g, fallback %s, %.3f s\n", r.side.c_str(), r.gemms,
                r.root.gemms, r.root.final_eps, r.root.fallback ? "yes" : "no", r.seconds);
  }
  return 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// pe::solve against LAPACK ?gesv on the same system, one table: GEMMs, median time, achieved residual.
int run_bench(const BenchArgs& b) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const std::int64_t n = b.n, k = b.k;
  std::printf("pe-run bench-solve: n = %lld, k = %lld right-hand sides, median of %d runs, CPU (OpenBLAS; set "
              "OPENBLAS_NUM_THREADS to pin the threads)\n",
              static_cast<long long>(n), static_cast<long long>(k), b.repeats);
  std::printf("residual = ||B - A X||_F / ||B||_F in double; SPD: log-spaced eigenvalues; general: U diag(sigma) V^T\n");
  std::printf("GEMMs: n x n x n products (iteration, polar, H, P) + n x n x k products (X0, residuals, corrections)\n");
  std::printf("%-8s %-6s %-5s %7s | %-6s %9s %5s %5s %9s %9s %-4s | %9s %9s\n", "matrix", "kappa", "dtype", "target",
              "method", "GEMMs", "corr", "steps", "pe [s]", "residual", "fb", "gesv [s]", "residual");
  const std::vector<double> rhs = pe::reference::random_gaussian(n, k, 11);
  for (bool general : {false, true}) {
    if (general && !b.general) continue;
    for (double kappa : {1e3, 1e6}) {
      const std::vector<double> spectrum =
          pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread);
      const std::vector<double> a =
          general ? pe::reference::random_general(spectrum, 5) : pe::reference::random_spd(spectrum, 5);
      for (pe::DType dt : {pe::DType::f64, pe::DType::f32}) {
        const double target = dt == pe::DType::f64 ? 1e-6 : 1e-3;
        pe::SolveOptions o;
        o.target = target;
        o.storage_from_input = false;
        o.storage = dt;
        if (!b.schedules.empty()) {
          o.schedule_source = pe::ScheduleSource::json_file;
          o.schedule_file = b.schedules;
        }
        std::vector<double> x(rhs.size());
        std::vector<double> t_pe, t_lapack;
        pe::SolveReport r;
        for (int rep = 0; rep < b.repeats; ++rep) {
          const auto t0 = Clock::now();
          r = pe::solve(pe::Matrix{a.data(), n, n, n}, pe::Matrix{rhs.data(), n, k, n}, pe::MutableMatrix{x.data(), n, k, n},
                        o);
          t_pe.push_back(seconds(t0));
        }
        const double res = pe::reference::relative_residual(a, x, rhs, n, k);
        // LAPACK in the same dtype: the factorisation is destroyed, so each run starts from fresh copies.
        std::vector<double> xl(rhs.size());
        for (int rep = 0; rep < b.repeats; ++rep) {
          std::vector<lapack_int> piv(static_cast<std::size_t>(n));
          if (dt == pe::DType::f64) {
            std::vector<double> lu(a), xb(rhs);
            const auto t0 = Clock::now();
            LAPACKE_dgesv(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(k), lu.data(),
                          static_cast<lapack_int>(n), piv.data(), xb.data(), static_cast<lapack_int>(n));
            t_lapack.push_back(seconds(t0));
            xl = xb;
          } else {
            std::vector<float> lu(a.begin(), a.end()), xb(rhs.begin(), rhs.end());
            const auto t0 = Clock::now();
            LAPACKE_sgesv(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(k), lu.data(),
                          static_cast<lapack_int>(n), piv.data(), xb.data(), static_cast<lapack_int>(n));
            t_lapack.push_back(seconds(t0));
            xl.assign(xb.begin(), xb.end());
          }
        }
        const double res_lapack = pe::reference::relative_residual(a, xl, rhs, n, k);
        const int square = r.inverse_gemms + r.polar_gemms;
        const std::string gemms = std::to_string(square) + "+" + std::to_string(r.gemms - square);
        std::printf("%-8s %-6.0e %-5s %7.0e | %-6s %9s %5d %5d %9.4f %9.2e %-4s | %9.4f %9.2e\n",
                    general ? "general" : "spd", kappa, pe::to_string(dt), target, r.method.c_str(), gemms.c_str(),
                    r.corrections, r.inverse.steps + r.polar_steps, median(t_pe), res, r.fallback ? "yes" : "no",
                    median(t_lapack), res_lapack);
        if (r.fallback) std::printf("         fallback: %s\n", r.fallback_reason.c_str());
      }
    }
  }
  return 0;
}

class Commands final : public SolveCommands {
 public:
  explicit Commands(CLI::App& app) {
    solve_ = app.add_subcommand("solve", "X = A^{-1} B: --in A.npy --rhs B.npy --out X.npy (SPD or general A)");
    solve_->add_option("--in", s_.in, "A: n x n .npy")->required();
    solve_->add_option("--rhs", s_.rhs, "B: n x k .npy")->required();
    solve_->add_option("--out", s_.out, "X: output .npy")->required();
    solve_->add_option("--target", s_.target, "relative residual ||B - A X||_F / ||B||_F to reach (0: budget only)");
    solve_->add_option("--max-gemms", s_.max_gemms, "GEMM budget (0: none)")->check(CLI::NonNegativeNumber);
    solve_->add_option("--max-corrections", s_.max_corrections, "refinement steps after X0")->check(CLI::Range(0, 10));
    solve_->add_option("--kappa-hint", s_.kappa_hint, "estimate of cond(A) (0: none)");
    solve_->add_option("--inner-target", s_.inner_target,
                       "bound of ||I - M A|| the approximate inverse is built to (0: sqrt(target), clamped)");
    solve_->add_option("--dtype", s_.dtype, "iteration and output dtype: f32 | f64 (default: the input's)")
        ->check(CLI::IsMember({"f32", "f64"}));
    solve_->add_option("--schedules", s_.schedules, "schedule tables .json (default: compiled in)");
    auto* spd = solve_->add_flag("--spd", s_.spd, "treat A as symmetric positive definite (default: detect)");
    auto* general = solve_->add_flag("--general", s_.general, "treat A as a general matrix (polar path)");
    spd->excludes(general);
    solve_->add_flag("--no-fallback", s_.no_fallback, "report non-convergence instead of running LU");
    add_device_option(solve_, s_.device);
    solve_->add_flag("--json", s_.json, "print the report as one JSON object");

    gram_ = app.add_subcommand("gram-apply",
                               "Z = (G^T G + lambda I)^{-1/p} B, or with --range Z = (G^T G + lambda I)^{-1/p} G^T C");
    gram_->add_option("--p", g_.p, "root: A^{-1/p}")->required()->check(CLI::Range(1, 64));
    gram_->add_option("--in", g_.in, "G: m x n .npy")->required();
    gram_->add_option("--rhs", g_.rhs, "B: n x k .npy (C: m x k with --range)")->required();
    gram_->add_option("--out", g_.out, "Z: output n x k .npy")->required();
    gram_->add_option("--lambda", g_.lambda, "ridge: A = G^T G + lambda I")->check(CLI::NonNegativeNumber);
    gram_->add_flag("--range", g_.range, "the right-hand side is G^T C (enables the dual identity G^T (G G^T)^{-1/p})");
    gram_->add_option("--side", g_.side, "auto | primal | dual (dual needs --range)")
        ->check(CLI::IsMember({"auto", "primal", "dual"}));
    gram_->add_option("--target", g_.target, "tracked bound of ||X^p A - I|| to reach (0: budget only)");
    gram_->add_option("--max-gemms", g_.max_gemms, "GEMM budget (0: none)")->check(CLI::NonNegativeNumber);
    gram_->add_option("--dtype", g_.dtype, "iteration and output dtype: f32 | f64 (default: the input's)")
        ->check(CLI::IsMember({"f32", "f64"}));
    gram_->add_option("--schedules", g_.schedules, "schedule tables .json (default: compiled in)");
    add_device_option(gram_, g_.device);
    gram_->add_flag("--json", g_.json, "print the report as one JSON object");

    bench_ = app.add_subcommand("bench-solve", "pe::solve vs LAPACK dgesv/sgesv: kappa 1e3 and 1e6, fp64 and fp32");
    bench_->add_option("--repeats", b_.repeats, "runs per case (median reported)")->check(CLI::Range(1, 100));
    bench_->add_option("--n", b_.n, "matrix size")->check(CLI::Range(8, 8192));
    bench_->add_option("--k", b_.k, "right-hand sides")->check(CLI::Range(1, 8192));
    bench_->add_flag("!--no-general", b_.general, "skip the non-symmetric systems");
    bench_->add_option("--schedules", b_.schedules, "schedule tables .json (default: compiled in)");
  }
  bool selected() const override { return solve_->parsed() || gram_->parsed() || bench_->parsed(); }
  int run() override {
    if (solve_->parsed()) return run_solve(s_);
    if (gram_->parsed()) return run_gram(g_);
    return run_bench(b_);
  }

 private:
  CLI::App* solve_ = nullptr;
  CLI::App* gram_ = nullptr;
  CLI::App* bench_ = nullptr;
  SolveArgs s_;
  GramArgs g_;
  BenchArgs b_;
};

}  // namespace

std::unique_ptr<SolveCommands> add_solve_commands(CLI::App& app) { return std::make_unique<Commands>(app); }

}  // namespace pe_run
