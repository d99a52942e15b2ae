// The solver and certifier against closed forms and independent dense evaluation.
#include <gtest/gtest.h>

#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "pe/schedule_types.hpp"
#include "synth.hpp"

namespace {

using R = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<50>>;
namespace ps = pe::synth;

ps::Step solve(int p, const std::string& l, int degree = 2, ps::StepKind kind = ps::StepKind::minimax) {
  ps::StepRequest r;
  r.p = p;
  r.degree = degree;
  r.l = ps::Value::of(l);
  r.kind = kind;
  return ps::solve_step(r);
}

// phi(y) = y q(y)^p evaluated independently of the library (power form, not Horner), at 50 digits.
R phi(const std::vector<R>& c, int p, const R& y) {
  R q = 0, yj = 1;
  for (const R& cj : c) {
    q += cj * yj;
    yj *= y;
  }
  return y * pow(q, p);
}
std::vector<R> coefs(const ps::Step& s) {
  std::vector<R> c;
  for (const std::string& t : s.coefficients) c.push_back(R(t));
  return c;
}
template <class T, std::size_t N>
std::vector<R> coefs(const std::array<T, N>& stored, int degree) {
  std::vector<R> c;
  for (int i = 0; i <= degree; ++i) c.push_back(R(stored[static_cast<std::size_t>(i)]));
  return c;
}

// Chebyshev polynomial T_n(x) for x >= 1.
R chebyshev(int n, const R& x) { return cosh(n * acosh(x)); }

// The p = 1 optimum is the shifted Chebyshev polynomial: eps = 1 / T_{degree+1}((1+l)/(1-l)), for every
// degree (the exchange on degree + 2 points finds it).
TEST(Minimax, P1MatchesClosedFormTo25Digits) {
  for (const char* l : {"0.5", "0.1", "1e-3", "1e-6", "1e-12", "0.999", "0.9999999"}) {
    for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
      const ps::Step s = solve(1, l, degree);
      const R x = (1 + R(l)) / (1 - R(l));
      const R exact = 1 / chebyshev(degree + 1, x);
      const R got(s.cert.eps);
      // The certified bound is an upper bound, and Remez is levelled to ~1e-30 relative: 25 digits hold.
      EXPECT_GE(got, exact * (1 - R("1e-40"))) << "l = " << l << " degree " << degree;
      // Absolute floor 1e-45: eps this small (1e-38 at l = 1 - 1e-7, degree 4) is the difference of values
      // near 1 held to 50 digits, so its own rounding is ~1e-49 and the certificate's widening ~1e-48.
      EXPECT_LE(abs(got - exact), std::max(R(exact * R("1e-25")), R("1e-45"))) << "l = " << l << " degree " << degree << ": " << s.cert.eps
                                                      << " vs " << exact.str(30);
    }
  }
}

// The optimum's error curve touches +-eps at degree + 2 points with alternating sign.
TEST(Minimax, EquioscillatesAtReferencePoints) {
  for (int p : {2, 3, 4, 8}) {
    for (const char* l : {"1e-9", "1e-3", "0.3", "0.99"}) {
      for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
        const ps::Step s = solve(p, l, degree);
        ASSERT_EQ(s.reference.size(), static_cast<std::size_t>(degree + 2));
        const auto c = coefs(s);
        const R eps(s.cert.eps);
        R previous = 0;
        for (const std::string& y : s.reference) {
          const R dev = 1 - phi(c, p, R(y));
          // |dev| equals eps up to the Remez levelling (1e-30 relative) and the certificate's rounding.
          EXPECT_LE(abs(abs(dev) - eps), eps * R("1e-20")) << "p " << p << " l " << l << " y " << y;
          if (previous != 0) {
            EXPECT_LT(dev * previous, 0) << "signs must alternate (p " << p << " l " << l << ")";
          }
          previous = dev;
        }
      }
    }
  }
}

// The certificate bounds a dense independent sample from above, and is tight (the sample max is within a
// small relative gap, limited by the sample spacing near the extrema).
TEST(Minimax, CertifiedBoundCoversDenseSampleAndIsTight) {
  for (int p : {1, 2, 4, 6}) {
    for (const char* l : {"1e-8", "1e-2", "0.5", "0.9999"}) {
     for (int degree : {2, 3, 4}) {
      // Degrees 3 and 4 on fewer cases: the 50-digit dense sample dominates the suite's time.
      if (degree != 2 && ((p != 2 && p != 6) || (std::string(l) != "1e-8" && std::string(l) != "0.5"))) continue;
      const ps::Step s = solve(p, l, degree);
      const R lo(l);
      struct Set {
        std::vector<R> c;
        double eps;
        R eps_exact;
      };
      const Set sets[] = {{coefs(s), 0, R(s.cert.eps)},
                          {coefs(s.coeff_f64, degree), s.cert_f64.eps_d, R(s.cert_f64.eps_d)},
                          {coefs(s.coeff_f32, degree), s.cert_f32.eps_d, R(s.cert_f32.eps_d)}};
      for (const Set& set : sets) {
        if (std::isinf(set.eps)) {
          // No float rounding of this high-degree q certifies at this tiny l: the step says so.
          EXPECT_FALSE(s.storage_failure.empty());
          EXPECT_GE(degree, 3);
          continue;
        }
        R worst = 0;
        const int n = 4000;
        for (int i = 0; i <= n; ++i) {
          const R t = R(i) / n;
          // half the samples uniform in y, half geometric (the extrema of large-kappa steps sit near l)
          for (const R& y : {R(lo + (1 - lo) * t), R(exp(log(lo) * (1 - t)))})
            worst = std::max(worst, R(abs(1 - phi(set.c, p, y))));
        }
        for (const std::string& y : s.reference) worst = std::max(worst, R(abs(1 - phi(set.c, p, R(y)))));
        EXPECT_GE(set.eps_exact, worst) << "p " << p << " l " << l << " degree " << degree;
        // Gap: dense sampling misses the true max by O(spacing^2); 1e-4 relative is generous for 8000 points.
        EXPECT_LE(set.eps_exact, worst * (1 + R("1e-4")) + R("1e-15")) << "p " << p << " l " << l << " degree " << degree;
      }
     }
    }
  }
}

// A higher degree never certifies a worse optimum on the same interval (the polynomials of degree d are
// among those of degree d + 1), and degree 4 contracts much faster than degree 2.
TEST(Minimax, HigherDegreesContractFaster) {
  for (int p : {1, 2, 5, 8}) {
    for (const char* l : {"1e-10", "1e-4", "0.2", "0.99"}) {
      R previous = 2;
      for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
        const R eps(solve(p, l, degree).cert.eps);
        EXPECT_LE(eps, previous * (1 + R("1e-30"))) << "p " << p << " l " << l << " degree " << degree;
        previous = eps;
      }
    }
  }
}

// Certification with more than two interior extrema: q whose Q has three real roots inside [l, 1]
// (degree 3), enclosed exactly, and a q that is not positive on [l, 1] is refused.
TEST(Certify, HandlesEveryRootOfQAndRefusesANonPositiveQ) {
  // The p = 1 degree-3 optimum on [0.01, 1] has an error curve with 3 interior extrema.
  const ps::Step s = solve(1, "0.01", 3);
  ASSERT_EQ(s.reference.size(), 5u);
  std::vector<ps::Value> c;
  for (const std::string& t : s.coefficients) c.push_back(ps::Value::of(t));
  const ps::Recheck r = ps::recertify(1, ps::Value::of(std::string("0.01")), c, 50, ps::GuardSpec{});
  ASSERT_FALSE(r.cert.eps.empty());
  EXPECT_LE(abs(R(r.cert.eps) - R(s.cert.eps)), R(s.cert.eps) * R("1e-30"));
  // q(y) = (y - 0.5)^2 touches 0 inside [0.01, 1]: no certificate.
  const ps::Recheck bad = ps::recertify(2, ps::Value::of(std::string("0.01")),
                                        {ps::Value::of(0.25), ps::Value::of(-1.0), ps::Value::of(1.0)}, 50,
                                        ps::GuardSpec{});
  EXPECT_TRUE(bad.cert.eps.empty());
  EXPECT_FALSE(bad.q_positive);
}

// Remez must converge without tuning for every p up to 8 and l from 1e-12 to 1 - 1e-8.
TEST(Minimax, ConvergesAcrossTheWholeRange) {
  for (int p = 1; p <= 8; ++p) {
    for (int degree = 1; degree <= pe::kMaxDegree; ++degree) {
      for (int k = 0; k <= 40; ++k) {
        const double l = 1 / (1 + std::pow(10.0, -8 + 0.5 * k));  // kappa - 1 from 1e-8 to 1e12
        ps::StepRequest r;
        r.p = p;
        r.degree = degree;
        r.l = ps::Value::of(l);
        ps::Step s;
        ASSERT_NO_THROW(s = ps::solve_step(r)) << "p " << p << " degree " << degree << " l " << l;
        EXPECT_LE(s.remez_iterations, 12) << "p " << p << " l " << l;
        EXPECT_LT(s.cert.eps_d, 1);
        EXPECT_GT(s.cert.next_l_d, l) << "a step always shrinks the normalised interval";
      }
    }
  }
}

TEST(Minimax, DigitsOptionRunsAtHigherPrecision) {
  ps::StepRequest r;
  r.p = 1;
  r.l = ps::Value::of(std::string("0.01"));
  r.digits = 100;
  const ps::Step s = ps::solve_step(r);
  EXPECT_EQ(s.digits, 100);
  using R100 = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<100>>;
  const R100 x = (1 + R100("0.01")) / (1 - R100("0.01"));
  const R100 exact = 1 / cosh(3 * acosh(x));
  EXPECT_LE(abs(R100(s.cert.eps) - exact), exact * R100("1e-60"));
}

// Greedy schedules: bounds decrease, each step starts where the previous certified image ends
// (next_l = lo / hi), and never need more steps than the unscaled Newton step q = (p + 1 - y) / p.
TEST(Greedy, MonotoneChainedAndNeverWorseThanNewton) {
  for (int p : {1, 2, 3, 4, 6, 8}) {
    for (double kappa : {1e2, 1e4, 1e8}) {
      ps::ScheduleRequest r;
      r.p = p;
      r.degree = 2;
      r.l0 = ps::Value::of(1 / kappa);
      r.target = 1e-3;
      const ps::Schedule ours = ps::greedy_schedule(r);
      ASSERT_TRUE(ours.reached);
      for (std::size_t k = 0; k < ours.steps.size(); ++k) {
        const ps::Step& s = ours.steps[k];
        // next_l = lo / hi, each printed rounded outward at ~47 digits.
        const R ratio = R(s.cert.image_lo) / R(s.cert.image_hi);
        EXPECT_LE(abs(R(s.cert.next_l) - ratio), ratio * R("1e-35"));
        if (k + 1 < ours.steps.size()) {
          EXPECT_EQ(R(ours.steps[k + 1].l), R(s.cert.next_l));
          EXPECT_LT(R(ours.steps[k + 1].cert.eps), R(s.cert.eps));
          EXPECT_GT(R(ours.steps[k + 1].l), R(s.l));
        }
      }
      EXPECT_EQ(ours.gemms, pe::schedule_gemms(p, 2, static_cast<int>(ours.steps.size())));
      for (int degree : {1}) {
        ps::ScheduleRequest o = r;
        o.degree = degree;
        EXPECT_LE(ours.steps.size(), ps::greedy_schedule(o).steps.size()) << "degree 2 never needs more steps";
      }
      ps::ScheduleRequest n = r;
      n.kind = ps::StepKind::newton;
      n.degree = 1;
      const ps::Schedule newton = ps::greedy_schedule(n);
      ps::ScheduleRequest d1 = r;
      d1.degree = 1;
      EXPECT_LE(ours.steps.size(), newton.steps.size()) << "p " << p << " kappa " << kappa;
      EXPECT_LE(ps::greedy_schedule(d1).steps.size(), newton.steps.size()) << "p " << p << " kappa " << kappa;
    }
  }
}

// Newton's map is increasing on [0, 1] with phi(1) = 1: the certificate must be exactly [phi(l), 1].
TEST(Greedy, NewtonStepCertificateMatchesItsClosedForm) {
  for (int p : {1, 2, 5}) {
    const ps::Step s = solve(p, "0.01", 1, ps::StepKind::newton);
    const R l("0.01");
    const R expected = 1 - l * pow((p + 1 - l) / p, p);
    EXPECT_LE(abs(R(s.cert.eps) - expected), expected * R("1e-35"));
  }
}

// Guards: where the plain optimum overshoots past 1 (large kappa), the guarded one keeps every guard at
// a small cost in eps, and records the plain bound.
TEST(Guards, GuardedStepHoldsAllGuardsAndRecordsTheCost) {
  const ps::Step plain = solve(2, "1e-3", 2);
  EXPECT_FALSE(plain.guards_f64.g3) << "the plain optimum overshoots on [1, 1+eta] at this kappa";
  const ps::Step g = solve(2, "1e-3", 2, ps::StepKind::guarded);
  EXPECT_TRUE(g.guarded);
  EXPECT_TRUE(g.guards_f64.ok()) << g.guards_f64.failure;
  EXPECT_TRUE(g.guards_f32.ok()) << g.guards_f32.failure;
  EXPECT_LE(g.overshoot, 1 + 1.0 / 64);
  EXPECT_EQ(g.eps_plain, plain.cert_f64.eps_d);
  EXPECT_GE(g.cert_f64.eps_d, g.eps_plain);
  EXPECT_LE(g.cert_f64.eps_d, g.eps_plain * 1.05) << "guarding costs a few percent of eps here, not more";
  // Near convergence the plain optimum already satisfies the guards and is kept as is.
  const ps::Step near = solve(2, "0.9", 2, ps::StepKind::guarded);
  EXPECT_FALSE(near.guarded);
  EXPECT_TRUE(near.guards_f64.ok());
}

// Independent check of G1 and G3 on a dense sample for a guarded entry.
TEST(Guards, DenseSampleConfirmsGuards) {
  for (int degree : {2, 3, 4}) {
  const ps::Step g = solve(4, "1e-6", degree, ps::StepKind::guarded);
  const std::vector<R> c = coefs(g.coeff_f64, degree);
  const R l("1e-6"), eta = R(1) / 64;
  for (int i = 0; i <= 2000; ++i) {
    const R y = l * i / 2000;
    const R v = phi(c, 4, y);
    EXPECT_GE(v, y);
    EXPECT_LE(v, R(g.cert_f64.image_hi_d));
    const R z = 1 + eta * i / 2000;
    EXPECT_GE(phi(c, 4, z), R(g.cert_f64.image_lo_d));
    EXPECT_LE(phi(c, 4, z), R(g.cert_f64.image_hi_d) * R(g.overshoot));
  }
  }
}

TEST(BadInput, SolveRejectsWithMessagesNamingTheArgument) {
  auto message = [](int p, const std::string& l, int degree = 2) {
    try {
      solve(p, l, degree);
    } catch (const pe::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(0, "0.5").find("--p = 0"), std::string::npos);
  EXPECT_NE(message(2, "0").find("--l = 0"), std::string::npos);
  EXPECT_NE(message(2, "1.5").find("--l = 1.5"), std::string::npos);
  EXPECT_NE(message(2, "nan").find("--l = 'nan' is not a decimal number"), std::string::npos);
  EXPECT_NE(message(2, "abc").find("--l = 'abc'"), std::string::npos);
  EXPECT_NE(message(2, "0x1p-3").find("--l = '0x1p-3' is not a decimal number (expected e.g. 1e-4"), std::string::npos);
  EXPECT_NE(message(2, "").find("--l = '' is not a decimal number"), std::string::npos);
  EXPECT_NE(message(2, "0.5", 5).find("--degree = 5"), std::string::npos);
  ps::ScheduleRequest r;
  r.l0 = ps::Value::of(0.5);
  EXPECT_THROW(ps::greedy_schedule(r), pe::Error);  // neither steps nor target
  EXPECT_THROW(ps::working_digits(10), pe::Error);
}

}  // namespace
