// The coupled step pieces for every degree: q(Y) by Paterson-Stockmeyer and the direct terminal step by
// Horner against a plain double evaluation of the polynomial (power by power), with the GEMM counts of
// include/pe/detail/gemm_cost.hpp; and whole roots and applies run with degree 3 and 4 tables.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend_factory.hpp"
#include "coupled.hpp"
#include "interval.hpp"
#include "pe/detail/gemm_cost.hpp"
#include "runtime_test_support.hpp"

namespace {

namespace pd = pe::detail;
using pe_test::Spectrum;

// Column-major n x n product in double, the reference.
std::vector<double> multiply(const std::vector<double>& a, const std::vector<double>& b, std::int64_t n, std::int64_t k) {
  std::vector<double> c(static_cast<std::size_t>(n * k), 0.0);
  for (std::int64_t j = 0; j < k; ++j)
    for (std::int64_t l = 0; l < n; ++l)
      for (std::int64_t i = 0; i < n; ++i) c[i + j * n] += a[i + l * n] * b[l + j * n];
  return c;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

TEST(CoupledSteps, FormQAndHornerMatchThePowerFormForEveryDegree) {
  const std::int64_t n = 12, k = 3;
  // Y: symmetric with spectrum in [0.1, 1] (what the iteration holds); Z: any n x k.
  const std::vector<double> y = pe_test::spd(n, 10, Spectrum::spread, 3), z = pe_test::random_matrix(n, k, 4);
  auto be = pd::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  pd::Mat ym = be->allocate(n, n, 1), qm = be->allocate(n, n, 1), zm = be->allocate(n, k, 1);
  pd::Mat w1 = be->allocate(n, k, 1), w2 = be->allocate(n, k, 1);
  be->upload(pd::HostMat{const_cast<double*>(y.data()), pe::DType::f64, n, n, n, 1, n * n, pe::Layout::col_major}, ym);
  for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
    pd::StepBuffers buffers = pd::allocate_step_buffers(*be, n, 1, 2, degree);
    const double c[pe::kMaxCoefficients] = {2.5, -3.0, 1.75, -0.5, 0.125};
    pd::QCoefficients coef;
    for (int j = 0; j < pe::kMaxCoefficients; ++j) coef[static_cast<std::size_t>(j)] = {j <= degree ? c[j] : 0.0};
    // Reference: sum_j c_j Y^j, each power by explicit products.
    std::vector<double> q(static_cast<std::size_t>(n * n), 0.0), power(q.size(), 0.0);
    for (std::int64_t i = 0; i < n; ++i) power[i + i * n] = 1;
    for (int j = 0; j <= degree; ++j) {
      for (std::size_t i = 0; i < q.size(); ++i) q[i] += c[j] * power[i];
      power = multiply(power, y, n, n);
    }
    EXPECT_EQ(pd::form_q(*be, ym, degree, coef, buffers, qm), pd::q_form_gemms(degree)) << "degree " << degree;
    std::vector<double> got(q.size());
    be->download(qm, pd::HostMat{got.data(), pe::DType::f64, n, n, n, 1, n * n, pe::Layout::col_major});
    // The entries are O(10) and the evaluation orders differ: a few hundred ulps of that at most.
    EXPECT_LE(max_abs_difference(got, q), 1e-12) << "degree " << degree;

    be->upload(pd::HostMat{const_cast<double*>(z.data()), pe::DType::f64, n, k, n, 1, n * k, pe::Layout::col_major}, zm);
    EXPECT_EQ(pd::terminal_apply(*be, ym, degree, coef, zm, w1, w2), pd::terminal_direct_gemms(degree));
    std::vector<double> qz(static_cast<std::size_t>(n * k));
    be->download(zm, pd::HostMat{qz.data(), pe::DType::f64, n, k, n, 1, n * k, pe::Layout::col_major});
    EXPECT_LE(max_abs_difference(qz, multiply(q, z, n, k)), 1e-12) << "degree " << degree;
  }
}

// Forced degree 3 and 4 (roots: Iteration.BothDegreesReachTheTarget): the direct apply, ending with the
// Horner step, agrees with materialising the root and multiplying.
TEST(CoupledSteps, DirectApplyWithDegreeThreeAndFourAgreesWithTheRoot) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 40, k = 2;
  const double kappa = 1e4;
  const auto a = pe_test::spd(n, kappa, Spectrum::spread, 11);
  const auto b = pe_test::random_matrix(n, k, 12);
  for (int p : {1, 2, 5})
    for (int degree : {3, 4}) {
      pe::Options o;
      o.p = p;
      o.degree = degree;
      o.target = 1e-6;
      std::vector<double> x(a.size());
      const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
      ASSERT_TRUE(r.target_reached) << "p " << p << " degree " << degree;
      o.mode = pe::ApplyMode::direct;
      std::vector<double> z(b.size());
      const pe::Report rd = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(z, n, k), o);
      EXPECT_EQ(rd.mode, "direct");
      EXPECT_EQ(rd.degree, degree);
      EXPECT_TRUE(rd.target_reached);
      EXPECT_EQ(rd.gemms, pd::direct_gemms(p, degree, rd.steps)) << "the cost model counts what the steps issue";
      const std::vector<double> xb = multiply(x, b, n, k);
      double norm = 0;
      for (double v : xb) norm = std::max(norm, std::abs(v));
      // Both are within their tracked bounds (<= 1e-6) of A^{-1/p} B, so within twice that of each other,
      // entrywise up to sqrt(n) (2-norm to max-norm), plus both runs' rounding.
      EXPECT_LE(max_abs_difference(z, xb),
                norm * (2 * pe_test::predicted_relative_error(1e-6, p) * std::sqrt(double(n)) +
                        2 * pe_test::rounding_allowance(pe::DType::f64, n, r.steps + degree, kappa, p)))
          << "p " << p << " degree " << degree;
    }
}

}  // namespace
