// The Newton correction (runtime/correction/newton.hpp) against closed forms and against eps(X) =
// max|lambda(X^p A) - 1| measured independently in f64 (reference::root_eps, through chol(A)).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "correction/newton.hpp"
#include "runtime_test_support.hpp"

namespace {

using pe::detail::Backend;
using pe::detail::HostMat;
using pe::detail::Mat;
using pe::detail::NewtonCorrection;

Mat upload(Backend& be, const std::vector<double>& host, std::int64_t n, std::int64_t batch = 1) {
  Mat m = be.allocate(n, n, batch);
  be.upload(HostMat{const_cast<double*>(host.data()), pe::DType::f64, n, n, n, batch, n * n}, m);
  return m;
}
std::vector<double> download(Backend& be, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  be.download(m, HostMat{out.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols});
  return out;
}
std::vector<double> rounded_to(pe::DType storage, std::vector<double> v) {
  if (storage == pe::DType::f32)
    for (auto& x : v) x = static_cast<double>(static_cast<float>(x));
  return v;
}
// (I + G) X (I + G)^T with G Gaussian of spectral norm about 2 delta: eps(X) about 4 p delta.
std::vector<double> perturbed(const std::vector<double>& x, std::int64_t n, double delta, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, delta / std::sqrt(static_cast<double>(n)));
  std::vector<double> f(static_cast<std::size_t>(n * n)), ft(f.size());
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) f[static_cast<std::size_t>(i + j * n)] = (i == j) + normal(rng);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) ft[static_cast<std::size_t>(i + j * n)] = f[static_cast<std::size_t>(j + i * n)];
  return pe::reference::multiply(pe::reference::multiply(f, x, n, n, n), ft, n, n, n);
}

// A diagonal A and a diagonal X: the step is scalar Newton on g(x) = x^p lambda with the derivative at
// the exact root, x + (1 - x^p lambda) / (p lambda^{1/p}), for every p, to double rounding.
TEST(NewtonCorrection, DiagonalCaseIsScalarNewton) {
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  const std::int64_t n = 5;
  const std::vector<double> lambda{1e-4, 3e-3, 0.25, 0.5, 1.0};
  for (int p : {1, 2, 3, 4, 5, 8}) {
    std::vector<double> a(static_cast<std::size_t>(n * n)), x(a.size());
    for (std::int64_t i = 0; i < n; ++i) {
      a[static_cast<std::size_t>(i + i * n)] = lambda[static_cast<std::size_t>(i)] * 1e6;  // any scale
      x[static_cast<std::size_t>(i + i * n)] = std::pow(lambda[static_cast<std::size_t>(i)] * 1e6, -1.0 / p) * (1 + 0.01 * (i + 1));
    }
    NewtonCorrection c(*wide, n, 1, p);
    Mat am = upload(*wide, a, n), xm = upload(*wide, x, n);
    ASSERT_TRUE(c.prepare(am)) << c.failure();
    c.correct(xm);
    const std::vector<double> got = download(*wide, xm);
    for (std::int64_t i = 0; i < n; ++i) {
      const double l = a[static_cast<std::size_t>(i + i * n)], x0 = x[static_cast<std::size_t>(i + i * n)];
      const double want = x0 + (1 - std::pow(x0, p) * l) / (p * std::pow(l, 1.0 / p));
      EXPECT_NEAR(got[static_cast<std::size_t>(i + i * n)], want, 1e-13 * want) << "p = " << p << ", i = " << i;
      for (std::int64_t j = 0; j < n; ++j)
        if (j != i) {
          EXPECT_NEAR(got[static_cast<std::size_t>(i + j * n)], 0.0, 1e-14 * want);
        }
    }
    EXPECT_EQ(c.cost().eigendecompositions, 1);
    EXPECT_EQ(c.cost().gemms, c.gemms_per_correction());
  }
}

// In double from a perturbed exact root: p = 1 is a linear equation, solved in one step to double
// rounding; for p >= 2 Newton's error is quadratic, eps_1 ~ eps_0^2 (measured 0.87 to 0.92 eps_0^2 for
// p = 2..5, n = 64, kappa 1e4): bound 2 eps_0^2, plus the f64 floor (8 times the exact root's eps).
TEST(NewtonCorrection, QuadraticInDoubleFromPerturbedExactRoots) {
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  const std::int64_t n = 64;
  for (double kappa : {1e2, 1e4, 1e6})
    for (int p : {1, 2, 3, 4, 8}) {
      SCOPED_TRACE("kappa " + std::to_string(kappa) + ", p = " + std::to_string(p));
      const auto a = pe_test::spd(n, kappa, pe_test::Spectrum::spread, 100 + p);
      const auto exact = pe::reference::inverse_root(a, n, p);
      const double floor = pe::reference::root_eps(a, exact, n, p);
      const auto x0 = perturbed(exact, n, 2e-3 / p, 7);
      const double eps0 = pe::reference::root_eps(a, x0, n, p);
      ASSERT_GT(eps0, 1e-3);
      NewtonCorrection c(*wide, n, 1, p);
      Mat am = upload(*wide, a, n), xm = upload(*wide, x0, n);
      ASSERT_TRUE(c.prepare(am)) << c.failure();
      c.correct(xm);
      const double eps1 = pe::reference::root_eps(a, download(*wide, xm), n, p);
      EXPECT_LE(eps1, (p == 1 ? 0.0 : 2 * eps0 * eps0) + 8 * floor) << "eps0 " << eps0 << ", floor " << floor;
    }
}

// Roots from pe::inverse_root in f32 and f64 storage, and perturbed exact roots rounded to the storage,
// corrected with the wide backend and rounded back: eps(X) drops to the storage floor, the eps of the
// exact root rounded to the storage. The step's result in double is X* + O(eps^2) (above), and rounding
// it adds what rounding X* adds: bound 2 floor (measured up to 1.06 floor in f32; below the floor in f64,
// where the step refines the rounding of the exact root itself). Every step at least squares the error
// (2 eps^2 + 2 floor, as above); a start far from the root (the runtime's f32 roots at kappa 1e6 have
// eps 0.2 to 0.9) takes a few steps: at most 5 here.
struct CorrectionCase {
  std::int64_t n;
  double kappa;
  int p;
  pe::DType storage;
};
class FromRuntimeRoots : public ::testing::TestWithParam<CorrectionCase> {};

TEST_P(FromRuntimeRoots, ReachTheStorageFloor) {
  PE_REQUIRE_TABLES();
  const auto [n, kappa, p, storage] = GetParam();
  const auto a_input = pe_test::spd(n, kappa, pe_test::Spectrum::spread, 200 + static_cast<std::uint64_t>(n) + p);
  const auto a = rounded_to(storage, a_input);  // A as the storage holds it: the correction's matrix
  const auto exact = pe::reference::inverse_root(a, n, p);
  const double floor = pe::reference::root_eps(a, rounded_to(storage, exact), n, p);
  pe::Options o;
  o.p = p;
  o.target = storage == pe::DType::f32 ? 1e-3 : 1e-10;
  o.storage_from_input = false;
  o.storage = storage;
  std::vector<double> root(a.size());
  pe::inverse_root(pe_test::view(a, n, n), pe_test::out(root, n, n), o);
  auto store = pe::detail::make_cpu_backend(storage, pe::ComputeMode::native);
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  NewtonCorrection c(*wide, n, 1, p);
  Mat am = upload(*wide, a, n);
  ASSERT_TRUE(c.prepare(am)) << c.failure();
  for (const auto& [start, x0] : {std::pair<const char*, std::vector<double>>{"runtime root", root},
                                  {"perturbed exact root", rounded_to(storage, perturbed(exact, n, 2e-3 / p, 9))}}) {
    SCOPED_TRACE(start);
    Mat xm = upload(*store, x0, n);
    double eps = pe::reference::root_eps(a, x0, n, p);
    const double eps0 = eps;
    int steps = 0;
    while (steps < 5 && (steps == 0 || eps > 2 * floor)) {
      c.correct(*store, xm);
      const double next = pe::reference::root_eps(a, download(*store, xm), n, p);
      // From the runtime's even-p roots the first step starts from the unsymmetrised X (newton.cpp), whose
      // error the symmetric eps does not measure: the quadratic bound applies from the second step on.
      if (steps > 0 || std::string(start) != "runtime root" || p % 2 == 1) {
        EXPECT_LE(next, 2 * eps * eps + 2 * floor) << "step " << steps + 1 << ": eps " << eps << " -> " << next;
      }
      eps = next;
      ++steps;
    }
    EXPECT_LE(eps, 2 * floor) << "eps " << eps0 << " -> " << eps << " in " << steps << " step(s); floor " << floor;
    EXPECT_LE(eps, eps0 + floor);
  }
}

std::vector<CorrectionCase> correction_cases() {
  std::vector<CorrectionCase> cases;
  for (pe::DType storage : {pe::DType::f32, pe::DType::f64})
    for (double kappa : {1e2, 1e4, 1e6})
      for (int p : {1, 2, 3, 4, 8}) cases.push_back({p == 2 ? 160 : 64, kappa, p, storage});
  return cases;
}
INSTANTIATE_TEST_SUITE_P(Cases, FromRuntimeRoots, ::testing::ValuesIn(correction_cases()), [](const auto& info) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "n%lld_k1e%d_p%d_%s", static_cast<long long>(info.param.n),
                static_cast<int>(std::lround(std::log10(info.param.kappa))), info.param.p,
                pe::to_string(info.param.storage));
  return std::string(buf);
});

// The issue's figure: n = 512, f32, kappa 1e4, p = 2: the runtime's root has eps about 2.2e-3; one
// correction rounded to f32 gives about 1.4e-6, the floor (the exact root rounded to f32).
TEST(NewtonCorrection, IssueFigureN512F32Kappa1e4) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 512;
  const int p = 2;
  const auto a = rounded_to(pe::DType::f32, pe_test::spd(n, 1e4, pe_test::Spectrum::spread, 7));
  const std::vector<float> af(a.begin(), a.end());
  std::vector<float> xf(a.size());
  pe::Options o;
  o.p = p;
  o.verify = false;
  o.elevated_steps = 0;  // the issue's figure: every step in f32 (per-step precision would start lower)
  pe::inverse_root(pe_test::view(af, n, n), pe_test::out(xf, n, n), o);
  const double eps0 = pe::reference::root_eps(a, std::vector<double>(xf.begin(), xf.end()), n, p);
  // All-f32 steps leave eps far above the f32 floor (about 1e-6 here): 2e-3 in the issue's run, about 4e-4
  // now that the planner takes a step more to leave room for rounding.
  EXPECT_GT(eps0, 1e-4);
  EXPECT_LT(eps0, 5e-3);
  // The engine corrects the iterate before symmetrising it (its antisymmetric part helps for even p).
  o.newton_steps = 1;
  const pe::Report r = pe::inverse_root(pe_test::view(af, n, n), pe_test::out(xf, n, n), o);
  EXPECT_EQ(r.newton_steps, 1);
  const double eps1 = pe::reference::root_eps(a, std::vector<double>(xf.begin(), xf.end()), n, p);
  const double floor = pe::reference::root_eps(a, rounded_to(pe::DType::f32, pe::reference::inverse_root(a, n, p)), n, p);
  std::printf("n = 512, f32, kappa 1e4, p = 2: eps %.3g -> %.3g after one correction (floor %.3g)\n", eps0, eps1, floor);
  EXPECT_LE(eps1, 2 * floor);
  EXPECT_LT(eps1, 3e-6);
}

// Batch members are corrected independently (different spectra and scales).
TEST(NewtonCorrection, BatchMembersAreIndependent) {
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  const std::int64_t n = 40;
  const int p = 3;
  std::vector<double> a, x0, exact;
  for (int k = 0; k < 2; ++k) {
    auto ak = pe_test::spd(n, k == 0 ? 1e2 : 1e5, pe_test::Spectrum::spread, 300 + k);
    for (auto& v : ak) v *= k == 0 ? 1e-20 : 3e7;
    const auto xk = pe::reference::inverse_root(ak, n, p);
    const auto pk = perturbed(xk, n, 1e-3, 400 + k);
    a.insert(a.end(), ak.begin(), ak.end());
    exact.insert(exact.end(), xk.begin(), xk.end());
    x0.insert(x0.end(), pk.begin(), pk.end());
  }
  NewtonCorrection c(*wide, n, 2, p);
  Mat am = upload(*wide, a, n, 2), xm = upload(*wide, x0, n, 2);
  ASSERT_TRUE(c.prepare(am)) << c.failure();
  c.correct(xm);
  const auto got = download(*wide, xm);
  for (int k = 0; k < 2; ++k) {
    const auto member = [&](const std::vector<double>& v) {
      return std::vector<double>(v.begin() + k * n * n, v.begin() + (k + 1) * n * n);
    };
    const double before = pe::reference::root_eps(member(a), member(x0), n, p);
    const double after = pe::reference::root_eps(member(a), member(got), n, p);
    EXPECT_LE(after, 2 * before * before + 1e-9) << "member " << k << ": " << before << " -> " << after;
  }
}

// Misuse gets a pe::Error naming what is wrong; an indefinite A is refused by prepare() with a reason.
TEST(NewtonCorrection, RejectsMisuseAndIndefiniteMatrices) {
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  auto narrow = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native);
  EXPECT_THROW(NewtonCorrection(*narrow, 4, 1, 2), pe::Error);
  EXPECT_THROW(NewtonCorrection(*wide, 4, 1, 0), pe::Error);
  EXPECT_THROW(NewtonCorrection(*wide, 0, 1, 2), pe::Error);
  const std::int64_t n = 8;
  NewtonCorrection c(*wide, n, 1, 2);
  Mat x = wide->allocate(n, n, 1);
  try {
    c.correct(x);
    ADD_FAILURE() << "correct() ran without prepare()";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("prepare"), std::string::npos) << e.what();
  }
  auto w = pe::reference::make_spectrum(n, 10, pe_test::Spectrum::spread);
  w[0] = -0.1;
  Mat bad = upload(*wide, pe::reference::random_spd(w, 3), n);
  EXPECT_FALSE(c.prepare(bad));
  EXPECT_NE(c.failure().find("not numerically positive definite"), std::string::npos) << c.failure();
  EXPECT_THROW(c.correct(x), pe::Error);
  Mat wrong = wide->allocate(n + 1, n + 1, 1);
  EXPECT_THROW(c.prepare(wrong), pe::Error);
}

}  // namespace
