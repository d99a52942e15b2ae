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

#include "cli_options.hpp"
#include "device_option.hpp"
#include "npy.hpp"
#include "pe/solve.hpp"
#include "reference.hpp"
#include "reference_general.hpp"

namespace pe_run {

namespace {

// Row-major (C order) .npy data as views.
pe::Matrix view(const NpyArray& a) {
  return pe::Matrix{a.data.data(), a.rows, a.cols, a.cols, pe::DType::f64, pe::Layout::row_major};
}

// The library's options, bound flag by flag, and what pe-run resolves after reading the inputs.
struct SolveArgs {
  pe::SolveOptions options;
  std::string in, rhs, out, dtype, precond = "frobenius", device = "cpu";
  bool spd = false, general = false, json = false, no_fallback = false;
};

struct GramArgs {
  pe::GramOptions options;
  std::string in, rhs, out, dtype, side = "auto", device = "cpu";
  bool range = false, json = false;
};

struct BenchArgs {
  int repeats = 3;
  std::int64_t n = 1024, k = 16;
  bool general = true;
  pe::ScheduleSource source = pe::ScheduleSource::compiled;
  std::string schedules;
};

int run_solve(const SolveArgs& a) {
  const NpyArray am = read_npy(a.in), bm = read_npy(a.rhs);
  if (am.rows != am.cols)
    throw pe::Error(a.in + ": shape (" + std::to_string(am.rows) + ", " + std::to_string(am.cols) + ") is not square");
  if (bm.rows != am.rows)
    throw pe::Error(a.rhs + ": has " + std::to_string(bm.rows) + " rows, expected " + std::to_string(am.rows) +
                    " to match " + a.in);
  const pe::DType storage = storage_of(a.dtype, am.dtype);
  pe::SolveOptions o = a.options;
  o.precond = pe::parse_precond(a.precond);
  o.allow_fallback = !a.no_fallback;
  o.device = device_of(a.device);
  o.structure = a.spd ? pe::Structure::spd : a.general ? pe::Structure::general : pe::Structure::automatic;
  o.storage_from_input = false;
  o.storage = storage;
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
  const pe::DType storage = storage_of(a.dtype, gm.dtype);
  pe::GramOptions o = a.options;
  o.rhs = a.range ? pe::GramRhs::range : pe::GramRhs::plain;
  o.side = a.side == "primal" ? pe::GramSide::primal : a.side == "dual" ? pe::GramSide::dual : pe::GramSide::automatic;
  o.device = device_of(a.device);
  o.storage_from_input = false;
  o.storage = storage;
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
        o.schedule_source = b.source;
        o.schedule_file = b.schedules;
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
    pe::SolveOptions& so = s_.options;
    solve_->add_option("--in", s_.in, "A: n x n .npy")->required();
    solve_->add_option("--rhs", s_.rhs, "B: n x k .npy")->required();
    solve_->add_option("--out", s_.out, "X: output .npy")->required();
    add_target_option(solve_, so.target, "relative residual ||B - A X||_F / ||B||_F");
    add_max_gemms_option(solve_, so.max_gemms);
    solve_->add_option("--max-corrections", so.max_corrections, "refinement steps after X0 (SolveOptions::max_corrections)")
        ->capture_default_str()
        ->check(integer_in(0, 10));
    add_hint_options(solve_, so.lambda_min_hint, so.kappa_hint);
    solve_->add_option("--inner-target", so.inner_target,
                       "bound of ||I - M A|| the approximate inverse is built to; 0: sqrt(target), clamped "
                       "(SolveOptions::inner_target)")
        ->check(zero_or_open_unit_interval());
    solve_->add_option("--polar-target", so.polar_target,
                       "general A: bound of |1 - sigma^2(U)| where the polar iteration stops (SolveOptions::polar_target)")
        ->capture_default_str()
        ->check(in_unit_interval(false));
    add_precond_option(solve_, s_.precond);
    add_symmetry_tolerance_option(solve_, so.symmetry_tolerance);
    add_dtype_option(solve_, s_.dtype);
    add_schedules_option(solve_, so.schedule_source, so.schedule_file);
    auto* spd = solve_->add_flag("--spd", s_.spd, "treat A as symmetric positive definite; default: detect (structure)");
    auto* general = solve_->add_flag("--general", s_.general, "treat A as a general matrix: the polar path (structure)");
    spd->excludes(general);
    solve_->add_flag("--no-fallback", s_.no_fallback, "report non-convergence instead of running LU (allow_fallback)");
    add_device_option(solve_, s_.device);
    add_json_flag(solve_, s_.json);

    gram_ = app.add_subcommand("gram-apply",
                               "Z = (G^T G + lambda I)^{-1/p} B, or with --range Z = (G^T G + lambda I)^{-1/p} G^T C");
    pe::GramOptions& go = g_.options;
    add_p_option(gram_, go.p);
    gram_->add_option("--in", g_.in, "G: m x n .npy")->required();
    gram_->add_option("--rhs", g_.rhs, "B: n x k .npy (C: m x k with --range)")->required();
    gram_->add_option("--out", g_.out, "Z: output n x k .npy")->required();
    gram_->add_option("--lambda", go.lambda, "ridge: A = G^T G + lambda I (GramOptions::lambda)")->check(finite_at_least(0));
    gram_->add_flag("--range", g_.range,
                    "the right-hand side is G^T C (enables the dual identity G^T (G G^T)^{-1/p}; GramOptions::rhs)");
    gram_->add_option("--side", g_.side, "auto | primal | dual; dual needs --range (GramOptions::side)")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "primal", "dual"}));
    add_target_option(gram_, go.target, "tracked bound of ||X^p A - I||");
    add_max_gemms_option(gram_, go.max_gemms);
    add_degree_option(gram_, go.degree);
    add_hint_options(gram_, go.lambda_min_hint, go.kappa_hint);
    add_dtype_option(gram_, g_.dtype);
    add_schedules_option(gram_, go.schedule_source, go.schedule_file);
    add_device_option(gram_, g_.device);
    add_json_flag(gram_, g_.json);

    bench_ = app.add_subcommand("bench-solve", "pe::solve vs LAPACK dgesv/sgesv: kappa 1e3 and 1e6, fp64 and fp32");
    bench_->add_option("--repeats", b_.repeats, "runs per case (median reported)")->check(CLI::Range(1, 100));
    bench_->add_option("--n", b_.n, "matrix size")->check(CLI::Range(8, 8192));
    bench_->add_option("--k", b_.k, "right-hand sides")->check(CLI::Range(1, 8192));
    bench_->add_flag("!--no-general", b_.general, "skip the non-symmetric systems");
    add_schedules_option(bench_, b_.source, b_.schedules);
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
