// pe::gram_apply against forming G^T G + lambda I in double and its LAPACK eigendecomposition root.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "solve_test_support.hpp"

namespace {

using namespace pe_solve_test;

// G (m x n, column-major) with Gaussian entries, columns scaled by col_scale^(j / (n - 1)).
std::vector<double> make_g(std::int64_t m, std::int64_t n, std::uint64_t seed, double col_scale = 1) {
  std::vector<double> g = pe::reference::random_gaussian(m, n, seed);
  for (std::int64_t j = 0; j < n; ++j) {
    const double s = std::pow(col_scale, n > 1 ? static_cast<double>(j) / static_cast<double>(n - 1) : 0.0);
    for (std::int64_t i = 0; i < m; ++i) g[static_cast<std::size_t>(i + j * m)] *= s;
  }
  return g;
}

// (G^T G + lambda I)^{-1/p} W in double through dsyevd.
std::vector<double> reference_apply(const std::vector<double>& g, std::int64_t m, std::int64_t n, double lambda, int p,
                                    const std::vector<double>& w, std::int64_t k) {
  std::vector<double> a = pe::reference::multiply(transpose(g, m, n), g, n, m, n);
  for (std::int64_t i = 0; i < n; ++i) a[static_cast<std::size_t>(i + i * n)] += lambda;
  return pe::reference::multiply(pe::reference::inverse_root(a, n, p), w, n, n, k);
}

// The runtime's bound: every eigenvalue of X^p A within eps of 1 gives ||Z - Z*|| / ||Z*|| <= 1 - (1 -
// eps)^{1/p} (Z = X W, X commuting with A). The targets below make that ~1e-10; 1e-7 leaves room for
// rounding in the well-conditioned Grams used here (cond <= ~1e3, u = 1e-16, a few dozen GEMMs).
constexpr double kTarget = 1e-10;
constexpr double kTolerance = 1e-7;

pe::GramOptions options(int p, double lambda) {
  pe::GramOptions o;
  o.p = p;
  o.lambda = lambda;
  o.target = kTarget;
  use_test_schedules(o);
  return o;
}

struct Shape {
  std::int64_t m, n;
  int p;
  double lambda;
  double col_scale;
};

class GramPlain : public ::testing::TestWithParam<Shape> {};

TEST_P(GramPlain, MatchesFormingTheGram) {
  const Shape s = GetParam();
  const std::int64_t k = 3;
  const std::vector<double> g = make_g(s.m, s.n, 21, s.col_scale), b = pe::reference::random_gaussian(s.n, k, 22);
  std::vector<double> z(b.size());
  const pe::GramReport r = pe::gram_apply(view(g, s.m, s.n), view(b, s.n, k), out(z, s.n, k), options(s.p, s.lambda));
  EXPECT_EQ(r.side, "primal");
  EXPECT_EQ(r.cache, "off");
  EXPECT_FALSE(r.root.fallback);
  EXPECT_LE(relative_difference(z, reference_apply(g, s.m, s.n, s.lambda, s.p, b, k)), kTolerance);
  if (s.p == 1) {
    EXPECT_EQ(r.root.precond, "jacobi");
  }
  if (s.p > 1) {
    EXPECT_EQ(r.root.precond, "frobenius");
  }
}

// Tall G with lambda = 0 (full column rank), wide G with lambda > 0; p = 1 with columns scaled over four
// decades, which Jacobi (the column norms) removes exactly.
INSTANTIATE_TEST_SUITE_P(Shapes, GramPlain,
                         ::testing::Values(Shape{160, 48, 1, 0, 1e4}, Shape{160, 48, 2, 0, 1}, Shape{160, 48, 4, 0, 1},
                                           Shape{40, 72, 2, 0.5, 1}, Shape{40, 72, 1, 0.5, 1}),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           const Shape& s = info.param;
                           return std::to_string(s.m) + "x" + std::to_string(s.n) + "_p" + std::to_string(s.p) +
                                  (s.lambda > 0 ? "_ridge" : "") + (s.col_scale != 1 ? "_scaled_columns" : "");
                         });

// Z = A^{-1/p} G^T C by both identities, for tall and wide G.
TEST(GramRange, BothSidesAgreeWithTheReference) {
  const std::int64_t k = 2;
  for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{40, 96}, {96, 40}}) {
    const std::vector<double> g = make_g(m, n, 31), c = pe::reference::random_gaussian(m, k, 32);
    const std::vector<double> ref = reference_apply(g, m, n, 0.25, 2, pe::reference::multiply(transpose(g, m, n), c, n, m, k), k);
    for (pe::GramSide side : {pe::GramSide::automatic, pe::GramSide::primal, pe::GramSide::dual}) {
      pe::GramOptions o = options(2, 0.25);
      o.rhs = pe::GramRhs::range;
      o.side = side;
      std::vector<double> z(static_cast<std::size_t>(n * k));
      const pe::GramReport r = pe::gram_apply(view(g, m, n), view(c, m, k), out(z, n, k), o);
      if (side == pe::GramSide::automatic) {
        EXPECT_EQ(r.side, m < n ? "dual" : "primal");
      }
      EXPECT_LE(relative_difference(z, ref), kTolerance) << "m " << m << ", n " << n << ", side " << r.side;
    }
  }
}

// lambda = 0, wide G: G^T G is singular, G G^T is not. The dual side gives the pseudo-inverse root
// (G^T G)^{+1/p} G^T C = V S^{1 - 2/p} U^T C (here p = 2: V U^T C, the polar factor's transpose applied
// to C); the primal side is refused with an error naming lambda.
TEST(GramRange, RankDeficientSideIsRefusedAndTheDualWorks) {
  const std::int64_t m = 30, n = 80, k = 2;
  const std::vector<double> g = make_g(m, n, 41), c = pe::reference::random_gaussian(m, k, 42);
  pe::GramOptions o = options(2, 0);
  o.rhs = pe::GramRhs::range;
  std::vector<double> z(static_cast<std::size_t>(n * k));
  const pe::GramReport r = pe::gram_apply(view(g, m, n), view(c, m, k), out(z, n, k), o);
  EXPECT_EQ(r.side, "dual");
  // Reference: G^T (G G^T)^{-1/2} C in double.
  const std::vector<double> ggt = pe::reference::multiply(g, transpose(g, m, n), m, n, m);
  const std::vector<double> w = pe::reference::multiply(pe::reference::inverse_root(ggt, m, 2), c, m, m, k);
  EXPECT_LE(relative_difference(z, pe::reference::multiply(transpose(g, m, n), w, n, m, k)), kTolerance);
  o.side = pe::GramSide::primal;
  try {
    pe::gram_apply(view(g, m, n), view(c, m, k), out(z, n, k), o);
    FAIL() << "a singular Gram was accepted";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lambda"), std::string::npos) << e.what();
  }
}

TEST(Gram, RankDeficientGIsAnError) {
  const std::int64_t m = 100, n = 32, k = 2;
  std::vector<double> g = make_g(m, n, 51);
  for (std::int64_t i = 0; i < m; ++i) g[static_cast<std::size_t>(i + 5 * m)] = g[static_cast<std::size_t>(i + 9 * m)];
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 52);
  std::vector<double> z(b.size());
  for (int p : {1, 2, 4}) {
    try {
      pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), options(p, 0));
      FAIL() << "rank-deficient G accepted for p = " << p;
    } catch (const pe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank deficient"), std::string::npos) << e.what();
    }
  }
  // With a ridge the Gram is positive definite and the result is the ridge's.
  const pe::GramReport r = pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), options(2, 1.0));
  EXPECT_LE(relative_difference(z, reference_apply(g, m, n, 1.0, 2, b, k)), kTolerance);
  EXPECT_TRUE(r.root.matrix_changed);
}

TEST(Gram, BadInputIsAnError) {
  const std::int64_t m = 20, n = 10, k = 1;
  std::vector<double> g = make_g(m, n, 1), b(static_cast<std::size_t>(n), 1.0), z(b.size());
  pe::GramOptions o = options(2, 0);
  o.side = pe::GramSide::dual;  // needs rhs range
  EXPECT_THROW(pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), o), pe::Error);
  o = options(2, -1);
  EXPECT_THROW(pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), o), pe::Error);
  o = options(2, 0);
  EXPECT_THROW(pe::gram_apply(view(g, m, n), view(b, m, k), out(z, n, k), o), pe::Error);  // b rows
  // A budget-only call needs a budget GramOptions has (the root's message named max_steps, which it has not).
  o = options(2, 0);
  o.target = 0;
  expect_error([&] { pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), o); }, {"options.max_gemms"},
               {"max_steps"});
  o = options(2, 0);
  g[7] = std::nan("");
  try {
    pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), o);
    FAIL();
  } catch (const pe::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("g:", 0), 0u) << e.what();
  }
}

// Values are checked as given and results before they are returned: a non-finite B is named, and a
// result beyond the double range ((G^T G)^{-1/2} B ~ 1e100 * 1e300) is an error, not Inf.
TEST(Gram, NonFiniteInputsAndUnrepresentableResultsAreErrors) {
  const std::int64_t m = 20, n = 10, k = 1;
  std::vector<double> g = make_g(m, n, 2), b(static_cast<std::size_t>(n), 1.0), z(b.size());
  b[3] = INFINITY;
  expect_error([&] { pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), options(2, 0)); },
               {"b: entry (3, 0) is inf"});
  std::vector<double> big(g);
  for (double& v : big) v *= 1e200;  // G^T G ~ 1e400
  expect_error([&] { pe::gram_apply(view(big, m, n), view(b, n, k), out(z, n, k), options(2, 1)); },
               {"g (its Gram G^T G overflows: rescale g)", "is inf"});
  for (double& v : g) v *= 1e-100;
  for (double& v : b) v = 1e300;
  for (pe::GramCache* cache : {static_cast<pe::GramCache*>(nullptr), new pe::GramCache}) {
    pe::GramOptions o = options(2, 0);
    o.cache = cache;
    expect_error([&] { pe::gram_apply(view(g, m, n), view(b, n, k), out(z, n, k), o); },
                 {"z (result)", "not representable in f64"});
    delete cache;
  }
}

TEST(GramCache, HitsReusesAndInvalidates) {
  const std::int64_t m = 90, n = 40, k = 2;
  std::vector<double> g = make_g(m, n, 61);
  const std::vector<double> b1 = pe::reference::random_gaussian(n, k, 62), b2 = pe::reference::random_gaussian(n, k, 63);
  pe::GramCache cache;
  pe::GramOptions o = options(2, 0.1);
  o.cache = &cache;
  o.version = 1;
  std::vector<double> z1(b1.size()), z1_again(b1.size()), z2(b2.size());

  pe::GramReport r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z1, n, k), o);
  EXPECT_EQ(r.cache, "miss");
  EXPECT_LE(relative_difference(z1, reference_apply(g, m, n, 0.1, 2, b1, k)), kTolerance);
  const int miss_gemms = r.gemms;

  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z1_again, n, k), o);
  EXPECT_EQ(r.cache, "hit");
  EXPECT_EQ(r.gemms, 1);  // the cached root times B
  EXPECT_LT(r.gemms, miss_gemms);
  EXPECT_EQ(z1_again, z1);  // the same root, the same product: bitwise equal

  r = pe::gram_apply(view(g, m, n), view(b2, n, k), out(z2, n, k), o);  // another right-hand side
  EXPECT_EQ(r.cache, "hit");
  EXPECT_LE(relative_difference(z2, reference_apply(g, m, n, 0.1, 2, b2, k)), kTolerance);

  o.p = 4;  // another root of the same Gram
  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z2, n, k), o);
  EXPECT_EQ(r.cache, "gram");
  EXPECT_LE(relative_difference(z2, reference_apply(g, m, n, 0.1, 4, b1, k)), kTolerance);
  o.p = 2;

  o.lambda = 0.2;  // lambda is part of the key
  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z2, n, k), o);
  EXPECT_EQ(r.cache, "miss");
  EXPECT_LE(relative_difference(z2, reference_apply(g, m, n, 0.2, 2, b1, k)), kTolerance);
  o.lambda = 0.1;

  // The optimizer step: G changes and the caller bumps the token.
  for (double& v : g) v *= 1.5;
  o.version = 2;
  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z2, n, k), o);
  EXPECT_EQ(r.cache, "miss");
  EXPECT_LE(relative_difference(z2, reference_apply(g, m, n, 0.1, 2, b1, k)), kTolerance);

  // G changes but the caller forgets the token: the fingerprint catches it; never the stale root.
  g[3] += 1.0;
  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z2, n, k), o);
  EXPECT_EQ(r.cache, "miss");
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes.front().find("version token"), std::string::npos);
  EXPECT_LE(relative_difference(z2, reference_apply(g, m, n, 0.1, 2, b1, k)), kTolerance);

  EXPECT_LE(cache.size(), 4u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  r = pe::gram_apply(view(g, m, n), view(b1, n, k), out(z2, n, k), o);
  EXPECT_EQ(r.cache, "miss");
}

TEST(GramCache, EvictsTheLeastRecentlyUsedAndServesTheDualSide) {
  const std::int64_t m = 24, n = 60, k = 2;
  const std::vector<double> g1 = make_g(m, n, 71), g2 = make_g(m, n, 72), c = pe::reference::random_gaussian(m, k, 73);
  pe::GramCache cache(1);
  pe::GramOptions o = options(2, 0.3);
  o.cache = &cache;
  o.rhs = pe::GramRhs::range;
  std::vector<double> z(static_cast<std::size_t>(n * k));
  EXPECT_EQ(pe::gram_apply(view(g1, m, n), view(c, m, k), out(z, n, k), o).cache, "miss");
  pe::GramReport r = pe::gram_apply(view(g1, m, n), view(c, m, k), out(z, n, k), o);
  EXPECT_EQ(r.cache, "hit");
  EXPECT_EQ(r.side, "dual");
  EXPECT_EQ(r.gemms, 2);  // (G G^T + lambda I)^{-1/2} C, then G^T times that
  const std::vector<double> ref =
      reference_apply(g1, m, n, 0.3, 2, pe::reference::multiply(transpose(g1, m, n), c, n, m, k), k);
  EXPECT_LE(relative_difference(z, ref), kTolerance);
  EXPECT_EQ(pe::gram_apply(view(g2, m, n), view(c, m, k), out(z, n, k), o).cache, "miss");  // another G
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(pe::gram_apply(view(g1, m, n), view(c, m, k), out(z, n, k), o).cache, "miss");  // evicted
}

}  // namespace
