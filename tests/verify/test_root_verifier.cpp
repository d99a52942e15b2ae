// The certificate against independent references: a property corpus (spectra, condition numbers, p,
// storage, roots built from the exact one and roots from the runtime), the f64 target, garbage inputs,
// batches, and the floor estimate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

#include "pe/pe.hpp"
#include "verify_test_support.hpp"

namespace {

using namespace pe_verify_test;
using pe::detail::RootCertificate;
using pe::detail::VerifyArithmetic;

// The 113-bit reference is exact to a relative 1e-12 plus 1e-25 (verify_test_support.hpp); the double
// reference (f32 roots from the runtime) to about n u kappa ||X||^p-ish, far below their eps: 1e-6
// relative covers both with room.
constexpr double kQuadReferenceRelative = 1e-12, kQuadReferenceAbsolute = 1e-25;
constexpr double kDoubleReferenceRelative = 1e-6;
// The tightness targets, where the rounding term does not dominate (below a tenth of eps).
constexpr double kMedianRatio = 2, kMaxRatio = 10, kRoundingShare = 0.1;

enum class Root { exact, perturbed, noisy, runtime };
const char* name(Root r) {
  switch (r) {
    case Root::exact: return "exact";
    case Root::perturbed: return "perturbed";
    case Root::noisy: return "noisy";
    case Root::runtime: return "runtime";
  }
  return "?";
}

struct Case {
  std::int64_t n;
  Shape shape;
  double kappa;
  int p;
  pe::DType dtype;
  Root root;
};

std::string describe(const Case& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "n=%lld %s kappa=%.0e p=%d %s %s", static_cast<long long>(c.n), name(c.shape), c.kappa,
                c.p, pe::to_string(c.dtype), name(c.root));
  return buf;
}

// The root the case asks for, rounded to its storage.
Matrix make_root(const Case& c, const Matrix& a, std::uint64_t seed) {
  switch (c.root) {
    case Root::exact: return perturbed_root(a, c.n, c.p, 0, 0, c.dtype, seed);
    case Root::perturbed: return perturbed_root(a, c.n, c.p, 1e-3, 0, c.dtype, seed);
    case Root::noisy:  // eigenvalue errors plus a dense symmetric perturbation near the storage's precision
      return perturbed_root(a, c.n, c.p, 1e-5, c.dtype == pe::DType::f32 ? 1e-6 : 1e-12, c.dtype, seed);
    case Root::runtime: break;
  }
  std::vector<float> af(a.begin(), a.end()), xf(af.size());
  pe::Options opt;
  opt.p = c.p;
  opt.target = 1e-3;
  pe::inverse_root(pe::Matrix{af.data(), c.n, c.n, c.n, pe::DType::f32},
                   pe::MutableMatrix{xf.data(), c.n, c.n, c.n, pe::DType::f32}, opt);
  return to_storage(Matrix(xf.begin(), xf.end()), c.n, pe::DType::f32);  // exactly symmetric, as the engine returns it
}

struct Outcome {
  Case c;
  double truth;
  RootCertificate cert;
};

// Runs every case, checks that no proven bound is below the truth, and returns the outcomes.
std::vector<Outcome> run(const std::vector<Case>& cases) {
  std::vector<Outcome> out;
  std::uint64_t seed = 20261201;
  for (const Case& c : cases) {
    ++seed;
    const Matrix a = to_storage(pe::reference::random_spd(spectrum(c.n, c.kappa, c.shape), seed), c.n, c.dtype);
    const Matrix x = make_root(c, a, seed + 7);
    const bool quad = c.n <= 64;
    const double truth = quad ? quad_eps(a, x, c.n, c.p) : double_eps(a, x, c.n, c.p);
    const RootCertificate cert = certify_one(a, x, c.n, c.p, pe::detail::verify_arithmetic_for(c.dtype));
    if (cert.proven) {
      const double allowed = quad ? truth * (1 - kQuadReferenceRelative) - kQuadReferenceAbsolute
                                  : truth * (1 - kDoubleReferenceRelative);
      EXPECT_GE(cert.eps_bound, allowed) << describe(c) << ": proven bound below the true eps " << truth;
      EXPECT_TRUE(cert.x_positive_definite) << describe(c);
    }
    out.push_back({c, truth, cert});
  }
  return out;
}

// Tightness where the bound is not dominated by rounding, and a summary line for the report.
void check_tightness(const std::vector<Outcome>& outcomes, const char* label) {
  std::vector<double> ratios;
  int proven = 0, dominated = 0;
  double worst = 0;
  std::string worst_case;
  for (const Outcome& o : outcomes) {
    if (!o.cert.proven) {
      std::printf("[not proven] %s: true eps %.3e: %s\n", describe(o.c).c_str(), o.truth, o.cert.failure.c_str());
      continue;
    }
    ++proven;
    if (o.cert.rounding_term + o.cert.factor_term > kRoundingShare * o.truth) {
      ++dominated;
      continue;
    }
    const double ratio = o.cert.eps_bound / o.truth;
    ratios.push_back(ratio);
    EXPECT_LE(ratio, kMaxRatio) << describe(o.c) << ": bound " << o.cert.eps_bound << ", true " << o.truth;
    if (ratio > worst) {
      worst = ratio;
      worst_case = describe(o.c);
    }
  }
  ASSERT_FALSE(ratios.empty());
  std::sort(ratios.begin(), ratios.end());
  const double median = ratios[ratios.size() / 2];
  EXPECT_LE(median, kMedianRatio) << label;
  std::printf("[tightness] %s: %zu cases, %d proven, %d rounding-dominated; bound/true median %.3f, max %.3f (%s)\n",
              label, outcomes.size(), proven, dominated, median, worst, worst_case.c_str());
}

std::vector<Case> grid(std::vector<std::int64_t> ns, std::vector<Shape> shapes, std::vector<double> kappas,
                       std::vector<int> ps, std::vector<pe::DType> dtypes, std::vector<Root> roots) {
  std::vector<Case> cases;
  for (auto n : ns)
    for (auto s : shapes)
      for (auto k : kappas)
        for (auto p : ps)
          for (auto d : dtypes)
            for (auto r : roots) cases.push_back({n, s, k, p, d, r});
  return cases;
}

const std::vector<Shape> kAllShapes{Shape::spread, Shape::one_outlier_high, Shape::one_outlier_low, Shape::two_clusters};

// Small n, every spectrum, kappa 1e2..1e8, p 1..8, f32 and f64, three kinds of roots; 113-bit reference.
// (f32 stops at kappa = 1e6: rounded to f32, a matrix with eigenvalues down to 1e-8 is no longer
// positive definite; RootVerifier.IndefiniteStoredMatrixIsNotProven covers that case.)
TEST(RootVerifierCorpus, SmallMatricesAgainstQuadReference) {
  const std::vector<Root> roots{Root::exact, Root::perturbed, Root::noisy};
  auto cases = grid({24}, kAllShapes, {1e2, 1e4, 1e6}, {1, 2, 3, 4, 8}, {pe::DType::f32}, roots);
  const auto f64 = grid({24}, kAllShapes, {1e2, 1e4, 1e6, 1e8}, {1, 2, 3, 4, 8}, {pe::DType::f64}, roots);
  cases.insert(cases.end(), f64.begin(), f64.end());
  const auto outcomes = run(cases);
  // Every root whose eps is well below 1 is proven (X is then positive definite and well inside the
  // range the certificate covers).
  for (const Outcome& o : outcomes) {
    if (o.truth < 0.5) {
      EXPECT_TRUE(o.cert.proven) << describe(o.c) << ": " << o.cert.failure << " (true " << o.truth << ")";
    }
  }
  check_tightness(outcomes, "n = 24, 113-bit reference");
}

TEST(RootVerifierCorpus, MediumMatricesAgainstQuadReference) {
  const auto outcomes = run(grid({64}, {Shape::spread, Shape::two_clusters}, {1e4, 1e6}, {1, 2, 4},
                                 {pe::DType::f32, pe::DType::f64}, {Root::exact, Root::perturbed}));
  for (const Outcome& o : outcomes) EXPECT_TRUE(o.cert.proven) << describe(o.c) << ": " << o.cert.failure;
  check_tightness(outcomes, "n = 64, 113-bit reference");
}

// Roots as today's runtime returns them (f32, target 1e-3), n = 160; double reference.
TEST(RootVerifierCorpus, RuntimeRootsAgainstDoubleReference) {
  const auto outcomes = run(grid({160}, {Shape::spread, Shape::two_clusters}, {1e2, 1e4, 1e6}, {1, 2, 4},
                                 {pe::DType::f32}, {Root::runtime}));
  for (const Outcome& o : outcomes) {
    if (o.truth < 0.5) {
      EXPECT_TRUE(o.cert.proven) << describe(o.c) << ": " << o.cert.failure;
    }
  }
  check_tightness(outcomes, "n = 160, runtime roots, double reference");
}

// f64 storage reaches a verified 1e-10 at kappa <= 1e4 for an accurate X (the exact root rounded to f64).
TEST(RootVerifier, F64StorageReachesVerifiedOneEMinusTen) {
  const std::int64_t n = 160;
  for (Shape shape : {Shape::spread, Shape::two_clusters})
    for (int p : {2, 4}) {
      if (shape == Shape::two_clusters && p == 4) continue;  // three cases keep the 113-bit reference short
      const Matrix a = pe::reference::random_spd(spectrum(n, 1e4, shape), 99 + static_cast<std::uint64_t>(p));
      const Matrix x = perturbed_root(a, n, p, 0, 0, pe::DType::f64, 5);
      const RootCertificate cert = certify_one(a, x, n, p, VerifyArithmetic::extended);
      ASSERT_TRUE(cert.proven) << cert.failure;
      EXPECT_LE(cert.eps_bound, 1e-10) << name(shape) << " p=" << p;
      const double truth = quad_eps(a, x, n, p);
      EXPECT_GE(cert.eps_bound, truth * (1 - kQuadReferenceRelative) - kQuadReferenceAbsolute);
      std::printf("[f64] n=160 kappa=1e4 %s p=%d: true %.3e, bound %.3e (rounding %.1e)\n", name(shape), p, truth,
                  cert.eps_bound, cert.rounding_term);
    }
}


// ---- garbage, batches, scaling, arguments -------------------------------------------------------

struct Garbage {
  const char* what;
  Matrix a, x;
};

// X with its bottom eigenvalue's sign flipped: X^p A is still the identity for even p, yet X is not
// positive definite, so there is nothing to certify.
Matrix flipped_root(const Matrix& a, std::int64_t n, int p) {
  return spectral_function(a, n, [p](double lambda, std::int64_t j) { return (j == 0 ? -1.0 : 1.0) * std::pow(lambda, -1.0 / p); });
}

TEST(RootVerifier, GarbageIsNeverProvenBelowTheTruth) {
  const std::int64_t n = 24;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (int p : {1, 2, 3, 4}) {
    const Matrix a = pe::reference::random_spd(spectrum(n, 1e4, Shape::spread), 41);
    const Matrix other = pe::reference::random_spd(spectrum(n, 1e4, Shape::spread), 42);
    const Matrix x = perturbed_root(a, n, p, 0, 0, pe::DType::f64, 1);
    std::vector<Garbage> garbage;
    garbage.push_back({"one negative eigenvalue", a, flipped_root(a, n, p)});
    Matrix minus = x;
    for (double& v : minus) v = -v;
    garbage.push_back({"negative definite", a, minus});
    garbage.push_back({"zero", a, Matrix(x.size(), 0.0)});
    Matrix skew = x;
    skew[1] += 1e-9;  // x_10 != x_01
    garbage.push_back({"not symmetric", a, skew});
    Matrix with_nan = x, with_inf = x, a_nan = a, a_skew = a;
    with_nan[5 + 5 * n] = nan;
    with_inf[3] = inf;
    with_inf[3 * n] = inf;
    a_nan[0] = nan;
    a_skew[2] += 1e-12;
    garbage.push_back({"NaN in X", a, with_nan});
    garbage.push_back({"Inf in X", a, with_inf});
    garbage.push_back({"NaN in A", a_nan, x});
    garbage.push_back({"A not symmetric", a_skew, x});
    const Matrix wrong = perturbed_root(other, n, p, 0, 0, pe::DType::f64, 1);
    garbage.push_back({"the root of another matrix", a, wrong});
    for (const Garbage& g : garbage) {
      const RootCertificate c = certify_one(g.a, g.x, n, p, VerifyArithmetic::extended);
      SCOPED_TRACE(std::string(g.what) + ", p = " + std::to_string(p));
      if (std::string(g.what) == "the root of another matrix") {
        // A proper SPD pair: whatever is proven must hold (eps here is of order 1 or more).
        if (c.proven) {
          EXPECT_GE(c.eps_bound, quad_eps(g.a, g.x, n, p) * (1 - kQuadReferenceRelative));
        }
        continue;
      }
      EXPECT_FALSE(c.proven) << "bound " << c.eps_bound;
      EXPECT_FALSE(c.failure.empty());
      EXPECT_EQ(c.eps_bound, std::numeric_limits<double>::infinity());
    }
  }
}

// A stored matrix that is not positive definite (an eigenvalue of 1e-8 lost to f32 rounding, or an
// explicitly negative one) has no inverse root to certify.
TEST(RootVerifier, IndefiniteStoredMatrixIsNotProven) {
  const std::int64_t n = 24;
  std::vector<double> w = spectrum(n, 1e4, Shape::spread);
  w[0] = -1e-3;
  const Matrix a = pe::reference::random_spd(w, 8);
  for (int p : {1, 2, 3}) {
    // |A|^{-1/p}: X^p A has the eigenvalue -1 there.
    const Matrix x = spectral_function(a, n, [p](double lambda, std::int64_t) { return std::pow(std::abs(lambda), -1.0 / p); });
    const RootCertificate c = certify_one(a, x, n, p, VerifyArithmetic::binary64);
    EXPECT_FALSE(c.proven) << "p = " << p << ", bound " << c.eps_bound;
  }
}

// X' = 2^-e X, A' = 2^{pe} A leave X^p A unchanged, and the certificate with it (the scaling is exact).
TEST(RootVerifier, ExtremeScalesGiveTheSameCertificate) {
  const std::int64_t n = 24;
  for (int p : {1, 2}) {
    const Matrix a = pe::reference::random_spd(spectrum(n, 1e4, Shape::two_clusters), 13);
    const Matrix x = perturbed_root(a, n, p, 1e-3, 0, pe::DType::f64, 2);
    const RootCertificate base = certify_one(a, x, n, p, VerifyArithmetic::binary64);
    ASSERT_TRUE(base.proven) << base.failure;
    for (int e : {-450, 450}) {  // A scaled by 2^{-p e}: up to 2^900, still inside the double range
      Matrix xs = x, as = a;
      for (double& v : xs) v = std::ldexp(v, e);
      for (double& v : as) v = std::ldexp(v, -p * e);
      const RootCertificate c = certify_one(as, xs, n, p, VerifyArithmetic::binary64);
      ASSERT_TRUE(c.proven) << "2^" << e << ": " << c.failure;
      EXPECT_EQ(c.eps_bound, base.eps_bound) << "2^" << e;
    }
  }
}

TEST(RootVerifier, BatchMembersAreCertifiedIndependently) {
  const std::int64_t n = 24;
  for (int p : {2, 3}) {
    std::vector<Matrix> as, xs;
    for (std::uint64_t k = 0; k < 3; ++k) as.push_back(pe::reference::random_spd(spectrum(n, 1e3, Shape::spread), 70 + k));
    xs.push_back(perturbed_root(as[0], n, p, 1e-4, 0, pe::DType::f32, 1));
    xs.push_back(flipped_root(as[1], n, p));  // garbage in the middle
    xs.push_back(perturbed_root(as[2], n, p, 1e-2, 1e-4, pe::DType::f64, 2));
    for (VerifyArithmetic arithmetic : {VerifyArithmetic::binary64, VerifyArithmetic::extended}) {
      const std::vector<RootCertificate> together = certify(as, xs, n, p, arithmetic);
      for (std::size_t k = 0; k < 3; ++k) {
        const RootCertificate alone = certify_one(as[k], xs[k], n, p, arithmetic);
        EXPECT_EQ(together[k].proven, alone.proven) << "member " << k;
        EXPECT_EQ(together[k].eps_bound, alone.eps_bound) << "member " << k;
        EXPECT_EQ(together[k].failure, alone.failure) << "member " << k;
        if (alone.proven) {
          EXPECT_GE(alone.eps_bound, quad_eps(as[k], xs[k], n, p) * (1 - kQuadReferenceRelative));
        }
      }
      EXPECT_TRUE(together[0].proven);
      EXPECT_FALSE(together[1].proven);
      EXPECT_TRUE(together[2].proven);
    }
  }
}

TEST(RootVerifier, RejectsBadArguments) {
  auto narrow = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native);
  EXPECT_THROW(pe::detail::RootVerifier(*narrow, 8, 1, 2, VerifyArithmetic::binary64), pe::Error);
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  EXPECT_THROW(pe::detail::RootVerifier(*wide, 8, 1, 0, VerifyArithmetic::binary64), pe::Error);
  EXPECT_THROW(pe::detail::RootVerifier(*wide, 0, 1, 2, VerifyArithmetic::binary64), pe::Error);
  pe::detail::RootVerifier verifier(*wide, 8, 1, 2, VerifyArithmetic::binary64);
  pe::detail::Mat small = wide->allocate(7, 7, 1), right = wide->allocate(8, 8, 1);
  EXPECT_THROW(verifier.certify(small, right), pe::Error);
  EXPECT_THROW(verifier.certify(right, small), pe::Error);
  EXPECT_THROW(pe::detail::root_floor_estimate(pe::DType::f32, 0, 1e4), pe::Error);
  EXPECT_THROW(pe::detail::root_floor_estimate(pe::DType::f32, 2, 0.5), pe::Error);
}

// The floor estimate against eps(fl(A^{-1/p})): the exact root (dsyevd in double, whose own error is
// ~2^-53 relative) rounded to f32. docs/certificate.md states the factors this test holds to.
constexpr double kFloorBelow = 0.01, kFloorAbove = 1.5;

TEST(RootVerifier, FloorEstimateMatchesRoundedExactRoots) {
  const std::int64_t n = 32;
  double lowest = 1e300, highest = 0;
  std::string lowest_case, highest_case;
  std::uint64_t seed = 500;
  for (Shape shape : kAllShapes)
    for (double kappa : {1e2, 1e4, 1e6})
      for (int p : {1, 2, 4, 8}) {
        const Matrix a = to_storage(pe::reference::random_spd(spectrum(n, kappa, shape), ++seed), n, pe::DType::f32);
        const Matrix x = perturbed_root(a, n, p, 0, 0, pe::DType::f32, 1);
        const double ratio = quad_eps(a, x, n, p) / pe::detail::root_floor_estimate(pe::DType::f32, p, kappa);
        const Case c{n, shape, kappa, p, pe::DType::f32, Root::exact};
        EXPECT_GE(ratio, kFloorBelow) << describe(c);
        EXPECT_LE(ratio, kFloorAbove) << describe(c);
        if (ratio < lowest) lowest = ratio, lowest_case = describe(c);
        if (ratio > highest) highest = ratio, highest_case = describe(c);
      }
  std::printf("[floor] eps(fl32(A^{-1/p})) / root_floor_estimate in [%.3f (%s), %.3f (%s)]\n", lowest,
              lowest_case.c_str(), highest, highest_case.c_str());
}

}  // namespace
