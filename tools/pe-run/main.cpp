// pe-run: inverse p-th roots of .npy matrices from the command line, a demo and a small CPU bench.
#include <cblas.h>
#include <lapacke.h>

#include <CLI/CLI.hpp>
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
#include "pe/detail/format.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"
#include "solve_commands.hpp"

namespace {

// root and apply: the library's Options, bound flag by flag, and what pe-run resolves after reading.
struct RootArgs {
  pe::Options options;
  std::string in, out, rhs;
  std::string precond = "frobenius";
  std::string dtype;  // empty: the input file's
  std::string device = "cpu";
  std::string compute = "native";
  std::string mode = "auto";
  std::string fallback = "on_failure";
  bool json = false;
};

void add_common(CLI::App* app, RootArgs& a) {
  pe::Options& o = a.options;
  pe_run::add_p_option(app, o.p);
  app->add_option("--in", a.in, "A: symmetric positive definite n x n .npy")->required();
  app->add_option("--out", a.out, "output .npy")->required();
  pe_run::add_target_option(app, o.target, "tracked bound of ||X^p A - I||");
  pe_run::add_max_gemms_option(app, o.max_gemms);
  pe_run::add_max_steps_option(app, o.max_steps);
  pe_run::add_degree_option(app, o.degree);
  pe_run::add_precond_option(app, a.precond);
  app->add_option("--ridge", o.ridge, "iterate on A + ridge I: the result is that matrix's root (Options::ridge)")
      ->check(pe_run::finite_at_least(0));
  app->add_option("--l-target", o.l_target,
                  "raise the normalised lower bound to this by a diagonal shift, which changes A (Options::l_target)")
      ->check(pe_run::in_unit_interval(true));
  pe_run::add_hint_options(app, o.lambda_min_hint, o.kappa_hint);
  app->add_option("--symmetrize-every", o.symmetrize_every,
                  "symmetrise the residual every k steps; 0: never (Options::symmetrize_every)")
      ->capture_default_str()
      ->check(pe_run::integer_in(0, 1 << 20));
  app->add_flag("--renormalize", o.renormalize,
                "re-centre the residual on its trace where the tables' guard allows (Options::renormalize)");
  pe_run::add_symmetry_tolerance_option(app, o.symmetry_tolerance);
  pe_run::add_schedules_option(app, o.schedule_source, o.schedule_file);
  pe_run::add_dtype_option(app, a.dtype);
  pe_run::add_device_option(app, a.device);
  app->add_option("--compute", a.compute,
                  "native | tf32 (TF32 products, f32 storage) | bf16 | f16 (iteration storage; the output keeps "
                  "--dtype). Emulated on the CPU, native on CUDA")
      ->check(CLI::IsMember({"native", "tf32", "bf16", "f16"}));
  app->add_option("--lambda-max-hint", o.lambda_max_hint,
                  "a known upper bound of lambda_max(A); spares a norm pass (Options::lambda_max_hint)")
      ->check(pe_run::finite_at_least(0));
  app->add_flag("--verify,!--no-verify", o.verify,
                "certify the returned root (default on; off: only the interval model's bound, certified false) "
                "(Options::verify)");
  app->add_option("--fallback", a.fallback,
                  "never | on_failure | on_unverified: when the exact root replaces the iteration's (Options::fallback)")
      ->capture_default_str()
      ->check(CLI::IsMember({"never", "on_failure", "on_unverified"}));
  app->add_option("--fallback-factor", o.fallback_factor,
                  "on_unverified: fall back when the verified bound exceeds this times the target (Options::fallback_factor)")
      ->capture_default_str()
      ->check(pe_run::finite_at_least(1));
  app->add_option("--elevated-steps", o.elevated_steps,
                  "first steps run one precision level up; -1: as the drift model says (Options::elevated_steps)")
      ->capture_default_str()
      ->check(pe_run::integer_in(-1, pe::kDefaultStepLimit));
  app->add_option("--newton-steps", o.newton_steps,
                  "Newton corrections of the finished root, through A's eigendecomposition (Options::newton_steps)")
      ->capture_default_str()
      ->check(pe_run::integer_in(0, 4));
  pe_run::add_json_flag(app, a.json);
}

pe::Options options_from(const RootArgs& a, pe::DType storage) {
  pe::Options o = a.options;
  o.precond = pe::parse_precond(a.precond);
  o.storage_from_input = false;
  o.storage = storage;
  o.fallback = pe::parse_fallback(a.fallback);
  if (a.compute == "tf32") {
    if (storage != pe::DType::f32)
      throw pe::Error("--compute tf32 needs f32 storage (--dtype f32 or an f32 input), got " +
                      std::string(pe::to_string(storage)));
    o.compute = pe::ComputeMode::tf32;
  } else if (a.compute == "bf16" || a.compute == "f16") {
    o.storage = a.compute == "bf16" ? pe::DType::bf16 : pe::DType::f16;
  }
  o.device = pe_run::device_of(a.device);
  return o;
}

void print_report(const pe::Report& r, bool json) {
  if (json) {
    std::cout << pe::to_json(r) << "\n";
    return;
  }
  std::printf("steps %d, GEMMs %d (degree %d), model bound %.3g, verified %s, target %s, fallback %s%s, %.3f s\n",
              r.steps, r.gemms, r.degree, r.model_eps,
              r.verified_eps ? pe::detail::format_number(*r.verified_eps).c_str() : "no",
              r.target_reached ? "reached" : "not reached", r.fallback ? "yes: " : "no",
              r.fallback ? r.fallback_reason.c_str() : "", r.seconds);
  for (const std::string& note : r.notes) std::printf("  note: %s\n", note.c_str());
}

int run_root(const RootArgs& a) {
  const pe_run::NpyArray in = pe_run::read_npy(a.in);
  if (in.rows != in.cols)
    throw pe::Error(a.in + ": shape (" + std::to_string(in.rows) + ", " + std::to_string(in.cols) + ") is not square");
  const pe::DType storage = pe_run::storage_of(a.dtype, in.dtype);
  std::vector<double> x(in.data.size());
  const std::int64_t n = in.rows;
  // C order = row-major; A is symmetric, X too.
  const pe::Report r = pe::inverse_root(pe::Matrix{in.data.data(), n, n, n, pe::DType::f64, pe::Layout::row_major},
                                        pe::MutableMatrix{x.data(), n, n, n, pe::DType::f64, pe::Layout::row_major},
                                        options_from(a, storage));
  pe_run::write_npy(a.out, n, n, storage, x);
  print_report(r, a.json);
  return 0;
}

int run_apply(const RootArgs& a) {
  const pe_run::NpyArray in = pe_run::read_npy(a.in);
  const pe_run::NpyArray rhs = pe_run::read_npy(a.rhs);
  if (in.rows != in.cols)
    throw pe::Error(a.in + ": shape (" + std::to_string(in.rows) + ", " + std::to_string(in.cols) + ") is not square");
  if (rhs.rows != in.rows)
    throw pe::Error(a.rhs + ": has " + std::to_string(rhs.rows) + " rows, expected " + std::to_string(in.rows) +
                    " to match " + a.in);
  pe::Options o = options_from(a, pe_run::storage_of(a.dtype, in.dtype));
  o.mode = a.mode == "direct" ? pe::ApplyMode::direct
                              : a.mode == "materialize" ? pe::ApplyMode::materialize : pe::ApplyMode::automatic;
  const std::int64_t n = in.rows, k = rhs.cols;
  std::vector<double> z(rhs.data.size());
  const pe::Report r =
      pe::apply_inverse_root(pe::Matrix{in.data.data(), n, n, n, pe::DType::f64, pe::Layout::row_major},
                             pe::Matrix{rhs.data.data(), n, k, k, pe::DType::f64, pe::Layout::row_major},
                             pe::MutableMatrix{z.data(), n, k, k, pe::DType::f64, pe::Layout::row_major}, o);
  pe_run::write_npy(a.out, n, k, o.storage, z);
  print_report(r, a.json);
  return 0;
}

int run_demo(pe::ScheduleSource source, const std::string& schedules) {
  const std::int64_t n = 256;
  const double kappa = 1e4;
  const std::vector<double> a =
      pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), 20240601);
  std::printf("pe-run demo: random SPD matrix, n = %lld, kappa = %.0e (log-spaced spectrum), target 1e-3\n",
              static_cast<long long>(n), kappa);
  std::printf("error: ||X - A^{-1/p}||_F / ||A^{-1/p}||_F against LAPACK dsyevd in double\n\n");
  std::printf("%-3s %-5s %-6s %5s %5s %12s %9s %12s %9s\n", "p", "dtype", "degree", "steps", "GEMMs", "tracked bound",
              "certified", "error", "time [s]");
  for (int p : {2, 4})
    for (pe::DType dt : {pe::DType::f32, pe::DType::f64}) {
      pe::Options o;
      o.p = p;
      o.target = 1e-3;
      o.storage_from_input = false;
      o.storage = dt;
      o.schedule_source = source;
      o.schedule_file = schedules;
      std::vector<double> x(a.size());
      const pe::Report r = pe::inverse_root(pe::Matrix{a.data(), n, n, n}, pe::MutableMatrix{x.data(), n, n, n}, o);
      const double err = pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p));
      std::printf("%-3d %-5s %-6d %5d %5d %12.3g %9s %12.3g %9.4f%s\n", p, pe::to_string(dt), r.degree, r.steps,
                  r.gemms, r.final_eps, r.certified ? "yes" : "no", err, r.seconds, r.fallback ? "  (fallback)" : "");
    }
  std::printf("\nThe error of X is about bound / p (||X^p A - I|| <= eps gives |x/x* - 1| <~ eps/p), plus rounding.\n");
  return 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The issue-4 figures: one fp32 root of ours against an ssyevd-based root and against the same number of
// bare n x n x n sgemm calls, for n = 1024, 2048 and p = 2, 4 (kappa 1e4, target 1e-3). The three are
// interleaved within every repeat, so that load on a shared machine hits them alike; medians reported.
int run_bench(int repeats, const std::vector<std::int64_t>& sizes) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::printf("pe-run bench-root: fp32 storage, kappa = 1e4 (log-spaced spectrum), target 1e-3, CPU backend,\n"
              "OpenBLAS with %d thread(s); median of %d interleaved repeats per case.\n"
              "error: ||X - A^{-1/p}||_F / ||A^{-1/p}||_F against LAPACK dsyevd in double\n\n",
              openblas_get_num_threads(), repeats);
  std::printf("%-5s %-2s %5s %5s %9s %9s %9s %10s %8s %9s %10s %11s   %s\n", "n", "p", "steps", "GEMMs", "pe [s]",
              "ssyevd[s]", "sgemm [s]", "pe/sgemm", "eig/pe", "bound", "error", "ssyevd err",
              "fastest run: pe / ssyevd / sgemm [s]");
  for (std::int64_t n : sizes)
    for (int p : {2, 4}) {
      const std::vector<double> a =
          pe::reference::random_spd(pe::reference::make_spectrum(n, 1e4, pe::reference::Spectrum::spread), 7);
      const std::vector<double> ref = pe::reference::inverse_root(a, n, p);
      const auto ni = static_cast<blasint>(n);
      std::vector<float> af(a.begin(), a.end()), xf(a.size()), xe(a.size()), q(a.size()), w(static_cast<std::size_t>(n)),
          c(a.size());
      pe::Options o;
      o.p = p;
      o.target = 1e-3;
      pe::Report r;
      std::vector<double> t_pe, t_eig, t_gemm;
      for (int rep = 0; rep < repeats; ++rep) {
        auto t0 = Clock::now();
        r = pe::inverse_root(pe::Matrix{af.data(), n, n, n, pe::DType::f32},
                             pe::MutableMatrix{xf.data(), n, n, n, pe::DType::f32}, o);
        t_pe.push_back(seconds(t0));
        // ssyevd root: A = Q diag(w) Q^T, then X = (Q D)(Q D)^T with D = diag(w^{-1/(2p)}) by one ssyrk.
        t0 = Clock::now();
        std::copy(af.begin(), af.end(), q.begin());
        if (LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'U', ni, q.data(), ni, w.data()) != 0)
          throw pe::Error("bench-root: ssyevd failed");
        for (std::int64_t j = 0; j < n; ++j) {
          const float f = std::pow(std::max(w[static_cast<std::size_t>(j)], 1e-30f), -0.5f / static_cast<float>(p));
          for (std::int64_t i = 0; i < n; ++i) q[static_cast<std::size_t>(i + j * n)] *= f;
        }
        cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, ni, ni, 1.0f, q.data(), ni, 0.0f, xe.data(), ni);
        t_eig.push_back(seconds(t0));
        t0 = Clock::now();
        for (int g = 0; g < r.gemms; ++g)
          cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, af.data(), ni, xf.data(), ni, 0.0f,
                      c.data(), ni);
        t_gemm.push_back(seconds(t0));
      }
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = j + 1; i < n; ++i) xe[static_cast<std::size_t>(i + j * n)] = xe[static_cast<std::size_t>(j + i * n)];
      const double err = pe::reference::relative_error(std::vector<double>(xf.begin(), xf.end()), ref);
      const double err_eig = pe::reference::relative_error(std::vector<double>(xe.begin(), xe.end()), ref);
      const double pe_s = median(t_pe), eig_s = median(t_eig), gemm_s = median(t_gemm);
      auto fastest = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
      std::printf("%-5lld %-2d %5d %5d %9.3f %9.3f %9.3f %10.2f %8.2f %9.2e %10.2e %11.2e   %.3f / %.3f / %.3f%s\n",
                  static_cast<long long>(n), p, r.steps, r.gemms, pe_s, eig_s, gemm_s, pe_s / gemm_s, eig_s / pe_s,
                  r.final_eps, err, err_eig, fastest(t_pe), fastest(t_eig), fastest(t_gemm),
                  r.fallback ? "  (fallback)" : "");
      std::fflush(stdout);
    }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pe-run: certified fixed-budget inverse p-th roots of SPD matrices"};
  app.require_subcommand(1);
  RootArgs root_args, apply_args;
  auto* root = app.add_subcommand("root", "X = A^{-1/p}: --in A.npy --out X.npy");
  add_common(root, root_args);
  auto* apply = app.add_subcommand("apply", "Z = A^{-1/p} B: --in A.npy --rhs B.npy --out Z.npy");
  add_common(apply, apply_args);
  apply->add_option("--rhs", apply_args.rhs, "B: n x k .npy")->required();
  apply->add_option("--mode", apply_args.mode, "auto | materialize | direct (Options::mode)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "materialize", "direct"}));
  apply->add_option("--reuse-count", apply_args.options.reuse_count,
                    "how many times you will apply this A; biases auto toward materialize (Options::reuse_count)")
      ->check(pe_run::integer_in(1, 1 << 30));
  pe::ScheduleSource demo_source = pe::ScheduleSource::compiled;
  std::string demo_schedules;
  auto* demo = app.add_subcommand("demo", "a built-in example: n = 256, kappa = 1e4, p = 2 and 4, f32 and f64");
  pe_run::add_schedules_option(demo, demo_source, demo_schedules);
  int repeats = 5;
  std::vector<std::int64_t> bench_sizes{1024, 2048};
  auto* bench = app.add_subcommand("bench-root", "fp32 timings: our root vs ssyevd root vs bare sgemm calls");
  bench->add_option("--repeats", repeats, "runs per case (median reported)")->check(CLI::Range(1, 100));
  bench->add_option("--sizes", bench_sizes, "matrix sizes n (default: 1024 2048)")->check(CLI::Range(1, 16384));
  const auto solve_commands = pe_run::add_solve_commands(app);  // solve, gram-apply, bench-solve
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*root) return run_root(root_args);
    if (*apply) return run_apply(apply_args);
    if (*demo) return run_demo(demo_source, demo_schedules);
    if (*bench) return run_bench(repeats, bench_sizes);
    if (solve_commands->selected()) return solve_commands->run();
  } catch (const pe::Error& e) {
    std::cerr << "pe-run: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pe-run: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
