#include "newton.hpp"

#include <cmath>
#include <limits>
#include <utility>

#include "pe/detail/format.hpp"
#include "pe/types.hpp"

namespace pe::detail {

namespace {
constexpr int kInfNormSlot = 0;
}

NewtonCorrection::NewtonCorrection(Backend& wide, std::int64_t n, std::int64_t batch, int p)
    : wide_(wide), n_(n), batch_(batch), p_(p) {
  if (wide.storage() != DType::f64)
    throw Error(std::string("NewtonCorrection: the wide backend stores ") + to_string(wide.storage()) +
                ", expected f64 (the residual and the solve run in double)");
  if (p < 1) throw Error("NewtonCorrection: p = " + std::to_string(p) + ", expected >= 1");
  if (n < 1 || batch < 1)
    throw Error("NewtonCorrection: shape " + std::to_string(n) + " x " + std::to_string(n) + " x " +
                std::to_string(batch) + ", expected n >= 1 and batch >= 1");
  const int m = p / 2;
  exponent_lo_ = p % 2 == 0 ? -m : -(m + 1);
  exponent_count_ = p % 2 == 0 ? p : p + 1;
  a_scaled_ = wide.allocate(n, n, batch);
  q_ = wide.allocate(n, n, batch);
  lambda_ = wide.allocate(n, 1, batch);
  divisor_ = wide.allocate(n, n, batch);
  u_ = wide.allocate(n, exponent_count_, batch);
  v_ = wide.allocate(n, exponent_count_, batch);
  if (m >= 2) {
    power_ = wide.allocate(n, n, batch);
    power_next_ = wide.allocate(n, n, batch);
  }
  w1_ = wide.allocate(n, n, batch);
  w2_ = wide.allocate(n, n, batch);
  r_ = wide.allocate(n, n, batch);
  x_wide_ = wide.allocate(n, n, batch);
}

int NewtonCorrection::gemms_per_correction() const {
  const int m = p_ / 2;
  const int residual = p_ == 1 ? 1 : (m - 1) + 2 + (p_ % 2);
  return residual + 4;
}

bool NewtonCorrection::prepare(const Mat& a) {
  prepared_ = false;
  failure_.clear();
  if (a.rows != n_ || a.cols != n_ || a.batch != batch_)
    throw Error("NewtonCorrection::prepare: A is " + std::to_string(a.rows) + " x " + std::to_string(a.cols) +
                " x " + std::to_string(a.batch) + ", expected the planned " + std::to_string(n_) + " x " +
                std::to_string(n_) + " x " + std::to_string(batch_));
  // Scale A by an exact power of two 2^(-p e) with ||A||_inf 2^(-p e) near 1, and X by 2^e: X^p A is
  // unchanged and every intermediate stays in range whatever the magnitude of A.
  wide_.max_abs_row_sum(a, kInfNormSlot);
  const std::vector<double> norms = wide_.fetch_scalars()[kInfNormSlot];
  std::vector<double> a_scale(static_cast<std::size_t>(batch_));
  x_scale_.assign(static_cast<std::size_t>(batch_), 1.0);
  x_unscale_.assign(static_cast<std::size_t>(batch_), 1.0);
  for (std::size_t k = 0; k < a_scale.size(); ++k) {
    if (!(norms[k] > 0) || !std::isfinite(norms[k])) {
      failure_ = "A (batch member " + std::to_string(k) + ") has ||A||_inf = " + format_number(norms[k]) +
                 ": not a positive definite matrix";
      return false;
    }
    const int e = static_cast<int>(std::lround(std::log2(norms[k]) / p_));
    a_scale[k] = std::ldexp(1.0, -p_ * e);
    x_scale_[k] = std::ldexp(1.0, e);
    x_unscale_[k] = std::ldexp(1.0, -e);
  }
  wide_.copy(a, a_scaled_);
  wide_.scale(a_scale, a_scaled_);
  ++cost_.eigendecompositions;
  if (!wide_.symmetric_eigen(a_scaled_, q_, lambda_)) {
    failure_ = "the eigendecomposition of A failed (dsyevd / syevd)";
    return false;
  }
  // c_ij = sum_k w_k r_i^k r_j^{-k-1} with r = lambda^{-1/p}: U_ik = lambda_i^{-k/p}, V_jk = w_k lambda_j^{(k+1)/p}.
  const std::int64_t K = exponent_count_;
  std::vector<double> lambda(static_cast<std::size_t>(n_ * batch_)), u(static_cast<std::size_t>(n_ * K * batch_)),
      v(u.size());
  wide_.download(lambda_, HostMat{lambda.data(), DType::f64, n_, 1, n_, batch_, n_, Layout::col_major});
  const double tiny = static_cast<double>(n_) * std::numeric_limits<double>::epsilon();
  for (std::int64_t member = 0; member < batch_; ++member) {
    const double* w = lambda.data() + member * n_;
    if (!(w[0] > tiny * w[n_ - 1]) || !std::isfinite(w[n_ - 1])) {
      failure_ = "A (batch member " + std::to_string(member) + ") is not numerically positive definite: eigenvalues " +
                 format_number(w[0]) + " .. " + format_number(w[n_ - 1]) + " (after scaling by a power of two)";
      return false;
    }
    for (std::int64_t idx = 0; idx < K; ++idx) {
      const int k = exponent_lo_ + static_cast<int>(idx);
      const bool end = idx == 0 || idx == K - 1;
      const double weight = p_ % 2 == 1 && end ? 0.5 : 1.0;
      for (std::int64_t i = 0; i < n_; ++i) {
        const std::size_t at = static_cast<std::size_t>(member * n_ * K + i + idx * n_);
        u[at] = std::pow(w[i], -static_cast<double>(k) / p_);
        v[at] = weight * std::pow(w[i], static_cast<double>(k + 1) / p_);
      }
    }
  }
  wide_.upload(HostMat{u.data(), DType::f64, n_, K, n_, batch_, n_ * K, Layout::col_major}, u_);
  wide_.upload(HostMat{v.data(), DType::f64, n_, K, n_, batch_, n_ * K, Layout::col_major}, v_);
  wide_.gemm(Op::N, Op::T, 1.0, u_, v_, 0.0, divisor_);
  prepared_ = true;
  return true;
}

void NewtonCorrection::residual(const Mat& x) {
  const std::vector<double> one{1.0}, minus_one{-1.0}, zero{0.0};
  const int m = p_ / 2;
  if (p_ == 1) {
    wide_.gemm(Op::N, Op::N, 1.0, a_scaled_, x, 0.0, w2_);  // A X, symmetrised below: (A X + X A) / 2
  } else {
    const Mat* power = &x;  // X^m by repeated products
    for (int i = 2; i <= m; ++i) {
      wide_.gemm(Op::N, Op::N, 1.0, *power, x, 0.0, power_next_);
      std::swap(power_, power_next_);
      power = &power_;
    }
    wide_.gemm(Op::N, Op::N, 1.0, *power, a_scaled_, 0.0, w1_);  // X^m A
    wide_.gemm(Op::N, Op::N, 1.0, w1_, *power, 0.0, w2_);        // X^m A X^m
    if (p_ % 2 == 1) {
      wide_.gemm(Op::N, Op::N, 1.0, w2_, x, 0.0, w1_);  // X^m A X^{m+1}, symmetrised below
      std::swap(w1_, w2_);
    }
  }
  wide_.symmetrize(w2_);
  wide_.axpby_identity(minus_one, &w2_, zero, nullptr, one, r_);  // R = I - G(X)
}

void NewtonCorrection::correct(Mat& x) {
  if (!prepared_)
    throw Error("NewtonCorrection::correct: no factored A (" + (failure_.empty() ? std::string("prepare() was not called")
                                                                                  : failure_) + ")");
  if (x.rows != n_ || x.cols != n_ || x.batch != batch_)
    throw Error("NewtonCorrection::correct: X is " + std::to_string(x.rows) + " x " + std::to_string(x.cols) + " x " +
                std::to_string(x.batch) + ", expected the planned " + std::to_string(n_) + " x " + std::to_string(n_) +
                " x " + std::to_string(batch_));
  const std::vector<double> one{1.0}, zero{0.0};
  // An iteration's X = S + K carries an antisymmetric part K from its rounding (the coupled steps
  // multiply symmetric matrices that do not commute in floating point), and the step returns sym(X + D).
  // Odd p: G(S + K) has a first-order term in K (p = 1: sym(A K) = [A, K] / 2), which the step would
  // wrongly compensate, so the step starts from S (p = 1, kappa 1e4, f32: eps 1e-2 after the step from
  // X, 3e-5 from S). Even p: the first-order terms of X^m A X^m in K are antisymmetric and drop out of the
  // symmetrised residual, and the residual of X itself is the better start (measured for the runtime's
  // f32 roots, p = 2, kappa 1e6: eps 0.87 -> 2.2e-3 from X, -> 0.36 from S; docs/newton-correction.md).
  if (p_ % 2 == 1) wide_.symmetrize(x);
  wide_.scale(x_scale_, x);
  residual(x);
  wide_.gemm(Op::T, Op::N, 1.0, q_, r_, 0.0, w1_);   // Q^T R
  wide_.gemm(Op::N, Op::N, 1.0, w1_, q_, 0.0, w2_);  // Q^T R Q
  wide_.divide_elementwise(divisor_, w2_);          // the step in A's eigenbasis
  wide_.gemm(Op::N, Op::N, 1.0, q_, w2_, 0.0, w1_);  // Q D~
  wide_.gemm(Op::N, Op::T, 1.0, w1_, q_, 0.0, w2_);  // D = Q D~ Q^T
  wide_.axpby_identity(one, &x, one, &w2_, zero, x);
  wide_.symmetrize(x);
  wide_.scale(x_unscale_, x);
  cost_.gemms += gemms_per_correction();
}

void NewtonCorrection::correct(Backend& storage, Mat& x_storage) {
  wide_.import_from(storage, x_storage, x_wide_);
  correct(x_wide_);
  storage.import_from(wide_, x_wide_, x_storage);
}

}  // namespace pe::detail
