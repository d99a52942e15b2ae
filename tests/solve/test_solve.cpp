// pe::solve against LAPACK dgesv and independent residuals in double.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <string>

#include "solve_test_support.hpp"

namespace {

using namespace pe_solve_test;

// The report never flatters: its residual is the residual of the returned X (recomputed here in double
// against the f64 A), and "target reached" means the target really is met. For f32 storage the report
// measures against A rounded to f32, which differs from the f64 system by the rounding floor.
void expect_honest(const pe::SolveReport& r, const std::vector<double>& a, const std::vector<double>& x,
                   const std::vector<double>& b, std::int64_t n, std::int64_t k, pe::DType dtype, double kappa,
                   double target) {
  for (double v : x) ASSERT_TRUE(std::isfinite(v)) << "non-finite entry in x";
  const double res = pe::reference::relative_residual(a, x, b, n, k);
  // Both residuals are B - A X formed in double from the same numbers; forming it commits errors of
  // about sqrt(n) u (||A|| ||X|| + ||B||) <= sqrt(n) u (kappa + 1) ||B||, which is what two summation
  // orders can differ by: the f64 rounding floor. f32: the report measures against A rounded to f32,
  // which moves the residual by up to the f32 floor.
  const double slack = 1e-6 * res + rounding_floor(dtype, n, kappa);
  EXPECT_NEAR(r.residual, res, slack) << "reported residual differs from the recomputed one";
  if (r.target_reached) {
    EXPECT_LE(res, target + slack);
  }
  // Every fast-path point is reported; only a fallback that ran without an approximate inverse has none.
  if (r.residuals.empty()) {
    EXPECT_EQ(r.method, "lu");
  } else {
    EXPECT_EQ(r.residuals.size(), static_cast<std::size_t>(r.corrections + 1));
  }
  if (r.method == "lu") {
    EXPECT_TRUE(r.fallback);
  }
}

struct Case {
  bool general;
  double kappa;
  pe::DType dtype;
  double target;
};

class SolveAccuracy : public ::testing::TestWithParam<Case> {};

TEST_P(SolveAccuracy, ReachesTargetAndAgreesWithDgesv) {
  const Case c = GetParam();
  const std::int64_t n = 128, k = 4;
  const std::vector<double> a = c.general ? general(n, c.kappa, 3) : spd(n, c.kappa, 3);
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 4);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.target = c.target;
  o.storage_from_input = false;
  o.storage = c.dtype;
  use_test_schedules(o);
  const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
  EXPECT_EQ(r.structure, c.general ? "general" : "symmetric");
  expect_honest(r, a, x, b, n, k, c.dtype, c.kappa, c.target);
  // Where the storage can represent the answer to the target, the target is reached (by the fast path
  // or the reported fallback) and the residual shows it.
  const double res = pe::reference::relative_residual(a, x, b, n, k);
  if (c.target >= rounding_floor(c.dtype, n, c.kappa)) {
    EXPECT_TRUE(r.target_reached) << "residual " << res << ", fallback " << r.fallback_reason;
    EXPECT_LE(res, c.target * (1 + 1e-6) + (c.dtype == pe::DType::f32 ? rounding_floor(c.dtype, n, c.kappa) : 0));
  }
  // Forward error against LAPACK: X - X* = A^{-1} (A X - B), so ||X - X*|| / ||X*|| <= kappa * residual
  // for either solution; the two differ by at most the sum.
  const std::vector<double> x_lapack = pe::reference::lapack_solve(a, b, n, k);
  const double res_lapack = pe::reference::relative_residual(a, x_lapack, b, n, k);
  EXPECT_LE(relative_difference(x, x_lapack), c.kappa * (res + res_lapack) * 1.01);
  if (!r.fallback) {
    EXPECT_EQ(r.method, c.general ? "polar" : "spd");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Systems, SolveAccuracy,
    ::testing::Values(Case{false, 1e2, pe::DType::f64, 1e-10}, Case{false, 1e4, pe::DType::f64, 1e-8},
                      Case{false, 1e6, pe::DType::f64, 1e-6}, Case{false, 1e2, pe::DType::f32, 1e-3},
                      Case{false, 1e6, pe::DType::f32, 1e-3}, Case{true, 1e2, pe::DType::f64, 1e-10},
                      Case{true, 1e4, pe::DType::f64, 1e-8}, Case{true, 1e6, pe::DType::f64, 1e-6},
                      Case{true, 1e2, pe::DType::f32, 1e-3}, Case{true, 1e6, pe::DType::f32, 1e-3}),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      return std::string(c.general ? "general" : "spd") + "_kappa1e" + std::to_string(int(std::log10(c.kappa))) + "_" +
             pe::to_string(c.dtype);
    });

// Each correction is reported, and with a certified inner bound eps the residual after c corrections is
// at most eps^(c+1) (exact arithmetic) plus rounding.
TEST(Solve, ReportsTheResidualAfterEveryCorrection) {
  const std::int64_t n = 96, k = 3;
  const std::vector<double> a = spd(n, 1e3, 8);
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 9);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.target = 1e-12;
  o.inner_target = 0.1;  // a loose inverse, so the corrections do the work
  use_test_schedules(o);
  const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
  ASSERT_GE(r.corrections, 2);
  ASSERT_EQ(r.residuals.size(), static_cast<std::size_t>(r.corrections + 1));
  ASSERT_EQ(r.predicted.size(), r.residuals.size());
  for (std::size_t i = 0; i < r.residuals.size(); ++i) {
    // Rounding: residuals are formed in double from an f64 X, about sqrt(n) u kappa relative.
    const double floor = rounding_floor(pe::DType::f64, n, 1e3);
    if (r.inverse.certified) {
      EXPECT_LE(r.residuals[i], r.predicted[i] + floor) << "after correction " << i;
    }
    if (i > 0) {
      EXPECT_LT(r.residuals[i], r.residuals[i - 1]);
    }
  }
  expect_honest(r, a, x, b, n, k, pe::DType::f64, 1e3, o.target);
}

// (c A) X = B has X = A^{-1} B / c: scaling by a power of two near the ends of the double range changes
// nothing but the scale (U^T U and sums of squares of the raw entries would underflow or overflow), so
// the fast path must serve it as it serves A, without the LU fallback.
TEST(Solve, ExtremeMagnitudesTakeTheFastPath) {
  const std::int64_t n = 64, k = 2;
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 31);
  for (bool is_general : {false, true}) {
    const std::vector<double> a = is_general ? general(n, 1e3, 32) : spd(n, 1e3, 32);
    for (int exponent : {-1000, 1000}) {
      std::vector<double> scaled(a), x(b.size());
      for (double& v : scaled) v = std::ldexp(v, exponent);
      pe::SolveOptions o;
      o.target = 1e-10;
      use_test_schedules(o);
      const pe::SolveReport r = pe::solve(view(scaled, n, n), view(b, n, k), out(x, n, k), o);
      EXPECT_FALSE(r.fallback) << r.fallback_reason << " (2^" << exponent << ", general " << is_general << ")";
      EXPECT_EQ(r.method, is_general ? "polar" : "spd");
      EXPECT_TRUE(r.target_reached);
      for (double& v : x) v = std::ldexp(v, exponent);  // the solution of A X = B
      EXPECT_LE(pe::reference::relative_residual(a, x, b, n, k), o.target + rounding_floor(pe::DType::f64, n, 1e3));
    }
  }
}

// A X = (c B) has X = c A^{-1} B: the relative residuals need ||B||_F, which frobenius_norm gives only
// inside its range. Once, B ~ 1e-300 read as zero (X = 0 returned, "target reached") and B ~ 1e300
// overflowed the norms into the LU fallback. A solution that is not representable is an error naming x.
TEST(Solve, RightHandSidesNearTheEndsOfTheRangeAreSolved) {
  const std::int64_t n = 48, k = 2;
  const std::vector<double> a = spd(n, 1e3, 33), b = pe::reference::random_gaussian(n, k, 34);
  for (int exponent : {-1000, 1000}) {
    std::vector<double> scaled(b), x(b.size());
    for (double& v : scaled) v = std::ldexp(v, exponent);
    pe::SolveOptions o;
    o.target = 1e-10;
    use_test_schedules(o);
    const pe::SolveReport r = pe::solve(view(a, n, n), view(scaled, n, k), out(x, n, k), o);
    EXPECT_FALSE(r.fallback) << r.fallback_reason << " (2^" << exponent << ")";
    EXPECT_EQ(r.method, "spd");
    EXPECT_TRUE(r.target_reached);
    for (double& v : x) v = std::ldexp(v, -exponent);  // the solution of A X = B
    EXPECT_LE(pe::reference::relative_residual(a, x, b, n, k), o.target + rounding_floor(pe::DType::f64, n, 1e3));
  }
  std::vector<double> tiny(a), huge(b), x(b.size());
  for (double& v : tiny) v = std::ldexp(v, -1000);
  for (double& v : huge) v = std::ldexp(v, 1000);
  pe::SolveOptions o;
  use_test_schedules(o);
  expect_error([&] { pe::solve(view(tiny, n, n), view(huge, n, k), out(x, n, k), o); },
               {"x (result)", "A^{-1} B is not representable"});
}

TEST(Solve, NeverExceedsTheGemmBudget) {
  const std::int64_t n = 64, k = 2;
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 2);
  for (bool is_general : {false, true}) {
    const std::vector<double> a = is_general ? general(n, 1e4, 5) : spd(n, 1e4, 5);
    for (int budget : {6, 10, 16, 24, 40}) {
      std::vector<double> x(b.size());
      pe::SolveOptions o;
      o.target = 1e-12;
      o.max_gemms = budget;
      use_test_schedules(o);
      pe::SolveReport r;
      try {
        r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
      } catch (const pe::Error& e) {
        // Only a budget too small for a single step of the SPD iteration may be refused.
        EXPECT_NE(std::string(e.what()).find("max_gemms"), std::string::npos) << e.what();
        continue;
      }
      EXPECT_LE(r.gemms, budget) << (is_general ? "general" : "spd");
      expect_honest(r, a, x, b, n, k, pe::DType::f64, 1e4, o.target);
    }
  }
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.max_gemms = 3;
  const std::vector<double> a = spd(n, 10, 1);
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o), pe::Error);
}

// Symmetric with a positive diagonal but indefinite: the SPD attempt is refused and the general path runs.
TEST(Solve, SymmetricIndefiniteFallsThroughToGeneral) {
  const std::int64_t n = 64, k = 2;
  std::vector<double> a(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; i += 2) {  // blocks [[1, 2], [2, 1]] have eigenvalues 3 and -1
    const double s = 1 + 0.5 * static_cast<double>(i) / static_cast<double>(n);
    a[static_cast<std::size_t>(i + i * n)] = s;
    a[static_cast<std::size_t>(i + 1 + (i + 1) * n)] = s;
    a[static_cast<std::size_t>(i + 1 + i * n)] = 2 * s;
    a[static_cast<std::size_t>(i + (i + 1) * n)] = 2 * s;
  }
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 3);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.target = 1e-10;
  use_test_schedules(o);
  const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
  EXPECT_EQ(r.structure, "general");
  EXPECT_TRUE(r.target_reached);
  expect_honest(r, a, x, b, n, k, pe::DType::f64, 3, o.target);
  o.structure = pe::Structure::spd;  // forced: the caller's claim is checked, not trusted
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o), pe::Error);
}

TEST(Solve, SingularMatrixIsAnError) {
  const std::int64_t n = 48, k = 2;
  std::vector<double> a = general(n, 10, 6);
  for (std::int64_t i = 0; i < n; ++i) a[static_cast<std::size_t>(i + 7 * n)] = 0;  // column 7 is zero
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 3);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.target = 1e-8;
  use_test_schedules(o);
  try {
    pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
    FAIL() << "a singular matrix was solved";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("singular"), std::string::npos) << e.what();
  }
}

// Nearly singular (cond 1e14 in f64): whatever path runs, the report says what the residual is.
TEST(Solve, NearlySingularIsReportedHonestly) {
  const std::int64_t n = 64, k = 2;
  for (bool is_general : {false, true}) {
    const std::vector<double> a = is_general ? general(n, 1e14, 2) : spd(n, 1e14, 2);
    const std::vector<double> b = pe::reference::random_gaussian(n, k, 3);
    std::vector<double> x(b.size());
    pe::SolveOptions o;
    o.target = 1e-10;
    use_test_schedules(o);
    try {
      const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
      expect_honest(r, a, x, b, n, k, pe::DType::f64, 1e14, o.target);
    } catch (const pe::Error& e) {
      SUCCEED() << e.what();
    }
  }
}

TEST(Solve, NonFiniteInputIsAnErrorNamingTheArgument) {
  const std::int64_t n = 16, k = 1;
  std::vector<double> a = spd(n, 10, 1), b = pe::reference::random_gaussian(n, k, 1), x(static_cast<std::size_t>(n));
  pe::SolveOptions o;
  use_test_schedules(o);
  a[5] = std::nan("");
  try {
    pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
    FAIL();
  } catch (const pe::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("a:", 0), 0u) << e.what();
  }
  a = spd(n, 10, 1);
  b[3] = INFINITY;
  try {
    pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
    FAIL();
  } catch (const pe::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("b:", 0), 0u) << e.what();
  }
}

TEST(Solve, BadShapesAndOptionsAreErrors) {
  const std::int64_t n = 8;
  std::vector<double> a = spd(n, 10, 1), b(static_cast<std::size_t>(n * 2), 1.0), x(b.size());
  pe::SolveOptions o;
  use_test_schedules(o);
  EXPECT_THROW(pe::solve(view(a, n, n - 1), view(b, n, 2), out(x, n, 2), o), pe::Error);
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n - 1, 2), out(x, n, 2), o), pe::Error);
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, 2), out(x, n, 1), o), pe::Error);
  o.target = 2;
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, 2), out(x, n, 2), o), pe::Error);
  o.target = 1e-6;
  o.max_corrections = -1;
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, 2), out(x, n, 2), o), pe::Error);
}

// Host views work with every device (copied in and out), as for the root API: with device = cuda the
// views pass their checks, and without a GPU the only error is the backend's. A 0 x 0 view (an empty
// .npy) names its shape, not its null data pointer.
TEST(Solve, HostViewsPassTheChecksForEveryDeviceAndEmptyViewsNameTheirShape) {
  const std::int64_t n = 8, k = 1;
  std::vector<double> a = spd(n, 10, 1), b = pe::reference::random_gaussian(n, k, 1), x(b.size());
  pe::SolveOptions o;
  use_test_schedules(o);
  o.device = pe::Device::cuda;
  try {
    const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
    EXPECT_EQ(r.backend, "cuda");  // a GPU is present
  } catch (const pe::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("view is on device"), std::string::npos) << e.what();
    std::string message = e.what();
    for (char& ch : message) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_NE(message.find("cuda"), std::string::npos) << e.what();  // "no usable CUDA device", "built without"
  }
  o.device = pe::Device::cpu;
  try {
    pe::solve(pe::Matrix{nullptr, 0, 0, 1}, view(b, n, k), out(x, n, k), o);
    FAIL() << "an empty A was accepted";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("a: shape 0 x 0"), std::string::npos) << e.what();
  }
}

// The fallback is an LU solve, reported; disabling it turns non-convergence into an error when no
// approximate inverse exists to return.
TEST(Solve, FallbackIsReportedAndCanBeDisabled) {
  const std::int64_t n = 64, k = 2;
  const std::vector<double> a = general(n, 1e3, 4);
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 5);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  o.target = 1e-10;
  o.max_gemms = 8;  // too few for the polar iteration to reach its bound
  use_test_schedules(o);
  const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
  EXPECT_TRUE(r.fallback);
  EXPECT_EQ(r.method, "lu");
  EXPECT_NE(r.fallback_reason.find("polar"), std::string::npos) << r.fallback_reason;
  EXPECT_LE(r.gemms, o.max_gemms);
  EXPECT_TRUE(r.target_reached);
  expect_honest(r, a, x, b, n, k, pe::DType::f64, 1e3, o.target);
  o.allow_fallback = false;
  EXPECT_THROW(pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o), pe::Error);
}

TEST(Solve, ZeroRightHandSideGivesZero) {
  const std::int64_t n = 8, k = 2;
  const std::vector<double> a = general(n, 10, 1), b(static_cast<std::size_t>(n * k), 0.0);
  std::vector<double> x(b.size(), 7.0);
  pe::SolveOptions o;
  use_test_schedules(o);
  const pe::SolveReport r = pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o);
  for (double v : x) EXPECT_EQ(v, 0.0);
  EXPECT_TRUE(r.target_reached);
  EXPECT_EQ(r.gemms, 0);
}

TEST(Solve, JsonReportCarriesTheResiduals) {
  const std::int64_t n = 32, k = 1;
  const std::vector<double> a = spd(n, 100, 1), b = pe::reference::random_gaussian(n, k, 1);
  std::vector<double> x(b.size());
  pe::SolveOptions o;
  use_test_schedules(o);
  const std::string j = pe::to_json(pe::solve(view(a, n, n), view(b, n, k), out(x, n, k), o));
  EXPECT_NE(j.find("\"residuals\":["), std::string::npos) << j;
  EXPECT_NE(j.find("\"method\":\"spd\""), std::string::npos) << j;
}

}  // namespace
