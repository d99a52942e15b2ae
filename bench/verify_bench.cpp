// pe-bench-verify: what the verified certificate (runtime/verify) costs next to the root it certifies,
// measured side by side in one run on the CPU backend. For each n: a default root (pe::inverse_root, f32,
// p = 2, kappa = 1e4, target 1e-3) and RootVerifier::certify of it in binary64; then the same in f64
// (target 1e-8) certified in extended (Ozaki-sliced) products. Times are medians; moving A and X into
// the f64 backend (an upload here, Backend::import_from in the engine) is timed apart as "import".
#include <cblas.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"
#include "verify/root_verifier.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median_seconds(int repeats, const auto& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::int64_t n;
  const char* dtype;
  double root_seconds, certify_seconds, import_seconds, plan_seconds, bound, rounding, model_eps;
  int factorizations;
};

template <class T>
Row measure(std::int64_t n, int p, double kappa, double target, int repeats, std::uint64_t seed) {
  constexpr pe::DType dtype = std::is_same_v<T, float> ? pe::DType::f32 : pe::DType::f64;
  const std::vector<double> a64 =
      pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), seed);
  std::vector<T> a(a64.begin(), a64.end()), x(a.size());
  pe::Options opt;
  opt.p = p;
  opt.target = target;
  pe::Report report;
  const auto root = [&] {
    report = pe::inverse_root(pe::Matrix{a.data(), n, n, n, dtype}, pe::MutableMatrix{x.data(), n, n, n, dtype}, opt);
  };
  root();  // untimed warm-up, also the X the certificate is for
  const double root_seconds = median_seconds(repeats, root);
  // The engine hands the verifier the root as it returns it, exactly symmetric (mirrored lower part).
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) x[static_cast<std::size_t>(j + i * n)] = x[static_cast<std::size_t>(i + j * n)];

  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  const auto plan_start = Clock::now();
  pe::detail::Mat am = wide->allocate(n, n, 1), xm = wide->allocate(n, n, 1);
  pe::detail::RootVerifier verifier(*wide, n, 1, p, pe::detail::verify_arithmetic_for(dtype));
  const double plan_seconds = std::chrono::duration<double>(Clock::now() - plan_start).count();
  std::vector<pe::detail::RootCertificate> certs;
  const auto import = [&] {
    wide->upload(pe::detail::HostMat{a.data(), dtype, n, n, n, 1, n * n}, am);
    wide->upload(pe::detail::HostMat{x.data(), dtype, n, n, n, 1, n * n}, xm);
  };
  const auto certify = [&] { certs = verifier.certify(am, xm); };
  import();
  certify();
  const double import_seconds = median_seconds(repeats, import);
  const double certify_seconds = median_seconds(repeats, certify);
  if (!certs.front().proven) std::fprintf(stderr, "n = %lld: not proven: %s\n", static_cast<long long>(n), certs.front().failure.c_str());
  return {n, pe::to_string(dtype), root_seconds, certify_seconds, import_seconds, plan_seconds,
          certs.front().proven ? certs.front().eps_bound : -1.0, certs.front().rounding_term, report.final_eps,
          verifier.factorizations()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pe-bench-verify: the certificate's cost next to the root it certifies"};
  std::vector<std::int64_t> sizes{1024, 2048};
  int repeats = 3, p = 2;
  double kappa = 1e4;
  bool with_f64 = true;
  app.add_option("--n", sizes, "matrix orders")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "timed runs per measurement (median)")->check(CLI::PositiveNumber);
  app.add_option("--p", p, "root: X ~ A^{-1/p}")->check(CLI::PositiveNumber);
  app.add_option("--kappa", kappa, "condition number of A (log-spaced spectrum)")->check(CLI::Range(1.0, 1e16));
  app.add_flag("!--no-f64", with_f64, "skip the f64 rows");
  CLI11_PARSE(app, argc, argv);

  std::printf("OpenBLAS core %s, p = %d, kappa = %g, %d timed runs each (median)\n\n", openblas_get_corename(), p, kappa,
              repeats);
  std::printf("| n | storage | root [s] | certify [s] | certify / root | import [s] | plan [s] | verified eps | its rounding term | model eps | Cholesky |\n");
  std::printf("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (std::int64_t n : sizes) {
    std::vector<Row> rows{measure<float>(n, p, kappa, 1e-3, repeats, 20261201 + static_cast<std::uint64_t>(n))};
    if (with_f64) rows.push_back(measure<double>(n, p, kappa, 1e-8, repeats, 20261201 + static_cast<std::uint64_t>(n)));
    for (const Row& r : rows) {
      std::printf("| %lld | %s | %.3f | %.3f | %.1f %% | %.3f | %.3f | %.2e | %.1e | %.2e | %d |\n", static_cast<long long>(r.n),
                  r.dtype, r.root_seconds, r.certify_seconds, 100 * r.certify_seconds / r.root_seconds, r.import_seconds, r.plan_seconds,
                  r.bound, r.rounding, r.model_eps, r.factorizations);
      std::fflush(stdout);
    }
  }
  return 0;
}
