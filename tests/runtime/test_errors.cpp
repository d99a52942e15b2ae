// Bad input gets a pe::Error naming what is wrong; numerical trouble goes to the reported fallback;
// budgets are never exceeded; the apply mode is chosen from the shapes and the reuse hint.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "runtime_test_support.hpp"

namespace {

using pe_test::Spectrum;

// Runs `call`, expects a pe::Error whose message contains every one of `fragments`.
void expect_error(const std::function<void()>& call, std::initializer_list<const char*> fragments) {
  try {
    call();
    ADD_FAILURE() << "no pe::Error thrown (expected one mentioning '" << *fragments.begin() << "')";
  } catch (const pe::Error& e) {
    for (const char* f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

class BadInput : public ::testing::Test {
 protected:
  static constexpr std::int64_t n = 6;
  std::vector<double> a = pe_test::spd(n, 10, Spectrum::spread, 1);
  std::vector<double> x = std::vector<double>(static_cast<std::size_t>(n * n));
  std::vector<double> b = pe_test::random_matrix(n, 2, 1);
  std::vector<double> z = std::vector<double>(static_cast<std::size_t>(n * 2));
  pe::Options o;

  void root(const pe::Matrix& av, const pe::Options& opt) { pe::inverse_root(av, pe_test::out(x, n, n), opt); }
  void root(const pe::Options& opt) { root(pe_test::view(a, n, n), opt); }
};

TEST_F(BadInput, OptionsAreValidatedByName) {
  PE_REQUIRE_TABLES();
  auto with = [&](auto edit) {
    pe::Options opt;
    edit(opt);
    return opt;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  expect_error([&] { root(with([](auto& v) { v.p = 0; })); }, {"options.p", "0"});
  expect_error([&] { root(with([](auto& v) { v.p = 65; })); }, {"options.p", "65"});
  expect_error([&] { root(with([](auto& v) { v.target = -1; })); }, {"options.target"});
  expect_error([&] { root(with([](auto& v) { v.target = 1; })); }, {"options.target"});
  expect_error([&] { root(with([&](auto& v) { v.target = nan; })); }, {"options.target", "nan"});
  expect_error([&] { root(with([](auto& v) { v.max_gemms = -2; })); }, {"options.max_gemms", "-2"});
  expect_error([&] { root(with([](auto& v) { v.max_steps = -1; })); }, {"options.max_steps"});
  expect_error([&] { root(with([](auto& v) { v.target = 0; })); }, {"target", "max_gemms", "max_steps"});
  expect_error([&] { root(with([](auto& v) { v.degree = 5; })); }, {"options.degree", "5"});
  expect_error([&] { root(with([](auto& v) { v.ridge = -1e-3; })); }, {"options.ridge"});
  expect_error([&] { root(with([](auto& v) { v.l_target = 1; })); }, {"options.l_target"});
  expect_error([&] { root(with([](auto& v) { v.lambda_min_hint = -1; })); }, {"options.lambda_min_hint"});
  expect_error([&] { root(with([](auto& v) { v.kappa_hint = 0.5; })); }, {"options.kappa_hint", "0.5"});
  expect_error([&] { root(with([](auto& v) { v.symmetrize_every = -1; })); }, {"options.symmetrize_every"});
  expect_error([&] { root(with([](auto& v) { v.reuse_count = 0; })); }, {"options.reuse_count"});
  expect_error([&] { root(with([](auto& v) { v.schedule_source = pe::ScheduleSource::json_file; })); },
               {"options.schedule_file"});
  expect_error([&] {
    root(with([](auto& v) {
      v.schedule_source = pe::ScheduleSource::json_file;
      v.schedule_file = "/nonexistent/pe_schedules.json";
    }));
  },
               {"/nonexistent/pe_schedules.json", "cannot be opened"});
  // Diagonal scalings change A^{-1/p} for p > 1.
  for (pe::Precond mode : {pe::Precond::jacobi, pe::Precond::ruiz, pe::Precond::aol})
    expect_error([&] { root(with([&](auto& v) { v.precond = mode, v.p = 2; })); }, {pe::to_string(mode), "p = 1"});
  expect_error([] { pe::parse_precond("cholesky"); }, {"cholesky", "frobenius"});
  // A device view needs options.device = cuda.
  expect_error([&] { root(pe::Matrix{a.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, 1, 0, pe::Device::cuda}, o); },
               {"a:", "device cuda", "options.device is cpu"});
  // The CPU backend has no TF32.
  expect_error([&] { root(with([](auto& v) { v.compute = pe::ComputeMode::tf32; })); }, {"tf32"});
}

TEST_F(BadInput, ViewsAreValidatedByName) {
  PE_REQUIRE_TABLES();
  expect_error([&] { root(pe::Matrix{nullptr, n, n, n}, o); }, {"a:", "null"});
  expect_error([&] { root(pe::Matrix{a.data(), n, n - 1, n}, o); }, {"a:", "not square"});
  expect_error([&] { root(pe::Matrix{a.data(), 0, 0, 1}, o); }, {"a:", "0 x 0"});
  expect_error([&] { root(pe::Matrix{a.data(), n, n, n - 1}, o); }, {"a:", "leading dimension", "5"});
  expect_error([&] { root(pe::Matrix{a.data(), n, n, n, pe::DType::bf16}, o); }, {"a:", "bf16"});
  expect_error([&] { root(pe::Matrix{a.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, 2, n}, o); },
               {"a:", "stride", "overlap"});
  expect_error([&] { root(pe::Matrix{a.data(), n, n, n, pe::DType::f64, pe::Layout::col_major, 0}, o); },
               {"a:", "batch"});
  expect_error([&] { pe::inverse_root(pe_test::view(a, n, n), pe::MutableMatrix{x.data(), n - 1, n - 1, n}, o); },
               {"x:", "does not match"});
  expect_error([&] { pe::inverse_root(pe_test::view(a, n, n), pe::MutableMatrix{nullptr, n, n, n}, o); },
               {"x:", "null"});
  expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n - 1, 2), pe_test::out(z, n - 1, 2), o); },
               {"b:", "rows"});
  expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, 2), pe_test::out(z, n, 1), o); },
               {"z:", "does not match"});
}

TEST_F(BadInput, MatrixContentsAreValidated) {
  PE_REQUIRE_TABLES();
  auto bad = a;
  bad[3] = std::numeric_limits<double>::quiet_NaN();
  expect_error([&] { root(pe_test::view(bad, n, n), o); }, {"a:", "(3, 0)", "finite"});
  bad = a;
  bad[static_cast<std::size_t>(2 + 4 * n)] += 0.1;  // a(2,4) != a(4,2)
  expect_error([&] { root(pe_test::view(bad, n, n), o); }, {"a:", "not symmetric", "a(4,2)"});
  bad = a;
  bad[static_cast<std::size_t>(1 + 1 * n)] = -1;
  expect_error([&] { root(pe_test::view(bad, n, n), o); }, {"a:", "(1, 1)", "not positive definite"});
  // Within the symmetry tolerance (a relative 1e-15 perturbation, below 100 unit roundoffs): accepted.
  bad = a;
  bad[static_cast<std::size_t>(2 + 4 * n)] *= 1 + 1e-15;
  EXPECT_NO_THROW(root(pe_test::view(bad, n, n), o));
}

// Indefinite input with a positive diagonal passes validation; the Cholesky certification fails, the
// eigendecomposition fallback runs, finds the negative eigenvalue and says so.
TEST(Fallback, IndefiniteInputIsReportedByTheFallback) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 16;
  auto w = pe::reference::make_spectrum(n, 100, Spectrum::spread);
  w[0] = -0.05;
  const auto a = pe::reference::random_spd(w, 3);
  for (std::int64_t i = 0; i < n; ++i) ASSERT_GT(a[static_cast<std::size_t>(i + i * n)], 0);
  std::vector<double> x(a.size());
  pe::Options o;
  expect_error([&] { pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o); },
               {"not positive definite", "Cholesky", "eigendecomposition fallback"});
  std::vector<double> b = pe_test::random_matrix(n, 2, 4), z(static_cast<std::size_t>(n * 2));
  expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, 2), pe_test::out(z, n, 2), o); },
               {"not positive definite", "eigendecomposition fallback"});
}

// Faults injected into the residual between steps (through the on_step hook) trip the divergence checks;
// the result then comes from the exact root and the report says why.
class Fallback : public ::testing::TestWithParam<std::string> {};

TEST_P(Fallback, InjectedFaultTriggersExactRoot) {
  PE_REQUIRE_TABLES();
  const std::string fault = GetParam();
  const std::int64_t n = 40, k = 3;
  const auto a = pe_test::spd(n, 1e4, Spectrum::spread, 8);
  const auto ref = pe::reference::inverse_root(a, n, 2);
  const auto b = pe_test::random_matrix(n, k, 9);
  const auto z_ref = pe::reference::multiply(ref, b, n, n, k);
  pe::Options o;
  o.p = 2;
  o.on_step = [&](pe::StepEvent& ev) {
    if (ev.step != 1 || ev.y.empty()) return;
    if (fault == "nan") ev.y[5] = std::numeric_limits<double>::quiet_NaN();
    if (fault == "inf") ev.y[5] = -std::numeric_limits<double>::infinity();  // found by the norm, as NaN is
    if (fault == "blowup")
      for (double& v : ev.y) v *= 3;  // every eigenvalue leaves the tracked interval [l, 1]
    ev.write_back_y = true;
  };
  const char* expected = fault == "blowup" ? "left the tracked interval" : "non-finite";
  std::vector<double> x(a.size());
  pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
  EXPECT_TRUE(r.fallback);
  EXPECT_NE(r.fallback_reason.find(expected), std::string::npos) << r.fallback_reason;
  EXPECT_NE(r.fallback_reason.find("after step 1"), std::string::npos) << r.fallback_reason;
  // The fallback's exact root is verified like any other result.
  EXPECT_TRUE(r.certified);
  ASSERT_TRUE(r.verified_eps.has_value());
  EXPECT_LT(*r.verified_eps, 1e-9);
  EXPECT_EQ(r.status, pe::Status::fallback);
  // The exact root (dsyevd in double on the normalised matrix): rounding only.
  EXPECT_LT(pe::reference::relative_error(x, ref), 1e-11);
  EXPECT_NE(pe::to_json(r).find("\"fallback\":true"), std::string::npos);
  for (pe::ApplyMode mode : {pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
    o.mode = mode;
    std::vector<double> z(static_cast<std::size_t>(n * k));
    r = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(z, n, k), o);
    EXPECT_TRUE(r.fallback) << r.mode;
    EXPECT_NE(r.fallback_reason.find(expected), std::string::npos) << r.fallback_reason;
    EXPECT_LT(pe::reference::relative_error(z, z_ref), 1e-11) << r.mode;
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, Fallback, ::testing::Values("nan", "inf", "blowup"));

// Without a fallback, a divergence that left non-finite values anywhere (a residual or the result) is a
// pe::Error, never a returned NaN; one the trace checks caught with finite values is Status::diverged.
// "blowup_then_nan": the first failed check is the interval's, and the NaN written a step later reaches
// the result, which must still be refused.
TEST(NoFallback, NonFiniteDivergenceThrowsFiniteOneIsAStatus) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 40;
  const auto a = pe_test::spd(n, 1e4, Spectrum::spread, 8);
  for (const std::string fault : {"nan", "blowup", "blowup_then_nan"}) {
    pe::Options o;
    o.p = 2;
    o.fallback = pe::Fallback::never;
    o.on_step = [&](pe::StepEvent& ev) {
      if (ev.y.empty()) return;
      const bool blowup = fault != "nan" && ev.step == 1;
      const bool nan = (fault == "nan" && ev.step == 1) || (fault == "blowup_then_nan" && ev.step == 2);
      if (blowup)
        for (double& v : ev.y) v *= 3;
      if (nan) ev.y[5] = std::numeric_limits<double>::quiet_NaN();
      ev.write_back_y = blowup || nan;
    };
    std::vector<double> x(a.size());
    if (fault == "blowup") {
      const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
      EXPECT_EQ(r.status, pe::Status::diverged);
      EXPECT_FALSE(r.fallback);
      continue;
    }
    try {
      pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
      ADD_FAILURE() << fault << ": a divergence with non-finite values returned";
    } catch (const pe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << fault << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("fallback is never"), std::string::npos) << fault << ": " << e.what();
    }
  }
}

// The GEMM budget is a hard limit for every mode; a larger budget never gives a worse bound.
TEST(Budget, NeverExceeded) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 32, k = 2;
  const auto a = pe_test::spd(n, 1e6, Spectrum::spread, 10);
  const auto b = pe_test::random_matrix(n, k, 11);
  for (int p : {1, 2, 3, 4})
    for (pe::ApplyMode mode : {pe::ApplyMode::automatic, pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
      double previous_bound = 2;
      for (int budget = 2; budget <= 40; budget += 3) {
        pe::Options o;
        o.p = p;
        o.target = 0;  // budget only: spend what is allowed
        o.max_gemms = budget;
        o.mode = mode;
        std::vector<double> x(a.size()), z(static_cast<std::size_t>(n * k));
        const pe::Report r = mode == pe::ApplyMode::automatic
                                 ? pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o)
                                 : pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k),
                                                          pe_test::out(z, n, k), o);
        EXPECT_LE(r.gemms, budget) << "p " << p << " mode " << r.mode;
        EXPECT_GE(r.steps, 1);
        EXPECT_EQ(r.intervals.size(), static_cast<std::size_t>(r.steps));
        // (Bounds at the level of double rounding, ~1e-16, may differ by an ulp between plans.)
        EXPECT_LE(r.final_eps, previous_bound * (1 + 1e-12) + 1e-15) << "p " << p << " budget " << budget << " " << r.mode;
        previous_bound = r.final_eps;
      }
    }
  // A step budget, with and without a target.
  for (int steps : {1, 2, 3}) {
    pe::Options o;
    o.p = 2;
    o.max_steps = steps;
    std::vector<double> x(a.size());
    const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    EXPECT_LE(r.steps, steps);
    EXPECT_FALSE(r.target_reached);  // kappa 1e6 needs more than 3 steps for 1e-3
  }
}

TEST(Budget, TooSmallForOneStepIsAnError) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 8;
  const auto a = pe_test::spd(n, 10, Spectrum::spread, 12);
  const auto b = pe_test::random_matrix(n, n, 13);
  std::vector<double> z(b.size());
  pe::Options o;
  o.degree = 2;         // Y^2 is one GEMM ...
  o.max_gemms = 1;      // ... and materialising Z = X B another
  o.mode = pe::ApplyMode::materialize;
  expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, n), pe_test::out(z, n, n), o); },
               {"budget", "max_gemms = 1"});
}

// Automatic apply mode: direct for a single skinny apply, materialise when the same A is reused or B is wide.
TEST(ApplyMode, AutomaticChoiceFollowsShapesAndReuse) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 96;
  const auto a = pe_test::spd(n, 1e3, Spectrum::spread, 14);
  auto run = [&](std::int64_t k, int reuse) {
    const auto b = pe_test::random_matrix(n, k, 15);
    std::vector<double> z(b.size());
    pe::Options o;
    o.reuse_count = reuse;
    return pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(z, n, k), o).mode;
  };
  EXPECT_EQ(run(1, 1), "direct");
  EXPECT_EQ(run(8, 1), "direct");
  EXPECT_EQ(run(n, 1), "materialize");
  EXPECT_EQ(run(1, 50), "materialize");
}

// The three ways to Z = A^{-1/p} B agree with each other (each is within its tracked bound of the exact
// Z, so any two within the sum of their bounds plus rounding).
TEST(ApplyMode, DirectMaterializeAndRootTimesBAgree) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 80, k = 5;
  const auto a = pe_test::spd(n, 1e5, Spectrum::clustered_low, 16);
  const auto b = pe_test::random_matrix(n, k, 17);
  for (int p : {1, 2, 3, 4, 8}) {
    pe::Options o;
    o.p = p;
    o.target = 1e-6;
    std::vector<double> x(a.size()), zd(b.size()), zm(b.size());
    const pe::Report rx = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x, n, n), o);
    const auto zx = pe::reference::multiply(x, b, n, n, k);
    o.mode = pe::ApplyMode::direct;
    const pe::Report rd = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(zd, n, k), o);
    o.mode = pe::ApplyMode::materialize;
    const pe::Report rm = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(zm, n, k), o);
    const double allowance = 2 * pe_test::rounding_allowance(pe::DType::f64, n, std::max(rd.steps, rm.steps), 1e5, p);
    EXPECT_LE(pe::reference::relative_error(zd, zx), pe_test::predicted_relative_error(rd.final_eps, p) +
                                                         pe_test::predicted_relative_error(rx.final_eps, p) + allowance)
        << "direct vs root, p " << p;
    EXPECT_LE(pe::reference::relative_error(zm, zx), pe_test::predicted_relative_error(rm.final_eps, p) +
                                                         pe_test::predicted_relative_error(rx.final_eps, p) + allowance)
        << "materialize vs root, p " << p;
  }
}

}  // namespace

// Positive definite matrices whose diagonal spans more than the storage's range: cond(A) is at least the
// ratio of the largest to the smallest diagonal entry, so normalising A to ||A_n|| <= 1 would take its
// small eigenvalues below the normal range. That is a pe::Error naming the diagonal's span and what to do
// instead, never a crash: the Gershgorin test that decided whether Cholesky runs once read the bound of
// A, and the l0 loop that of A_n, which underflowed to 0 and sent it to a factor that was never computed.
TEST(RangeEdges, DiagonalWiderThanTheStorageRangeIsAnErrorNotACrash) {
  PE_REQUIRE_TABLES();
  struct Case {
    const char* what;
    std::int64_t n;
    std::vector<double> a;
    pe::DType dtype;
    std::vector<const char*> fragments;
  };
  const std::vector<Case> cases = {
      {"diag(1e308, 1e-20)", 2, {1e308, 0, 0, 1e-20}, pe::DType::f64, {"a (batch member 0)", "1e-20", "1e+308", "f64"}},
      {"entries near 1e300 and 1e-300", 3, {1e300, 0, 0, 0, 1e-300, 1e-301, 0, 1e-301, 1e-300}, pe::DType::f64,
       {"1e-300", "1e+300", "underflow"}},
      // Each entry fits f32, their ratio does not.
      {"diag(1e30, 1e-10) in f32", 2, {1e30, 0, 0, 1e-10}, pe::DType::f32, {"1e-10", "1e+30", "f32", "store A in f64"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<double> x(c.a.size()), b(static_cast<std::size_t>(c.n), 1.0), z(b.size());
    pe::Options o;
    o.storage_from_input = false;
    o.storage = c.dtype;
    for (int p : {1, 2}) {
      o.p = p;
      std::vector<const char*> fragments = c.fragments;
      fragments.push_back(p == 1 ? "precond jacobi" : "options.ridge");
      auto check = [&](const std::function<void()>& call) {
        try {
          call();
          ADD_FAILURE() << "no pe::Error thrown";
        } catch (const pe::Error& e) {
          for (const char* f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
        }
      };
      check([&] { pe::inverse_root(pe_test::view(c.a, c.n, c.n), pe_test::out(x, c.n, c.n), o); });
      for (pe::ApplyMode mode : {pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
        o.mode = mode;
        check([&] {
          pe::apply_inverse_root(pe_test::view(c.a, c.n, c.n), pe_test::view(b, c.n, 1), pe_test::out(z, c.n, 1), o);
        });
      }
    }
  }
  // For p = 1 the diagonal scaling the message suggests is exact: diag(1e308, 1e-20)^{-1} = diag(1e-308, 1e20).
  const std::vector<double> a = {1e308, 0, 0, 1e-20};
  std::vector<double> x(4);
  pe::Options o;
  o.p = 1;
  o.precond = pe::Precond::jacobi;
  const pe::Report r = pe::inverse_root(pe_test::view(a, 2, 2), pe_test::out(x, 2, 2), o);
  // Jacobi makes D A D = I up to rounding (d_i = a_ii^{-1/2} rounded: d_i^2 a_ii = 1 within a few ulps);
  // the iteration then moves each eigenvalue by at most its tracked bound (p = 1: |x/x* - 1| <= eps).
  const double tolerance = r.final_eps + 1e-15;
  EXPECT_NEAR(x[0] / 1e-308, 1, tolerance);
  EXPECT_NEAR(x[3] / 1e20, 1, tolerance);
  EXPECT_EQ(x[1], 0);
  EXPECT_EQ(x[2], 0);
}

// Non-finite values in B were carried through the iteration into Z (the report said "certified"); every
// input is now checked as the caller gave it, in every apply mode.
TEST_F(BadInput, NonFiniteRightHandSideIsNamed) {
  PE_REQUIRE_TABLES();
  for (double bad_value : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::infinity()})
    for (pe::ApplyMode mode : {pe::ApplyMode::automatic, pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
      auto bad = b;
      bad[static_cast<std::size_t>(4 + 1 * n)] = bad_value;  // entry (4, 1)
      o.mode = mode;
      expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(bad, n, 2), pe_test::out(z, n, 2), o); },
                   {"b:", "(4, 1)", std::isnan(bad_value) ? "nan" : "-inf", "expected finite values"});
    }
}

// Finite f64 values that the f32 storage cannot hold were reported as if the caller had passed them
// ("entry (0, 0) is inf", "diagonal entry is 0, not positive definite"); the message now says the value
// overflows or underflows the storage and what to do.
TEST_F(BadInput, ValuesTheStorageCannotHoldAreNamedAsSuch) {
  PE_REQUIRE_TABLES();
  pe::Options f32 = o;
  f32.storage_from_input = false;
  f32.storage = pe::DType::f32;
  auto big = a;
  for (double& v : big) v *= 1e300;
  expect_error([&] { root(pe_test::view(big, n, n), f32); }, {"a:", "(0, 0)", "e+299", "overflows the f32 storage", "f64"});
  auto small = a;
  for (double& v : small) v *= 1e-300;
  expect_error([&] { root(pe_test::view(small, n, n), f32); },
               {"a:", "diagonal entry (0, 0)", "e-301", "underflows to 0 in the f32 storage", "f64"});
  auto big_b = b;
  big_b[3] = 1e39;  // just past f32's largest finite value
  expect_error([&] { pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(big_b, n, 2), pe_test::out(z, n, 2), f32); },
               {"b:", "(3, 0)", "1e+39", "overflows the f32 storage"});
  // The same values in f64 storage are fine (and give the scaled root).
  EXPECT_NO_THROW(root(pe_test::view(big, n, n), o));
  EXPECT_NO_THROW(root(pe_test::view(small, n, n), o));
}

// A result that is not representable is an error, not a result: A^{-1/2} B with A ~ 1e-300 and
// B ~ 1e300 is ~1e450 (Inf was written and the report said "certified"); a root that fits f64 but not
// the caller's f32 output view likewise.
TEST_F(BadInput, UnrepresentableResultsAreErrors) {
  PE_REQUIRE_TABLES();
  auto tiny = a;
  for (double& v : tiny) v *= 1e-300;
  auto huge = b;
  for (double& v : huge) v *= 1e300;
  for (pe::ApplyMode mode : {pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
    o.mode = mode;
    expect_error([&] { pe::apply_inverse_root(pe_test::view(tiny, n, n), pe_test::view(huge, n, 2), pe_test::out(z, n, 2), o); },
                 {"z (result)", "A^{-1/p} B is not representable in f64", "rescale b"});
  }
  std::vector<float> x32(a.size());
  pe::Options p1 = o;
  p1.p = 1;  // X = A^{-1} ~ 1e300: fits f64 storage, not the f32 output view
  expect_error([&] { pe::inverse_root(pe_test::view(tiny, n, n), pe_test::out(x32, n, n), p1); },
               {"x (result)", "A^{-1/p} is not representable in f32", "rescale a"});
  // Representable results of the same extreme inputs pass: A^{-1/2} B ~ 1e150 * 1e100.
  auto moderate = b;
  for (double& v : moderate) v *= 1e100;
  EXPECT_NO_THROW(pe::apply_inverse_root(pe_test::view(tiny, n, n), pe_test::view(moderate, n, 2), pe_test::out(z, n, 2), o));
  for (double v : z) EXPECT_TRUE(std::isfinite(v));
}
