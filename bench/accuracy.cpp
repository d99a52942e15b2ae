// pe-bench-accuracy: the accuracy figures of issue 16 on the CPU, as markdown tables for bench/RESULTS.md.
//   formats     the GPU formats emulated by the CPU backend (tf32 products, bf16 and f16 storage) against
//               native f32: true eps(X) = max|lambda(X^p A) - 1| and relative error (both in f64 against
//               the f32 A), and the emulation's slowdown
//   correction  the Newton correction (runtime/correction) of the runtime's f32 root: eps before and
//               after, its time against the root's and against the eigendecomposition root's
// (The GEMM-only quadrature candidate for the p = 2 step was measured with this tool at commit 3b0ffef and
// removed: 4 to 5 times the eigendecomposition root's time here; bench/RESULTS.md.)
// Times are medians of --repeats runs; eps and errors are measured in double (reference::root_eps).
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "correction/newton.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"
#include "report_figures.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using pe::detail::Backend;
using pe::detail::HostMat;
using pe::detail::Mat;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class F>
double median_seconds(int repeats, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<double> as_f32(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<double>(static_cast<float>(v[i]));
  return out;
}

HostMat host(std::vector<double>& v, std::int64_t n) { return HostMat{v.data(), pe::DType::f64, n, n, n, 1, n * n}; }

void print_machine(const char* what) {
  const char* threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("pe-bench-accuracy %s: CPU backend, OpenBLAS core %s, OPENBLAS_NUM_THREADS=%s; A log-spaced in "
              "[1/kappa, 1] with Haar eigenvectors, stored in f32; eps = max|lambda(X^p A) - 1| in f64 through "
              "chol(A); error = ||X - A^{-1/p}||_F / ||A^{-1/p}||_F against dsyevd in double\n\n",
              what, openblas_get_corename(), threads ? threads : "unset");
}

struct FormatRow {
  const char* name;
  pe::DType storage;
  pe::ComputeMode compute;
};

int run_formats(const std::vector<std::int64_t>& sizes, const std::vector<int>& powers,
                const std::vector<double>& kappas, double target, int repeats) {
  print_machine("formats");
  std::printf("| n | p | κ | format | steps | GEMMs | eps(X) | error | fallback | time [s] | vs f32 |\n");
  std::printf("|--:|--:|--:|---|--:|--:|--:|--:|---|--:|--:|\n");
  const FormatRow rows[] = {{"f32", pe::DType::f32, pe::ComputeMode::native},
                            {"tf32 (emulated)", pe::DType::f32, pe::ComputeMode::tf32},
                            {"bf16 (emulated)", pe::DType::bf16, pe::ComputeMode::native},
                            {"f16 (emulated)", pe::DType::f16, pe::ComputeMode::native}};
  for (std::int64_t n : sizes)
    for (int p : powers)
      for (double kappa : kappas) {
        const auto a = as_f32(
            pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), 7));
        const auto ref = pe::reference::inverse_root(a, n, p);
        const std::vector<float> af(a.begin(), a.end());
        // Reports and errors first, then the timings interleaved across formats (load on a shared machine
        // hits them alike), medians.
        struct Result {
          pe::Report report;
          std::vector<double> x;
          std::string error;
          std::vector<double> seconds;
        };
        std::vector<Result> results(std::size(rows));
        std::vector<float> xf(a.size());
        const pe::Matrix av{af.data(), n, n, n, pe::DType::f32};
        const pe::MutableMatrix xv{xf.data(), n, n, n, pe::DType::f32};
        const auto options = [&](const FormatRow& row) {
          pe::Options o;
          o.p = p;
          o.target = target;
          o.storage_from_input = false;
          o.storage = row.storage;
          o.compute = row.compute;
          return o;
        };
        for (std::size_t f = 0; f < std::size(rows); ++f) {
          try {
            results[f].report = pe::inverse_root(av, xv, options(rows[f]));
            results[f].x.assign(xf.begin(), xf.end());
          } catch (const pe::Error& e) {
            const std::string what = e.what();
            results[f].error = what.find("not positive definite") != std::string::npos
                                   ? "A is indefinite once stored (pe::Error)"
                                   : what;
          }
        }
        for (int r = 0; r < repeats; ++r)
          for (std::size_t f = 0; f < std::size(rows); ++f)
            if (results[f].error.empty()) {
              const pe::Options o = options(rows[f]);
              const auto t0 = Clock::now();
              pe::inverse_root(av, xv, o);
              results[f].seconds.push_back(seconds_since(t0));
            }
        const auto median = [](std::vector<double> v) {
          std::sort(v.begin(), v.end());
          return v[v.size() / 2];
        };
        const double f32_seconds = median(results[0].seconds);
        for (std::size_t f = 0; f < std::size(rows); ++f) {
          const Result& res = results[f];
          if (!res.error.empty()) {
            std::printf("| %lld | %d | %.0e | %s | - | - | - | - | %s | - | - |\n", static_cast<long long>(n), p, kappa,
                        rows[f].name, res.error.c_str());
            continue;
          }
          bool finite = true;
          for (double v : res.x) finite = finite && std::isfinite(v);
          const double eps = finite ? pe::reference::root_eps(a, res.x, n, p) : NAN;
          const double t = median(res.seconds);
          std::printf("| %lld | %d | %.0e | %s | %d | %d | %.2e | %.2e | %s | %.4f | %.2f |\n", static_cast<long long>(n),
                      p, kappa, rows[f].name, res.report.steps, res.report.gemms, eps,
                      pe::reference::relative_error(res.x, ref), res.report.fallback ? "yes" : "no", t, t / f32_seconds);
        }
        std::fflush(stdout);
      }
  return 0;
}

int run_correction(const std::vector<std::int64_t>& sizes, const std::vector<int>& powers,
                   const std::vector<double>& kappas, double target, int repeats) {
  print_machine("correction");
  std::printf("root: pe::inverse_root in f32 (target %g); correction: NewtonCorrection on an f64 backend "
              "(prepare = symmetric_eigen and the divisor, once per A; step = residual, basis changes, division, "
              "rounded to f32); eig root: Backend::exact_inverse_root (dsyevd in double, rounded to f32); floor = "
              "eps of the exact root rounded to f32; GEMM-equiv. = time / one n x n x n dgemm\n\n",
              target);
  std::printf("| n | p | κ | eps root | eps corrected | floor | root [s] | prepare [s] | step [s] | correction "
              "[s] | eig root [s] | correction / root | correction / eig root | correction GEMM-equiv. | eig root "
              "GEMM-equiv. |\n");
  std::printf("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (std::int64_t n : sizes)
    for (int p : powers)
      for (double kappa : kappas) {
        auto a = as_f32(
            pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), 7));
        const std::vector<float> af(a.begin(), a.end());
        std::vector<float> xf(a.size());
        pe::Options o;
        o.p = p;
        o.target = target;
        const pe::Matrix av{af.data(), n, n, n, pe::DType::f32};
        const pe::MutableMatrix xv{xf.data(), n, n, n, pe::DType::f32};
        pe::inverse_root(av, xv, o);
        const double t_root = median_seconds(repeats, [&] { pe::inverse_root(av, xv, o); });
        std::vector<double> root(xf.begin(), xf.end());
        const double eps_root = pe::reference::root_eps(a, root, n, p);

        auto store = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native);
        auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
        Mat aw = wide->allocate(n, n, 1), xs = store->allocate(n, n, 1), as = store->allocate(n, n, 1);
        Mat xe = store->allocate(n, n, 1), x_root = store->allocate(n, n, 1);
        wide->upload(host(a, n), aw);
        store->upload(host(a, n), as);
        store->upload(host(root, n), x_root);
        pe::detail::NewtonCorrection correction(*wide, n, 1, p);
        const double t_prepare = median_seconds(repeats, [&] {
          if (!correction.prepare(aw)) throw pe::Error("correction: " + correction.failure());
        });
        const double t_step = median_seconds(repeats, [&] {
          store->copy(x_root, xs);
          correction.correct(*store, xs);
        });
        std::vector<double> corrected(a.size());
        store->download(xs, host(corrected, n));
        const double eps_corrected = pe::reference::root_eps(a, corrected, n, p);
        const double t_exact = median_seconds(repeats, [&] {
          if (!store->exact_inverse_root(as, p, xe)) throw pe::Error("exact root failed");
        });
        std::vector<double> exact(a.size());
        store->download(xe, host(exact, n));
        const double floor = pe::reference::root_eps(a, exact, n, p);
        std::vector<double> c(a.size());
        const auto ni = static_cast<blasint>(n);
        const double t_dgemm = median_seconds(repeats, [&] {
          cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0, a.data(), ni, exact.data(), ni, 0.0,
                      c.data(), ni);
        });
        const double t_correction = t_prepare + t_step;
        std::printf("| %lld | %d | %.0e | %.2e | %.2e | %.2e | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f | "
                    "%.1f |\n",
                    static_cast<long long>(n), p, kappa, eps_root, eps_corrected, floor, t_root, t_prepare, t_step,
                    t_correction, t_exact, t_correction / t_root, t_correction / t_exact, t_correction / t_dgemm,
                    t_exact / t_dgemm);
        std::fflush(stdout);
      }
  return 0;
}

// The drift model against measurement: for each matrix and target, the run with every step in the
// storage precision (elevated_steps = 0) and the default run (per-step precision chosen by the model).
// predicted = model_eps + drift_eps + floor_eps is what the engine plans with; true eps is measured.
int run_drift(const std::vector<std::int64_t>& sizes, const std::vector<int>& powers, const std::vector<double>& kappas,
              const std::vector<double>& targets, const std::vector<std::string>& spectrum_names, int repeats) {
  print_machine("drift");
  std::printf("| n | p | κ | spectrum | target | steps in | GEMMs (elevated) | model eps | drift eps | floor eps | "
              "predicted | verified eps | true eps | true / predicted | reached | time [s] |\n");
  std::printf("|--:|--:|--:|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|\n");
  const std::pair<pe::reference::Spectrum, const char*> spectra[] = {
      {pe::reference::Spectrum::spread, "spread"},
      {pe::reference::Spectrum::clustered_low, "clustered_low"},
      {pe::reference::Spectrum::clustered_high, "clustered_high"}};
  for (std::int64_t n : sizes)
    for (int p : powers)
      for (double kappa : kappas)
        for (const auto& [spectrum, spectrum_name] : spectra) {
          if (std::find(spectrum_names.begin(), spectrum_names.end(), spectrum_name) == spectrum_names.end()) continue;
          const auto a = as_f32(pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, spectrum), 7));
          const std::vector<float> af(a.begin(), a.end());
          std::vector<float> xf(a.size());
          const pe::Matrix av{af.data(), n, n, n, pe::DType::f32};
          const pe::MutableMatrix xv{xf.data(), n, n, n, pe::DType::f32};
          for (double target : targets)
            for (int elevated : {0, -1}) {
              pe::Options o;
              o.p = p;
              o.target = target;
              o.elevated_steps = elevated;
              pe::RootPlan plan(pe::describe(av), o);
              const pe::Report r = plan.execute(av, xv);
              const double true_eps = pe::reference::root_eps(a, std::vector<double>(xf.begin(), xf.end()), n, p);
              const double seconds = median_seconds(repeats, [&] { plan.execute(av, xv); });
              const int elevated_gemms = pe_bench::elevated_gemms(r);
              const double predicted = r.model_eps + r.drift_eps + r.floor_eps;
              char verified_text[32] = "-";
              if (r.verified_eps) std::snprintf(verified_text, sizeof verified_text, "%.2e", *r.verified_eps);
              const std::string verified = verified_text;
              std::printf("| %lld | %d | %.0e | %s | %.0e | %s | %d (%d) | %.2e | %.2e | %.2e | %.2e | %s | %.2e | %.2f | %s | "
                          "%.4f |\n",
                          static_cast<long long>(n), p, kappa, spectrum_name, target, elevated == 0 ? "f32" : "per step",
                          r.gemms, elevated_gemms, r.model_eps, r.drift_eps, r.floor_eps, predicted,
                          verified.c_str(),
                          true_eps, true_eps / predicted, r.target_reached ? "yes" : "no", seconds);
              std::fflush(stdout);
            }
        }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pe-bench-accuracy: emulated GPU formats and the Newton correction on the CPU (markdown tables)"};
  app.require_subcommand(1);
  std::vector<std::int64_t> sizes;
  std::vector<int> powers{2};
  std::vector<double> kappas;
  double target = 1e-3;
  int repeats = 3;
  std::vector<double> targets{1e-3, 1e-4};
  std::vector<std::string> spectrum_names{"spread", "clustered_low", "clustered_high"};
  for (auto* sub : {app.add_subcommand("formats", "tf32 / bf16 / f16 emulated against native f32"),
                    app.add_subcommand("correction", "the Newton correction of the f32 root"),
                    app.add_subcommand("drift", "the drift model's prediction against the measured eps, f32 storage, "
                                                "all-f32 and per-step precision")}) {
    sub->add_option("--n", sizes, "matrix sizes")->check(CLI::Range(std::int64_t{2}, std::int64_t{16384}));
    sub->add_option("--p", powers, "roots p")->check(CLI::Range(1, 64));
    sub->add_option("--kappa", kappas, "condition numbers")->check(CLI::Range(1.0, 1e12));
    if (sub->get_name() == "drift") {
      sub->add_option("--target", targets, "the runtime's targets")->check(CLI::Range(1e-12, 0.5));
      sub->add_option("--spectrum", spectrum_names, "eigenvalue distributions")
          ->check(CLI::IsMember({"spread", "clustered_low", "clustered_high"}));
    } else {
      sub->add_option("--target", target, "the runtime's target")->check(CLI::Range(1e-12, 0.5));
    }
    sub->add_option("--repeats", repeats, "timed runs (median)")->check(CLI::Range(1, 100));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("formats")) {
      if (sizes.empty()) sizes = {256};
      if (kappas.empty()) kappas = {1e2, 1e4};
      return run_formats(sizes, powers, kappas, target, repeats);
    }
    if (app.got_subcommand("drift")) {
      if (sizes.empty()) sizes = {64, 256, 1024};
      if (kappas.empty()) kappas = {1e2, 1e4};
      return run_drift(sizes, powers, kappas, targets, spectrum_names, repeats);
    }
    if (sizes.empty()) sizes = {512, 1024, 2048};
    if (kappas.empty()) kappas = {1e4};
    return run_correction(sizes, powers, kappas, target, repeats);
  } catch (const std::exception& e) {
    std::cerr << "pe-bench-accuracy: error: " << e.what() << "\n";
    return 1;
  }
}
