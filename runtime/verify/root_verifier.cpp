#include "verify/root_verifier.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "pe/detail/format.hpp"
#include "verify/residual_chain.hpp"
#include "verify/rounding.hpp"
#include "verify/spectrum_enclosure.hpp"

namespace pe::detail {

using verify::cholesky_backward_error;
using verify::gamma;
using verify::kSmallestSubnormal;
using verify::kUnitRoundoff;
using verify::up;

namespace {

// Scalar slots of this file (the residual chain uses 64 and above, the enclosure slot 0 between fetches).
enum Slot : int {
  kNonfiniteA,
  kNonfiniteX,
  kAsymmetryA,
  kAsymmetryX,
  kNormX,
  kNormA,
  kTraceX,
  kScaleErrorX,
  kScaleErrorA,
  kFactorOk,
  kFrobeniusX,
  kFrobeniusA,
  kNormScaledX,
  kNormScaledA,
  kNormDiagonalStep,
  kNormLowStep,
  kNormD,
  kNonfiniteD,
};

// Lanczos steps of the enclosure: enough to place both extreme Ritz values within a few per cent of the
// extreme eigenvalues of a residual that spreads over [-e, e] (the first Cholesky shift allows 5 %).
constexpr int kLanczosSteps = 32;

double down(double x) { return std::nextafter(x, -std::numeric_limits<double>::infinity()); }

// Upper bound of ||M||_2 for symmetric M from computed ||M||_F (sum of n^2 squares, then a square root:
// relative error gamma_{n^2 + 1}, plus n^2 underflowed squares of at most eta/2) and ||M||_inf (gamma_n).
double two_norm_upper(double frobenius, double inf_norm, std::int64_t n) {
  const double nn = static_cast<double>(n) * static_cast<double>(n);
  const double f = up(std::sqrt(up(frobenius * frobenius * (1 + 2 * kUnitRoundoff) + nn * kSmallestSubnormal)) *
                      (1 + 2 * gamma(n * n + 2)));
  const double i = up(inf_norm * (1 + 2 * gamma(n + 1)));
  return std::min(f, i);
}

// An upper bound of x^y for x >= 0 and a double y (pow is accurate to a few ulps; 16 are allowed).
double pow_up(double x, double y) { return up(std::pow(x, y) * (1 + 32 * kUnitRoundoff)); }

}  // namespace

VerifyArithmetic verify_arithmetic_for(DType storage) {
  return storage == DType::f64 ? VerifyArithmetic::extended : VerifyArithmetic::binary64;
}

RootVerifier::RootVerifier(Backend& wide, std::int64_t n, std::int64_t batch, int p, VerifyArithmetic arithmetic)
    : be_(wide), n_(n), batch_(batch), p_(p), arithmetic_(arithmetic) {
  if (wide.storage() != DType::f64)
    throw Error(std::string("verify: argument 'wide' stores ") + to_string(wide.storage()) +
                ", expected an f64 backend (verification computes one level above the storage)");
  if (n < 1) throw Error("verify: argument 'n' is " + std::to_string(n) + ", expected >= 1");
  if (batch < 1) throw Error("verify: argument 'batch' is " + std::to_string(batch) + ", expected >= 1");
  if (p < 1 || p > 64) throw Error("verify: argument 'p' is " + std::to_string(p) + ", expected 1 <= p <= 64");
  x_scaled_ = be_.allocate(n, n, batch);
  a_scaled_ = be_.allocate(n, n, batch);
  factor_ = be_.allocate(n, n, batch);
  d_ = be_.allocate(n, n, batch);
  const int m = p / 2;
  const int factors = p % 2 == 0 ? 2 * m : 2 * m + 2;
  chain_ = std::make_unique<verify::ResidualChain>(
      wide, n, batch,
      arithmetic == VerifyArithmetic::extended ? verify::ChainArithmetic::extended : verify::ChainArithmetic::binary64,
      factors);
  enclosure_ = std::make_unique<verify::SpectrumEnclosure>(wide, n, batch, kLanczosSteps);
}

RootVerifier::~RootVerifier() = default;

std::vector<RootCertificate> RootVerifier::certify(const Mat& a, const Mat& x) {
  for (const auto& [name, m] : {std::pair<const char*, const Mat*>{"a", &a}, {"x", &x}})
    if (m->rows != n_ || m->cols != n_ || m->batch != batch_)
      throw Error(std::string("verify: argument '") + name + "' is " + std::to_string(m->rows) + " x " +
                  std::to_string(m->cols) + " x " + std::to_string(m->batch) + ", expected " + std::to_string(n_) +
                  " x " + std::to_string(n_) + " x " + std::to_string(batch_) + " (the verifier's plan)");
  factorizations_ = 0;
  const auto batch = static_cast<std::size_t>(batch_);
  const double n = static_cast<double>(n_);
  std::vector<RootCertificate> certs(batch);
  const auto fail = [&](std::size_t k, std::string why) {
    if (certs[k].failure.empty()) certs[k].failure = std::move(why);
  };

  // 1. What the inputs are: finite, exactly symmetric, their norms.
  be_.count_nonfinite(a, kNonfiniteA);
  be_.count_nonfinite(x, kNonfiniteX);
  be_.max_asymmetry(a, kAsymmetryA, -1);
  be_.max_asymmetry(x, kAsymmetryX, -1);
  be_.max_abs_row_sum(x, kNormX);
  be_.max_abs_row_sum(a, kNormA);
  be_.trace(x, kTraceX);
  const std::vector<std::vector<double>> s_in = be_.fetch_scalars();  // the inputs' facts
  // 2. Exact power-of-two scaling: X' = 2^-e X with ||X'||_inf in [1/2, 1), A' = 2^{pe} A, so
  //    X'^p A' = X^p A and every product below stays far from overflow and underflow.
  std::vector<double> x_scale(batch, 1.0), a_scale(batch, 1.0), x_unscale(batch, 1.0), a_unscale(batch, 1.0);
  for (std::size_t k = 0; k < batch; ++k) {
    if (s_in[kNonfiniteA][k] != 0) fail(k, "A has " + format_number(s_in[kNonfiniteA][k]) + " non-finite entries");
    if (s_in[kNonfiniteX][k] != 0) fail(k, "X has " + format_number(s_in[kNonfiniteX][k]) + " non-finite entries");
    if (s_in[kAsymmetryA][k] != 0)
      fail(k, "A is not exactly symmetric (max |a_ij - a_ji| = " + format_number(s_in[kAsymmetryA][k]) + ")");
    if (s_in[kAsymmetryX][k] != 0)
      fail(k, "X is not exactly symmetric (max |x_ij - x_ji| = " + format_number(s_in[kAsymmetryX][k]) + ")");
    if (!(s_in[kNormX][k] > 0)) fail(k, "X is zero");
    if (!(s_in[kNormA][k] > 0)) fail(k, "A is zero");
    if (!(s_in[kTraceX][k] > 0)) fail(k, "X is not positive definite (its trace is " + format_number(s_in[kTraceX][k]) + ")");
    if (!certs[k].failure.empty()) continue;
    int ex = 0, ea = 0;
    std::frexp(s_in[kNormX][k], &ex);
    std::frexp(s_in[kNormA][k], &ea);
    const long long a_exponent = static_cast<long long>(ea) + static_cast<long long>(p_) * ex;
    if (a_exponent > 1000 || a_exponent < -1000) {
      fail(k, "X^p A is beyond the double range (||X||_inf = " + format_number(s_in[kNormX][k]) +
                  ", ||A||_inf = " + format_number(s_in[kNormA][k]) + ")");
      continue;
    }
    x_scale[k] = std::ldexp(1.0, -ex);
    x_unscale[k] = std::ldexp(1.0, ex);
    a_scale[k] = std::ldexp(1.0, p_ * ex);
    a_unscale[k] = std::ldexp(1.0, -p_ * ex);
  }
  be_.copy(x, x_scaled_);
  be_.scale(x_scale, x_scaled_);
  be_.copy(a, a_scaled_);
  be_.scale(a_scale, a_scaled_);
  // The scaling is exact unless an entry left the normal range: then scaling back differs somewhere.
  const double minus_one = -1, zero = 0;
  be_.axpby_identity(x_unscale, &x_scaled_, {&minus_one, 1}, &x, {&zero, 1}, factor_);
  be_.max_abs_row_sum(factor_, kScaleErrorX);
  be_.axpby_identity(a_unscale, &a_scaled_, {&minus_one, 1}, &a, {&zero, 1}, d_);
  be_.max_abs_row_sum(d_, kScaleErrorA);
  const bool odd = p_ % 2 == 1;
  if (odd) {  // only odd p needs ||X'||_2 and ||A'||_2 (section 3.3 of docs/certificate.md)
    be_.frobenius_norm(x_scaled_, kFrobeniusX);
    be_.frobenius_norm(a_scaled_, kFrobeniusA);
  }
  be_.max_abs_row_sum(x_scaled_, kNormScaledX);
  be_.max_abs_row_sum(a_scaled_, kNormScaledA);
  auto s = be_.fetch_scalars();
  std::vector<double> trace_x(batch), norm_x(batch), norm_a(batch), inf_x(batch);
  for (std::size_t k = 0; k < batch; ++k) {
    if (s[kScaleErrorX][k] != 0 || s[kScaleErrorA][k] != 0)
      fail(k, "scaling X and A to a safe range is not exact (entries near the underflow threshold)");
    inf_x[k] = up(s[kNormScaledX][k] * (1 + 2 * gamma(n_ + 1)));
    // tr(X') <= computed trace + its rounding gamma_n sum |x_ii| <= gamma_n n ||X'||_inf, scaled exactly.
    trace_x[k] = up(up(s_in[kTraceX][k] * x_scale[k]) + up(gamma(n_) * n * inf_x[k]));
    if (odd) {
      norm_x[k] = two_norm_upper(s[kFrobeniusX][k], s[kNormScaledX][k], n_);
      norm_a[k] = two_norm_upper(s[kFrobeniusA][k], s[kNormScaledA][k], n_);
    }
  }

  // 3. X positive definite (even p: Cholesky of X' - c I, Rump's criterion), or the factor X' ~ U^T U
  //    that odd p sandwiches the residual with (X' = U^T (I + F) U, proven below).
  std::vector<double> chol_error(batch);
  be_.copy(x_scaled_, factor_);
  if (!odd) {
    std::vector<double> shift(batch);
    for (std::size_t k = 0; k < batch; ++k) {
      // If Cholesky of C = fl(X' - c I) completes, lambda_min(C) >= -rho(C) with rho(C) <= rho(X') (C's
      // diagonal is below X''s), and C differs from X' - c I by u |c_ii| <= u ||X'||_inf on the
      // diagonal: lambda_min(X') >= c - rho(X') - u ||X'||_inf > 0 for this c.
      chol_error[k] = cholesky_backward_error(n_, trace_x[k], inf_x[k]);
      shift[k] = -up(2 * chol_error[k] + 2 * kUnitRoundoff * inf_x[k]);
    }
    be_.add_diagonal(shift, factor_);
  }
  be_.cholesky(factor_, kFactorOk);
  ++factorizations_;
  s = be_.fetch_scalars();
  for (std::size_t k = 0; k < batch; ++k) {
    if (s[kFactorOk][k] == 1.0) {
      certs[k].x_positive_definite = !odd;  // odd p: proven below, once ||F|| < 1
      if (odd) chol_error[k] = cholesky_backward_error(n_, trace_x[k], inf_x[k]);
    } else {
      fail(k, odd ? "X is not positive definite (its Cholesky factorisation failed)"
                  : "X is not positive definite, or too ill-conditioned to prove it (Cholesky of X - c I failed, c = " +
                        format_number(2 * chol_error[k]) + " ||X||_inf-scaled)");
    }
  }

  // 4. The residual W = X^m A X^m (p = 2m) or U X^m A X^m U^T (p = 2m + 1), its rounding bound.
  const int m = p_ / 2;
  std::vector<verify::ChainFactor> factors;
  verify::ChainFactor start{&x_scaled_, Op::N};
  if (odd) start = {&factor_, Op::T};
  for (int i = 0; i < (odd ? m : m - 1); ++i) factors.push_back({&x_scaled_, Op::N});
  factors.push_back({&a_scaled_, Op::N});
  for (int i = 0; i < m; ++i) factors.push_back({&x_scaled_, Op::N});
  if (odd) factors.push_back({&factor_, Op::N});
  const verify::ResidualChain::Result chain = chain_->evaluate(start, factors);

  // 5. D = sym(W_hat) - I in double: (hi - I) exact off the diagonal, then + lo (extended), then the
  //    symmetric part; each rounding is at most u |entry|, bounded through the inf-norms.
  be_.copy(chain_->hi(), d_);
  const double minus = -1, one = 1;
  be_.add_diagonal({&minus, 1}, d_);
  be_.max_abs_row_sum(d_, kNormDiagonalStep);
  const bool extended = arithmetic_ == VerifyArithmetic::extended;
  if (extended) {
    be_.axpby_identity({&one, 1}, &d_, {&one, 1}, &chain_->lo(), {&zero, 1}, d_);
    be_.max_abs_row_sum(d_, kNormLowStep);
  }
  be_.symmetrize(d_);
  be_.max_abs_row_sum(d_, kNormD);
  be_.count_nonfinite(d_, kNonfiniteD);
  s = be_.fetch_scalars();
  std::vector<double> d_norm(batch), rounding(batch);
  std::vector<bool> active(batch);
  for (std::size_t k = 0; k < batch; ++k) {
    if (!chain.failure[k].empty()) fail(k, chain.failure[k]);
    if (s[kNonfiniteD][k] != 0) fail(k, "the residual X^p A - I has non-finite entries");
    d_norm[k] = up(s[kNormD][k] * (1 + 2 * gamma(n_ + 1)));
    double form = up(s[kNormDiagonalStep][k] * (1 + 2 * gamma(n_ + 1))) + d_norm[k];
    if (extended) form += up(s[kNormLowStep][k] * (1 + 2 * gamma(n_ + 1)));
    // u per rounding step, plus n eta for halvings that underflow in the symmetric part.
    rounding[k] = up(up(chain.bound[k] + up(kUnitRoundoff * up(form * (1 + 4 * kUnitRoundoff)))) +
                     n * kSmallestSubnormal);
    active[k] = certs[k].failure.empty();
  }

  // 6. Enclose the spectrum of D, then assemble the certificate.
  const verify::SpectrumEnclosure::Bounds spectrum = enclosure_->enclose(d_, d_norm, active);
  factorizations_ += spectrum.factorizations;
  for (std::size_t k = 0; k < batch; ++k) {
    RootCertificate& c = certs[k];
    if (!c.failure.empty()) continue;
    if (!spectrum.failure[k].empty()) {
      fail(k, "enclosing the residual's spectrum: " + spectrum.failure[k]);
      continue;
    }
    // lambda(W) - 1 in [lo, hi] (Weyl: W = I + D + (W - I - D), ||W - I - D||_2 <= rounding).
    const double hi = up(spectrum.upper[k] + rounding[k]);
    const double lo = -up(rounding[k] - spectrum.lower[k]);
    c.residual_term = std::max(std::abs(spectrum.upper[k]), std::abs(spectrum.lower[k]));
    c.rounding_term = rounding[k];
    const double w_min = down(1 + lo);
    if (!(w_min > 0)) {
      fail(k, "the residual's smallest eigenvalue is not proven positive (lambda(X^p A) >= " + format_number(1 + lo) +
                  ")");
      continue;
    }
    if (!odd) {
      c.eps_bound = up(std::max(std::abs(hi), std::abs(lo)));
      c.proven = true;
      continue;
    }
    // Odd p: X' = U^T (I + F) U with ||F|| <= ||Delta|| ||(U^T U)^{-1}|| and ||(U^T U)^{-1}|| <= ||M|| / w_min
    // (W = U M U^T >= w_min I), M = X'^m A' X'^m; lambda(X^p A) = lambda((I + F)^{1/2} W (I + F)^{1/2}) lies
    // in [(1 + lo)(1 - f), (1 + hi)(1 + f)] (Ostrowski). First with ||M|| <= ||X'||^2m ||A'||, then
    // (if that proves eps < 1) with ||M|| <= (1 + eps)^{2m/p} ||A'||^{1/p} (Loewner-Heinz).
    const auto eps_with = [&](double f) {
      const double top = up(hi + up(f * up(1 + hi)));
      const double bottom = -up(up(f * up(1 + lo)) - lo);
      return up(std::max(std::abs(top), std::abs(bottom)));
    };
    const double norm_m = up(pow_up(norm_x[k], 2.0 * m) * norm_a[k]);
    double f = up(up(chol_error[k] * norm_m) / w_min);
    if (!(f < 1)) {
      fail(k, "the Cholesky factor of X is too inexact to prove X positive definite (||F|| <= " + format_number(f) + ")");
      continue;
    }
    double eps = eps_with(f);
    if (m > 0 && eps < 1) {
      const double norm_m_refined = up(pow_up(up(1 + eps), 2.0 * m / p_) * pow_up(norm_a[k], 1.0 / p_));
      f = std::min(f, up(up(chol_error[k] * norm_m_refined) / w_min));
      eps = std::min(eps, eps_with(f));
    }
    c.factor_term = f;
    c.x_positive_definite = true;
    c.eps_bound = eps;
    c.proven = true;
  }
  return certs;
}

double root_floor_estimate(DType storage, int p, double kappa) {
  if (p < 1) throw Error("root_floor_estimate: argument 'p' is " + std::to_string(p) + ", expected >= 1");
  if (!(kappa >= 1)) throw Error("root_floor_estimate: argument 'kappa' is " + format_number(kappa) + ", expected >= 1");
  double u = 0;
  switch (storage) {
    case DType::f64: u = 0x1p-53; break;
    case DType::f32: u = 0x1p-24; break;
    case DType::f16: u = 0x1p-11; break;
    case DType::bf16: u = 0x1p-8; break;
  }
  return u * std::max(p * std::pow(kappa, 1.0 / p), std::sqrt(kappa)) / std::sqrt(3.0);
}

}  // namespace pe::detail
