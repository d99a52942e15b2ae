// pe::inverse_root and pe::apply_inverse_root against LAPACK dsyevd in double: random SPD matrices with
// prescribed spectra, every supported p, both storage dtypes, both apply modes.
#include <gtest/gtest.h>

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "pe/schedule_types.hpp"
#include "runtime_test_support.hpp"

namespace {

using pe_test::Spectrum;

const char* name(Spectrum s) {
  switch (s) {
    case Spectrum::spread: return "spread";
    case Spectrum::clustered_low: return "clusteredlow";
    case Spectrum::clustered_high: return "clusteredhigh";
  }
  return "?";
}

struct Case {
  int p;
  double kappa;
  std::int64_t n;
  Spectrum spectrum;
  pe::DType storage;
};

// Whether one of the report's notes contains `text`.
bool has_note(const pe::Report& r, const std::string& text) {
  return std::any_of(r.notes.begin(), r.notes.end(),
                     [&](const std::string& note) { return note.find(text) != std::string::npos; });
}

// Test names like p2_k1e4_n64_spread_f64 (snprintf: GCC 12 warns falsely on "literal" + std::string).
std::string case_name(int p, double kappa, std::int64_t n, Spectrum s, const char* dtype) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "p%d_k1e%d_n%lld_%s%s%s", p, static_cast<int>(std::lround(std::log10(kappa))),
                static_cast<long long>(n), name(s), dtype[0] ? "_" : "", dtype);
  return buf;
}
std::string case_name(const Case& c) { return case_name(c.p, c.kappa, c.n, c.spectrum, pe::to_string(c.storage)); }

// Storage-specific target: fp64 is asked for far more than fp32 can deliver, to test the tables' tail.
double target_for(pe::DType storage) { return storage == pe::DType::f64 ? 1e-10 : 1e-3; }

class Accuracy : public ::testing::TestWithParam<Case> {};

// Where the default run is expected to reach its target (the verified bound, not the model's): f32 up to
// kappa 1e4 (per-step precision), f64 up to kappa 1e4 for p >= 2. Beyond, the iteration's own rounding in
// f64 (about u sqrt(n) kappa, no precision above f64 to move early steps to) or the verifier's p = 1 factor
// term (about n^2 u kappa) exceed 1e-10, and the report must say the target was missed instead.
//
// One known miss: f32, kappa 1e4, p = 4, eigenvalues clustered at the low end, where the drift model
// under-predicts the first steps' rounding by about 10x (many eigenvalues sit where q(Y) amplifies most),
// so it does not elevate them: verified 1.2e-3 against the target 1e-3, reported as not reached
// (docs/precision.md).
bool target_expected(const Case& c) {
  if (c.kappa <= 1) return true;
  if (c.storage == pe::DType::f32)
    return c.kappa <= 1e2 || (c.kappa <= 1e4 && !(c.p == 4 && c.spectrum == Spectrum::clustered_low));
  return c.kappa <= 1e4 && c.p >= 2;
}

TEST_P(Accuracy, RootAndApplyWithinTheirBounds) {
  PE_REQUIRE_TABLES();
  const Case c = GetParam();
  const std::int64_t n = c.n, k = 3;
  // The input in the storage dtype (an f32 caller hands over f32 values): the certificate is for the A it
  // is given. (An f64 A iterated in f32 is rounded once when stored, which costs about u_f32 kappa of eps
  // against the f64 A; floor_eps says so, BadInput/StorageNarrowerThanInput tests it.)
  auto a = pe_test::spd(n, c.kappa, c.spectrum, 1000 + static_cast<std::uint64_t>(n) * 7 + c.p);
  if (c.storage == pe::DType::f32)
    for (double& v : a) v = static_cast<double>(static_cast<float>(v));
  const auto x_ref = pe::reference::inverse_root(a, n, c.p);
  const auto b = pe_test::random_matrix(n, k, 42);
  const auto z_ref = pe::reference::multiply(x_ref, b, n, n, k);

  pe::Options o;
  o.p = c.p;
  o.target = target_for(c.storage);
  o.storage_from_input = false;
  o.storage = c.storage;

  std::vector<double> x(a.size());
  const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  ASSERT_FALSE(r.fallback) << r.fallback_reason;
  ASSERT_TRUE(r.verified_eps.has_value()) << (r.notes.empty() ? "" : r.notes.back());
  EXPECT_TRUE(r.certified);
  // The certificate holds: eps(X) measured independently (double, through chol(A); that check itself
  // errs by about n u kappa, the slack).
  const double true_eps = pe::reference::root_eps(a, x, n, c.p);
  const double check_slack = 10.0 * static_cast<double>(n) * std::numeric_limits<double>::epsilon() * c.kappa;
  EXPECT_GE(*r.verified_eps, true_eps - check_slack) << "a bound that does not hold";
  if (r.target_reached) {
    EXPECT_LE(true_eps, o.target + check_slack);
  }
  if (target_expected(c)) {
    EXPECT_TRUE(r.target_reached) << "verified " << *r.verified_eps << ", model " << r.model_eps;
  }
  // Theorem (docs/certificate.md, (2)): the relative error is at most 1 - (1 - eps)^{1/p}.
  const double err_x = pe::reference::relative_error(x, x_ref);
  EXPECT_LE(err_x, pe_test::predicted_relative_error(*r.verified_eps, c.p) * (1 + 1e-6) + check_slack)
      << "verified " << *r.verified_eps;

  for (pe::ApplyMode mode : {pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
    o.mode = mode;
    std::vector<double> z(static_cast<std::size_t>(n * k));
    const pe::Report rz = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(z, n, k), o);
    ASSERT_FALSE(rz.fallback) << rz.fallback_reason;
    EXPECT_EQ(rz.mode, mode == pe::ApplyMode::direct ? "direct" : "materialize");
    const double err_z = pe::reference::relative_error(z, z_ref);
    if (mode == pe::ApplyMode::materialize) {
      // Z = X B with the verified X: ||X - A^{-1/p}||_2 <= (1 - (1 - e)^{1/p}) ||A^{-1/p}||_2 (the theorem),
      // so ||Z - Z*||_F <= that ||A^{-1/p}||_2 ||B||_F, plus one product's rounding.
      ASSERT_TRUE(rz.verified_eps.has_value());
      const double root_norm = std::pow(pe::reference::eigenvalues(a, n).front(), -1.0 / c.p);
      double b_norm = 0, z_norm = 0;
      for (double v : b) b_norm += v * v;
      for (double v : z_ref) z_norm += v * v;
      const double amplification = root_norm * std::sqrt(b_norm / z_norm);
      EXPECT_LE(err_z, pe_test::predicted_relative_error(*rz.verified_eps, c.p) * amplification * (1 + 1e-6) +
                           pe_test::rounding_allowance(c.storage, n, 1, c.kappa, c.p) + check_slack)
          << "verified " << *rz.verified_eps;
    } else {
      // Direct: no certificate (reported); the model's bound plus the rounding of the steps and of Horner.
      EXPECT_FALSE(rz.certified);
      const double allowance = pe_test::rounding_allowance(c.storage, n, rz.steps + rz.degree - 1, c.kappa, c.p);
      EXPECT_LE(err_z, pe_test::predicted_relative_error(rz.model_eps, c.p) + allowance)
          << "model " << rz.model_eps << ", steps " << rz.steps;
    }
  }
}

std::vector<Case> accuracy_cases() {
  std::vector<Case> cases;
  for (int p : {1, 2, 3, 4, 8})
    for (double kappa : {1.0, 1e2, 1e4, 1e8})
      for (std::int64_t n : {1, 9, 64, 160})
        for (Spectrum s : {Spectrum::spread, Spectrum::clustered_low, Spectrum::clustered_high}) {
          if (n == 1 && (s != Spectrum::spread || kappa != 1.0)) continue;  // one eigenvalue: one case
          if (kappa == 1.0 && s != Spectrum::spread) continue;              // all spectra coincide
          cases.push_back({p, kappa, n, s, pe::DType::f64});
        }
  // fp32: kappa up to 1e4 (at 1e8 the stored matrix is not numerically positive definite in fp32).
  for (int p : {1, 2, 3, 4, 8})
    for (double kappa : {1e2, 1e4})
      for (Spectrum s : {Spectrum::spread, Spectrum::clustered_low})
        cases.push_back({p, kappa, 160, s, pe::DType::f32});
  // The largest size, once per dtype and a few p.
  for (int p : {2, 4}) {
    cases.push_back({p, 1e4, 512, Spectrum::spread, pe::DType::f32});
    cases.push_back({p, 1e6, 512, Spectrum::spread, pe::DType::f64});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Spectra, Accuracy, ::testing::ValuesIn(accuracy_cases()),
                         [](const auto& info) { return case_name(info.param); });

// The tracked interval must contain every eigenvalue of X^p A_n after every step, where A_n is the
// normalised matrix and X the iterate the step produced (both handed to the on_step hook).
class IntervalContainment : public ::testing::TestWithParam<std::tuple<int, double, Spectrum>> {};

TEST_P(IntervalContainment, TrackedIntervalContainsTrueSpectrum) {
  PE_REQUIRE_TABLES();
  const auto [p, kappa, spectrum] = GetParam();
  const std::int64_t n = 24;
  const auto a = pe_test::spd(n, kappa, spectrum, 77 + static_cast<std::uint64_t>(p));
  pe::Options o;
  o.p = p;
  o.target = 1e-10;
  int checked = 0;
  o.on_step = [&](pe::StepEvent& ev) {
    ASSERT_EQ(ev.x.size(), static_cast<std::size_t>(n * n));
    // The eigenvalues of X^p A_n: X is a polynomial in A_n up to rounding, so in A_n's eigenbasis
    // (A_n = Q diag(lambda) Q^T) they are (q_i^T X q_i)^p lambda_i. This avoids forming X^p A_n, whose
    // rounding (products of factors of norm up to kappa^{1/p}) would swamp the tiny final intervals.
    std::vector<double> q = ev.a_normalized, lambda(static_cast<std::size_t>(n));
    ASSERT_EQ(LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n), q.data(),
                             static_cast<lapack_int>(n), lambda.data()),
              0);
    const auto xq = pe::reference::multiply(ev.x, q, n, n, n);
    std::vector<double> w(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      double rayleigh = 0;
      for (std::int64_t r = 0; r < n; ++r)
        rayleigh += q[static_cast<std::size_t>(r + i * n)] * xq[static_cast<std::size_t>(r + i * n)];
      w[static_cast<std::size_t>(i)] = std::pow(rayleigh, p) * lambda[static_cast<std::size_t>(i)];
    }
    std::sort(w.begin(), w.end());
    // X carries a relative rounding error of the order of the accuracy tests' allowance (ev.step + 1 steps
    // so far); X^p A_n then deviates from the exact residual by p times that. That allowance is an estimate,
    // not a bound, and the extreme eigenvalue of a clustered spectrum sees its worst case: at kappa = 1e6,
    // p = 3 a start l0 moved in its 11th digit took the last step from 0.3x to 1.3x of it. Twice that is
    // still far below what a wrong interval model shows (whole bucket widths, 1e-5 and up at this size).
    // The check itself rounds too (dsyevd's backward error, the Rayleigh quotients, the p-th power): a few
    // n u each, 100 n u in all.
    const double slack = 2 * p * pe_test::rounding_allowance(pe::DType::f64, n, ev.step + 1, kappa, p) +
                         100.0 * static_cast<double>(n) * std::numeric_limits<double>::epsilon() / 2;
    const pe::Interval iv = ev.interval.at(0);
    EXPECT_GE(w.front(), iv.lo - slack) << "step " << ev.step << ": lowest eigenvalue below the tracked interval by " << iv.lo - w.front() << " (slack " << slack << ")";
    EXPECT_LE(w.back(), iv.hi + slack) << "step " << ev.step << ": highest eigenvalue above the tracked interval by " << w.back() - iv.hi << " (slack " << slack << ")";
    ++checked;
  };
  std::vector<double> x(a.size());
  const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  EXPECT_FALSE(r.fallback) << r.fallback_reason;
  EXPECT_EQ(checked, r.steps);
  EXPECT_GE(r.steps, 1);
}

INSTANTIATE_TEST_SUITE_P(
    Steps, IntervalContainment,
    ::testing::Combine(::testing::Values(1, 2, 3, 4, 8), ::testing::Values(1e2, 1e6),
                       ::testing::Values(Spectrum::spread, Spectrum::clustered_low, Spectrum::clustered_high)),
    [](const auto& info) {
      std::string s = case_name(std::get<0>(info.param), std::get<1>(info.param), 0, std::get<2>(info.param), "");
      return s.replace(s.find("_n0"), 3, "");
    });

// Precondition modes: scalar modes for every p; diagonal modes (exact only for p = 1) for p = 1.
TEST(Precondition, ModesAgreeWithReference) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 48;
  auto a = pe_test::spd(n, 1e3, Spectrum::spread, 5);
  // Uneven diagonal scaling so that the diagonal modes have something to equilibrate.
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i)
      a[static_cast<std::size_t>(i + j * n)] *= std::pow(3.0, static_cast<double>(i % 4) / 2 + static_cast<double>(j % 4) / 2);
  for (pe::Precond mode : {pe::Precond::none, pe::Precond::frobenius, pe::Precond::jacobi, pe::Precond::ruiz,
                           pe::Precond::aol}) {
    const bool diagonal = mode != pe::Precond::none && mode != pe::Precond::frobenius;
    for (int p : {1, 2, 4}) {
      if (diagonal && p != 1) continue;
      pe::Options o;
      o.p = p;
      o.target = 1e-5;
      o.precond = mode;
      std::vector<double> x(a.size());
      const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
      EXPECT_EQ(r.precond, pe::to_string(mode));
      EXPECT_FALSE(r.fallback);
      // Condition of the scaled problem is at most that of A times the diagonal's spread (3^3 here).
      const double err = pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p));
      EXPECT_LE(err, pe_test::predicted_relative_error(r.final_eps, p) +
                         pe_test::rounding_allowance(pe::DType::f64, n, r.steps, 1e3 * 27, p))
          << pe::to_string(mode) << " p = " << p;
    }
  }
}

TEST(Precondition, RidgeAndFloorGiveTheRootOfTheShiftedMatrix) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 40;
  const auto a = pe_test::spd(n, 1e6, Spectrum::spread, 9);
  for (int p : {1, 2}) {
    pe::Options o;
    o.p = p;
    o.target = 1e-5;
    o.ridge = 1e-3;
    std::vector<double> x(a.size());
    pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    EXPECT_TRUE(r.matrix_changed);
    EXPECT_EQ(r.ridge, 1e-3);
    auto shifted = a;
    for (std::int64_t i = 0; i < n; ++i) shifted[static_cast<std::size_t>(i + i * n)] += 1e-3;
    EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(shifted, n, p)),
              pe_test::predicted_relative_error(r.final_eps, p) + 1e-9);

    // Floor: the normalised lower bound is raised to l_target by a diagonal shift the report states.
    o.ridge = 0;
    o.l_target = 0.05;
    r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    ASSERT_EQ(r.shift.size(), 1u);
    EXPECT_GT(r.shift[0], 0);
    EXPECT_TRUE(r.matrix_changed);
    EXPECT_DOUBLE_EQ(r.l0.at(0), 0.05);
    shifted = a;
    for (std::int64_t i = 0; i < n; ++i) shifted[static_cast<std::size_t>(i + i * n)] += r.shift[0];
    EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(shifted, n, p)),
              pe_test::predicted_relative_error(r.final_eps, p) + 1e-9);
  }
}

// The Cholesky bounds run on the whole batch at once (on the plan's backend, in double): each member gets
// the same start as when run alone, a proven upper end and an estimated lower end of its own, whatever
// its neighbours need (member 1 is diagonally dominant: Gershgorin). f32 storage without verification:
// the plan makes the f64 companion for them itself.
TEST(Precondition, CholeskyBoundsPerBatchMember) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 40, batch = 3;
  const std::vector<double> kappas = {1e3, 0, 1e2};
  std::vector<std::vector<double>> members;
  members.push_back(pe_test::spd(n, kappas[0], Spectrum::spread, 31));
  std::vector<double> dominant(static_cast<std::size_t>(n * n), 0.01);
  for (std::int64_t i = 0; i < n; ++i) dominant[static_cast<std::size_t>(i + i * n)] = 1 + static_cast<double>(i);
  members.push_back(dominant);
  members.push_back(pe_test::spd(n, kappas[2], Spectrum::clustered_high, 32));
  std::vector<float> a;
  for (const auto& m : members) a.insert(a.end(), m.begin(), m.end());
  pe::Options o;
  o.p = 2;
  o.verify = false;
  std::vector<float> x(a.size());
  pe::Matrix view{a.data(), n, n, n, pe::DType::f32, pe::Layout::col_major, batch, n * n};
  pe::RootPlan plan(pe::describe(view), o);
  const pe::Report r = plan.execute(view, pe::MutableMatrix{x.data(), n, n, n, pe::DType::f32, pe::Layout::col_major,
                                                           batch, n * n});
  ASSERT_EQ(r.l0.size(), 3u);
  for (std::int64_t k = 0; k < batch; ++k) {
    const auto uk = static_cast<std::size_t>(k);
    // The eigenvalues of the member as stored (f32), in double.
    std::vector<double> stored(a.begin() + k * n * n, a.begin() + (k + 1) * n * n), w(static_cast<std::size_t>(n));
    ASSERT_EQ(LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', static_cast<lapack_int>(n), stored.data(),
                             static_cast<lapack_int>(n), w.data()),
              0);
    EXPECT_GE(r.scale[uk], w.back()) << k;  // proven: the spectrum of A_n is at most 1
    EXPECT_LE(r.l0[uk], w.front() / r.scale[uk]) << k;
    if (kappas[uk] > 0) {
      EXPECT_LE(r.scale[uk], 1.3 * w.back()) << k;              // tightened from the cheap norms
      EXPECT_GE(r.l0[uk], 0.5 * w.front() / r.scale[uk]) << k;  // 0.8 of an estimate from above
    }
    // Alone, the member starts from the same numbers, bit for bit.
    pe::Matrix one{a.data() + k * n * n, n, n, n, pe::DType::f32};
    std::vector<float> x1(static_cast<std::size_t>(n * n));
    const pe::Report single = pe::inverse_root(one, pe::MutableMatrix{x1.data(), n, n, n, pe::DType::f32}, o);
    EXPECT_EQ(single.scale.at(0), r.scale[uk]) << k;
    EXPECT_EQ(single.l0.at(0), r.l0[uk]) << k;
  }
  EXPECT_EQ(r.l0_source, "cholesky_estimate");
}

// A member that is not positive definite stops the batch with an error that names it, found by the same
// factorisation on the plan's backend.
TEST(Precondition, CholeskyFindsTheIndefiniteMember) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 24;
  std::vector<double> a = pe_test::spd(n, 1e2, Spectrum::spread, 41);
  auto w = pe::reference::make_spectrum(n, 100, Spectrum::spread);
  w[0] = -0.05;
  const std::vector<double> indefinite = pe::reference::random_spd(w, 3);  // a positive diagonal nonetheless
  for (std::int64_t i = 0; i < n; ++i) ASSERT_GT(indefinite[static_cast<std::size_t>(i + i * n)], 0);
  a.insert(a.end(), indefinite.begin(), indefinite.end());
  pe::Options o;
  std::vector<double> x(a.size());
  try {
    const pe::Report r = pe::inverse_root(pe::Matrix{a.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, 2, n * n},
                                          pe::MutableMatrix{x.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, 2, n * n}, o);
    ADD_FAILURE() << "expected an error, got status " << pe::to_string(r.status);
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch member 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not numerically positive definite"), std::string::npos) << e.what();
  }
}

TEST(Precondition, LowerBoundSources) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 32;
  const double kappa = 1e4;
  const auto a = pe_test::spd(n, kappa, Spectrum::spread, 12);  // lambda_min = 1e-4, lambda_max = 1
  std::vector<double> x(a.size());
  pe::Options o;
  o.p = 2;
  o.target = 1e-6;
  pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  // Dense random SPD: Gershgorin's disc bound is negative, so l0 comes from the certified estimate.
  EXPECT_NE(r.l0_source, "gershgorin");
  const double lambda_min_normalized = 1e-4 / r.scale.at(0);
  EXPECT_LE(r.l0.at(0), lambda_min_normalized) << r.l0_source;
  EXPECT_TRUE(r.certified);
  // The upper end is certified too: lambda_max(A) = 1 must stay at or below the scale A is divided by,
  // which the Cholesky check brings within a few percent of it (the cheap norms are ~sqrt(n) above).
  EXPECT_GE(r.scale.at(0), 1.0);
  EXPECT_LE(r.scale.at(0), 1.3);

  o.lambda_min_hint = 1e-4;
  r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  EXPECT_EQ(r.l0_source, "lambda_min_hint");
  EXPECT_NEAR(r.l0.at(0), 1e-4 / r.scale.at(0), 1e-12);
  EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, 2)),
            pe_test::predicted_relative_error(r.final_eps, 2) + 1e-9);

  o.lambda_min_hint = 0;
  o.kappa_hint = kappa;
  r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  EXPECT_EQ(r.l0_source, "kappa_hint");
  EXPECT_LE(r.l0.at(0), 1e-4 / r.scale.at(0) * (1 + 1e-12));

  // Strictly diagonally dominant: Gershgorin is a rigorous lower bound.
  std::vector<double> d(static_cast<std::size_t>(n * n), 0.01);
  for (std::int64_t i = 0; i < n; ++i) d[static_cast<std::size_t>(i + i * n)] = 1 + static_cast<double>(i);
  o.kappa_hint = 0;
  r = pe::inverse_root(pe_test::view(d, n, n), pe_test::out(x, n, n), o);
  EXPECT_EQ(r.l0_source, "gershgorin");
  EXPECT_TRUE(r.certified);
}

// Where no Cholesky factorisation bounds lambda_max (a lower-end hint, Gershgorin), the first step's own
// product Y_0^2 = A_n^2 gives ||A_n^2||_F^{1/2} >= lambda_max(A_n) for no extra GEMM. Its bound must hold
// (the reported scale, what A was divided by in the end, at or above lambda_max(A) = 1, rounding of A's
// storage included), be that norm to within rounding, and cost nothing: a run told that scale as
// lambda_max_hint (where the product then gains nothing) needs exactly the same GEMMs.
TEST(Precondition, UpperEndFromTheFirstStepsSquare) {
  PE_REQUIRE_TABLES();
  int tightened_runs = 0, tightened_one_level_up = 0;
  for (pe::DType storage : {pe::DType::f64, pe::DType::f32})
    for (int p : {1, 2, 4})
      for (Spectrum kind : {Spectrum::spread, Spectrum::clustered_low, Spectrum::clustered_high}) {
        const std::int64_t n = 96;
        const auto a = pe_test::spd(n, 1e4, kind, 40 + static_cast<std::uint64_t>(p));  // spectrum in [1e-4, 1]
        const auto a2 = pe::reference::multiply(a, a, n, n, n);
        double square_norm = 0;
        for (double v : a2) square_norm += v * v;
        const double bound = std::pow(square_norm, 0.25);  // ||A^2||_F^{1/2}
        const std::string where = std::string(pe::to_string(storage)) + " p=" + std::to_string(p) + " " + name(kind);
        pe::Options o;
        o.p = p;
        o.target = storage == pe::DType::f64 ? 1e-8 : 1e-3;
        o.lambda_min_hint = 1e-4;
        o.storage = storage;
        o.storage_from_input = false;
        std::vector<double> x(a.size());
        const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
        const bool tightened = has_note(r, "||A_n^2||_F^{1/2}");
        // The cheap norms are min(||A||_inf, ||A||_F); for the log-spaced spectrum the square's bound is well
        // below them (where one eigenvalue dominates, ||A||_F is already within 2 %: no gain, not used).
        // Only a first step of degree >= 2 forms the square.
        const bool first_forms_square = r.intervals.front().degree >= 2;
        if (kind == Spectrum::spread && first_forms_square) {
          EXPECT_TRUE(tightened) << where;
        }
        if (tightened) {
          ++tightened_runs;
          if (has_note(r, "step(s) ran in f64")) ++tightened_one_level_up;
        }
        const double u = storage == pe::DType::f64 ? 0x1p-53 : 0x1p-24;
        EXPECT_GE(r.scale.at(0), 1.0 - 4 * u) << where;
        if (tightened) {
          EXPECT_LE(r.scale.at(0), bound * (1 + 1e-3)) << where;
        }
        EXPECT_NEAR(r.l0.at(0), 1e-4 / r.scale.at(0), 1e-12) << where;
        ASSERT_TRUE(r.certified) << where;
        EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p)),
                  pe_test::predicted_relative_error(*r.verified_eps, p) + 1e-9) << where;

        // Told the same scale, the run plans from the same l0: the same GEMMs, the square no longer used.
        pe::Options told = o;
        told.lambda_max_hint = r.scale.at(0);
        std::vector<double> x_told(a.size());
        const pe::Report rt = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x_told, n, n), told);
        EXPECT_EQ(rt.gemms, r.gemms) << where;
        EXPECT_EQ(rt.steps, r.steps) << where;

        // A plan gives the one-shot call's result bit for bit.
        pe::RootPlan plan(pe::MatrixDesc{n, n, 1, pe::DType::f64}, o);
        std::vector<double> x_plan(a.size());
        for (int repeat = 0; repeat < 2; ++repeat) {
          const pe::Report rp = plan.execute(pe_test::view(a, n, n), pe_test::out(x_plan, n, n));
          EXPECT_EQ(rp.gemms, r.gemms) << where;
          EXPECT_EQ(x_plan, x) << where;
        }
      }
  // The bound was used, also where the first step runs one level up (f32 storage, square formed in f64).
  EXPECT_GE(tightened_runs, 4);
  EXPECT_GE(tightened_one_level_up, 1);
}

// (c A)^{-1/p} = c^{-1/p} A^{-1/p}: scaling by a power of two is exact, so results for entries near the
// ends of the double range must meet the same bound as for A itself (sums of their squares alone would
// underflow to 0 or overflow to inf). A norm whose reciprocal overflows is an error naming the norm.
TEST(Precondition, ExtremeMagnitudesGiveTheScaledRoot) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 24;
  const double kappa = 1e3;
  const auto a = pe_test::spd(n, kappa, Spectrum::spread, 21);
  for (int exponent : {-1000, 1000}) {
    std::vector<double> scaled(a);
    for (double& v : scaled) v = std::ldexp(v, exponent);
    for (int p : {1, 2, 4}) {
      pe::Options o;
      o.p = p;
      o.target = 1e-6;
      std::vector<double> x(a.size());
      const pe::Report r = pe::inverse_root(pe_test::view(scaled, n, n), pe_test::out(x, n, n), o);
      EXPECT_FALSE(r.fallback) << r.fallback_reason;
      for (double& v : x) v = std::ldexp(v, exponent / p);  // c^{1/p} X ~ A^{-1/p}
      EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p)),
                pe_test::predicted_relative_error(r.final_eps, p) +
                    pe_test::rounding_allowance(pe::DType::f64, n, r.steps, kappa, p))
          << "2^" << exponent << " A, p = " << p;
    }
  }
  std::vector<double> subnormal(a);
  for (double& v : subnormal) v = std::ldexp(v, -1070);
  std::vector<double> x(a.size());
  pe::Options o;
  try {
    pe::inverse_root(pe_test::view(subnormal, n, n), pe_test::out(x, n, n), o);
    ADD_FAILURE() << "a matrix of subnormal entries was accepted";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("||A||_inf = "), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("0.000000"), std::string::npos) << e.what();
  }
}

// Optional knobs must not change what the bound promises.
TEST(Iteration, SymmetrizeCadenceAndRenormalisationKeepTheBound) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 64;
  for (int p : {2, 3}) {
    const auto a = pe_test::spd(n, 1e5, Spectrum::spread, 21);
    const auto ref = pe::reference::inverse_root(a, n, p);
    for (int every : {0, 1, 3})
      for (bool renormalize : {false, true}) {
        pe::Options o;
        o.p = p;
        o.target = 1e-5;
        o.symmetrize_every = every;
        o.renormalize = renormalize;
        std::vector<double> x(a.size());
        const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
        EXPECT_FALSE(r.fallback);
        EXPECT_LE(pe::reference::relative_error(x, ref), pe_test::predicted_relative_error(r.final_eps, p) +
                                                             pe_test::rounding_allowance(pe::DType::f64, n, r.steps, 1e5, p))
            << "p " << p << ", symmetrize_every " << every << ", renormalize " << renormalize;
      }
  }
}

// A target below what the certificates can reach stops at that floor, says so, and does not spend the
// step limit repeating the last step. (Images are stored as doubles around 1, so no bound goes below
// ~1e-16: 1e-20 is unreachable in every storage. The f32 tables reach ~2e-16 in the interval model:
// near l = 1 the optimal q has coefficients exact in float, e.g. 3, -3, 1 for p = 1.)
TEST(Iteration, UnreachableTargetStopsAtTheTablesFloor) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 32;
  const auto a = pe_test::spd(n, 1e4, Spectrum::spread, 41);
  const std::vector<float> af(a.begin(), a.end());
  for (int degree : {0, 1, 2}) {
    pe::Options o;
    o.p = 2;
    o.degree = degree;
    o.target = 1e-20;
    std::vector<float> x(af.size());
    const pe::Report r = pe::inverse_root(pe_test::view(af, n, n), pe_test::out(x, n, n), o);
    EXPECT_FALSE(r.target_reached);
    EXPECT_LT(r.steps, pe::kDefaultStepLimit / 2) << "degree " << degree;
    EXPECT_TRUE(has_note(r, "below the smallest bound")) << "degree " << degree;
    // Every step it took still lowered the bound: one step fewer ends higher.
    pe::Options shorter = o;
    shorter.degree = r.degree;
    shorter.max_steps = r.steps - 1;
    const pe::Report s = pe::inverse_root(pe_test::view(af, n, n), pe_test::out(x, n, n), shorter);
    EXPECT_GT(s.final_eps, r.final_eps) << "degree " << degree;
  }
}

// Every polynomial degree (degree 1 is the affine path that skips Y^2; 3 and 4 form q by
// Paterson-Stockmeyer).
TEST(Iteration, BothDegreesReachTheTarget) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 50;
  const auto a = pe_test::spd(n, 1e3, Spectrum::clustered_low, 31);
  for (int p : {1, 2, 3, 4, 8})
    for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
      pe::Options o;
      o.p = p;
      o.degree = degree;
      o.target = 1e-5;
      std::vector<double> x(a.size());
      const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
      EXPECT_EQ(r.degree, degree);
      EXPECT_TRUE(r.target_reached);
      EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p)),
                pe_test::predicted_relative_error(r.final_eps, p) +
                    pe_test::rounding_allowance(pe::DType::f64, n, r.steps, 1e3, p))
          << "p " << p << " degree " << degree;
      // GEMM accounting of the materialised iteration matches the contract in schedule_types.hpp
      // whenever no re-planning changed the step count.
      EXPECT_LE(r.gemms, pe::schedule_gemms(p, degree, r.steps));
    }
}

// With the degree left to the runtime, a degree-2 run may end with one cheaper degree-1 step: never
// more GEMMs than forcing degree 2, and the same guarantee.
TEST(Iteration, AutomaticDegreeNeverCostsMoreThanForcedDegree2) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 64;
  const auto a = pe_test::spd(n, 1e4, Spectrum::spread, 41);
  for (int p : {1, 2, 3, 4, 8}) {
    pe::Options o;
    o.p = p;
    std::vector<double> x(a.size());
    const pe::Report automatic = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    EXPECT_TRUE(automatic.target_reached);
    EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, p)),
              pe_test::predicted_relative_error(automatic.final_eps, p) +
                  pe_test::rounding_allowance(pe::DType::f64, n, automatic.steps, 1e4, p));
    o.degree = 2;
    const pe::Report forced = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    if (automatic.degree == 2) {
      EXPECT_LE(automatic.gemms, forced.gemms) << "p " << p;
    }
  }
}

// Batched input: every member gets its own root (and its own scaling and interval).
TEST(Iteration, BatchMembersAreIndependent) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 30, batch = 3;
  std::vector<double> a(static_cast<std::size_t>(n * n * batch)), x(a.size());
  const double kappas[] = {10, 1e4, 1e7};
  for (std::int64_t k = 0; k < batch; ++k) {
    const auto m = pe_test::spd(n, kappas[k], Spectrum::spread, 50 + static_cast<std::uint64_t>(k));
    for (std::size_t i = 0; i < m.size(); ++i) a[static_cast<std::size_t>(k * n * n) + i] = m[i] * (k + 1.0);
  }
  pe::Options o;
  o.p = 2;
  o.target = 1e-5;
  const pe::Report r = pe::inverse_root(pe::Matrix{a.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, batch, n * n},
                                        pe::MutableMatrix{x.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, batch, n * n}, o);
  EXPECT_EQ(r.scale.size(), 3u);
  for (std::int64_t k = 0; k < batch; ++k) {
    const std::vector<double> ak(a.begin() + k * n * n, a.begin() + (k + 1) * n * n),
        xk(x.begin() + k * n * n, x.begin() + (k + 1) * n * n);
    EXPECT_LE(pe::reference::relative_error(xk, pe::reference::inverse_root(ak, n, 2)),
              pe_test::predicted_relative_error(r.final_eps, 2) + 1e-9)
        << "member " << k;
  }
}

// Views: row-major layout and a leading dimension above the row count.
TEST(Iteration, RowMajorAndPaddedViews) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 20, ld = 27, k = 4;
  const auto a = pe_test::spd(n, 1e3, Spectrum::spread, 61);
  std::vector<double> padded(static_cast<std::size_t>(ld * n), -7.0);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) padded[static_cast<std::size_t>(i + j * ld)] = a[static_cast<std::size_t>(i + j * n)];
  std::vector<double> x(static_cast<std::size_t>(ld * n), -7.0);
  pe::Options o;
  o.p = 3;
  o.target = 1e-9;  // relative error about target / p, far inside the 1e-6 the checks below allow
  pe::inverse_root(pe::Matrix{padded.data(), n, n, ld}, pe::MutableMatrix{x.data(), n, n, ld}, o);
  const auto ref = pe::reference::inverse_root(a, n, 3);
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t i = 0; i < n; ++i)
      EXPECT_NEAR(x[static_cast<std::size_t>(i + j * ld)], ref[static_cast<std::size_t>(i + j * n)], 1e-6);
    for (std::int64_t i = n; i < ld; ++i) EXPECT_EQ(x[static_cast<std::size_t>(i + j * ld)], -7.0) << "padding written";
  }
  // Z = A^{-1/3} B with B and Z row-major (C order, as NumPy hands them over).
  const auto b = pe_test::random_matrix(n, k, 3);
  std::vector<double> b_rows(b.size()), z_rows(b.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j) b_rows[static_cast<std::size_t>(i * k + j)] = b[static_cast<std::size_t>(i + j * n)];
  pe::apply_inverse_root(pe_test::view(a, n, n), pe::Matrix{b_rows.data(), n, k, k, pe::DType::f64, pe::Layout::row_major},
                         pe::MutableMatrix{z_rows.data(), n, k, k, pe::DType::f64, pe::Layout::row_major}, o);
  const auto z_ref = pe::reference::multiply(ref, b, n, n, k);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j)
      EXPECT_NEAR(z_rows[static_cast<std::size_t>(i * k + j)], z_ref[static_cast<std::size_t>(i + j * n)], 1e-6);
}

// fp32 views in and out (the storage follows the input's dtype by default).
TEST(Iteration, Float32ViewsIterateInFloat32) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 64;
  const auto a = pe_test::spd(n, 1e3, Spectrum::spread, 71);
  std::vector<float> af(a.begin(), a.end()), xf(a.size());
  pe::Options o;
  o.p = 2;
  const pe::Report r = pe::inverse_root(pe_test::view(af, n, n), pe_test::out(xf, n, n), o);
  EXPECT_EQ(r.storage, "f32");
  EXPECT_EQ(r.backend, "cpu");
  const std::vector<double> x(xf.begin(), xf.end());
  EXPECT_LE(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, 2)),
            pe_test::predicted_relative_error(r.final_eps, 2) +
                pe_test::rounding_allowance(pe::DType::f32, n, r.steps, 1e3, 2));
}

}  // namespace
