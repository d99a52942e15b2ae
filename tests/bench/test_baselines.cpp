// The baselines pe-bench compares against must themselves be right, or the ratios mean nothing.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <vector>

#include "baselines.hpp"
#include "pe/schedule_types.hpp"
#include "reference.hpp"

namespace {

using pe::reference::Spectrum;

TEST(NewtonScaling, IsTheMidpointForPEqualsOne) {
  // Guo & Higham's c for p = 1 reduces to (lambda_min + lambda_max) / 2, the classic Newton-Schulz scaling.
  EXPECT_NEAR(pe_bench::newton_scaling(0.25, 3.0, 1), 1.625, 1e-14);
  EXPECT_NEAR(pe_bench::newton_scaling(1e-4, 1.0, 1), (1 + 1e-4) / 2, 1e-14);
}

TEST(NewtonScaling, CentresTheScalarMapOnTheSpectrum) {
  // The optimal c makes phi(y) = y ((p+1-y)/p)^p take equal values at both ends of the scaled spectrum
  // [lambda_min / c^p, lambda_max / c^p] (the defining property of Guo & Higham's choice).
  for (int p : {2, 3, 4})
    for (double kappa : {10.0, 1e4}) {
      const double c = pe_bench::newton_scaling(1 / kappa, 1, p);
      auto phi = [p](double y) { return y * std::pow((p + 1 - y) / p, p); };
      const double lo = (1 / kappa) / std::pow(c, p), hi = 1 / std::pow(c, p);
      EXPECT_NEAR(phi(lo), phi(hi), 1e-12) << "p = " << p << ", kappa = " << kappa;
    }
}

TEST(EighRoot, MatchesTheDoubleReference) {
  const std::int64_t n = 64;
  const std::vector<double> a = pe::reference::random_spd(pe::reference::make_spectrum(n, 1e3, Spectrum::spread), 11);
  for (int p : {1, 2, 4}) {
    std::vector<double> x;
    ASSERT_TRUE(pe_bench::eigh_inverse_root(a, n, p, x));
    // Same algorithm in double: agreement to rounding (kappa 1e3 times a few unit roundoffs).
    EXPECT_LT(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p)), 1e-11) << "p = " << p;
    std::vector<float> af(a.begin(), a.end()), xf;
    ASSERT_TRUE(pe_bench::eigh_inverse_root(af, n, p, xf));
    // fp32: kappa 1e3 times float rounding (6e-8) bounds the eigenvector error, with room to spare.
    EXPECT_LT(pe::reference::relative_error(std::vector<double>(xf.begin(), xf.end()), pe::reference::inverse_root(a, n, p)),
              1e-3)
        << "p = " << p;
  }
}

TEST(EighRoot, RejectsAnIndefiniteMatrix) {
  const std::vector<double> a{1, 0, 0, -1};  // eigenvalues 1 and -1
  std::vector<double> x;
  EXPECT_FALSE(pe_bench::eigh_inverse_root(a, 2, 2, x));
}

TEST(CoupledNewton, ConvergesToTheReferenceAndCountsItsGemms) {
  const std::int64_t n = 48;
  const double kappa = 1e3;
  const std::vector<double> a = pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, Spectrum::spread), 5);
  for (int p : {1, 2, 3, 4}) {
    const std::vector<double> ref = pe::reference::inverse_root(a, n, p);
    pe_bench::CoupledNewton<double> newton(n, p);
    std::vector<double> x;
    const int iterations = 30;  // quadratic convergence sets in after ~log(kappa)/log(1 + 1/p) iterations
    const int gemms = newton.run(a, pe_bench::newton_scaling(1 / kappa, 1, p), iterations, x);
    // Converged in double: the attainable accuracy is about kappa^{1/p} unit roundoffs.
    EXPECT_LT(pe::reference::relative_error(x, ref), 1e-10) << "p = " << p;
    int expected = 0;
    for (int k = 1; k <= iterations; ++k) expected += pe_bench::newton_gemms(p, k, k == iterations);
    EXPECT_EQ(gemms, expected) << "p = " << p;
    // A middle Newton iteration: X B, then B^p Y (binary powering of B, then one product with Y).
    const int bits = static_cast<int>(std::bit_width(static_cast<unsigned>(p))), ones = std::popcount(static_cast<unsigned>(p));
    EXPECT_EQ(pe_bench::newton_gemms(p, 2, false), 1 + (bits - 1) + (ones - 1) + 1);
  }
}

TEST(CoupledNewton, StopsWhenTheCallbackSaysSo) {
  const std::int64_t n = 16;
  const std::vector<double> a = pe::reference::random_spd(pe::reference::make_spectrum(n, 10, Spectrum::spread), 3);
  pe_bench::CoupledNewton<double> newton(n, 2);
  std::vector<double> x;
  int last = 0;
  newton.run(a, pe_bench::newton_scaling(0.1, 1, 2), 50, x, [&](int k, const std::vector<double>&) {
    last = k;
    return k < 4;
  });
  EXPECT_EQ(last, 4);
}

}  // namespace
