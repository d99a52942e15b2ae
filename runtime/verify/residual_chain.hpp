// A product of exact matrices, formed right to left with a proven bound of its own rounding:
//
//   W = F_k ... F_2 F_1 S,   Q_0 = S,   Q_j = fl(F_j Q_{j-1}),   W_hat = Q_k,
//
// where S and every F_j are op(M) of an exact f64 matrix M in the backend (op = N or T). The bound is on
// ||W - W_hat||_2 in exact real arithmetic (docs/certificate.md, "Forming the residual"):
//
//   W - W_hat = -sum_j F_k ... F_{j+1} E_j,  E_j = Q_j - F_j Q_{j-1} the local error of product j,
//   |W - W_hat| <= T := sum_j |F_k| ... |F_{j+1}| L_j   (L_j >= |E_j| elementwise),
//   ||W - W_hat||_2 <= ||T||_2 <= sqrt(||T||_1 ||T||_inf)   (T >= 0, so both norms come from T 1, T^T 1).
//
// T 1 and T^T 1 are evaluated with vector products only (Horner's scheme over the chain, O(n^2) per
// factor), alongside the products themselves, so nothing beyond the chain's own intermediates is kept.
//
// Two arithmetics for the products:
// - binary64: Q_j = fl(F_j Q_{j-1}) by the backend's gemm; L_j = gamma_n |F_j| |Q_{j-1}| + underflow.
// - extended: Ozaki's error-free splitting; F_j in 3 row slices, Q_{j-1} = H + L kept as an unevaluated
//   pair of doubles, H in 3 column slices and L in 1; the slice products are exact in double whatever
//   the gemm's summation order, and are summed error-free (TwoSum) into the pair Q_j = H' + L'.
//   L_j is the truncation of the slices plus the (second-order) rounding of the low part.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend.hpp"

namespace pe::detail::verify {

enum class ChainArithmetic { binary64, extended };

// op(matrix), an exact input of the chain.
struct ChainFactor {
  const Mat* matrix = nullptr;
  Op op = Op::N;
};

class ResidualChain {
 public:
  // Plans the workspace for chains of n x n factors (batch members), at most `max_factors` long.
  ResidualChain(Backend& wide, std::int64_t n, std::int64_t batch, ChainArithmetic arithmetic, int max_factors);

  struct Result {
    std::vector<double> bound;         // per member: proven bound of ||W - (hi + lo)||_2 (+inf if none)
    std::vector<std::string> failure;  // per member: why there is no bound (empty when there is one)
  };
  // W_hat <- F_k ... F_1 S (factors[0] = F_1 is applied first). Allocates nothing.
  Result evaluate(ChainFactor start, std::span<const ChainFactor> factors);

  // The computed W_hat = hi + lo (lo is identically zero for binary64), valid after evaluate.
  const Mat& hi() const { return *result_hi_; }
  const Mat& lo() const { return *result_lo_; }
  ChainArithmetic arithmetic() const { return arithmetic_; }

  // Bits per slice for inner dimension n: the largest b with n (2^b + 1)^2 <= 2^53, so that every dot
  // product of two slices is an integer of at most 53 bits in its unit (exact in any order).
  static int slice_bits(std::int64_t n);

 private:
  struct Operand {  // the right operand of a product: hi (+ lo) as op(matrix)
    const Mat* hi = nullptr;
    const Mat* lo = nullptr;  // null: exact single matrix
    Op op = Op::N;
  };
  // The rounding term of one product as an operator on vectors, applied to the forward probe
  // (z <- |F| (z + ...) + ...) and the backward probe (acc += L_j^T y_j).
  // `relative` accumulates the relative rounding of the probe evaluation (see abs_mv).
  void product_binary64(ChainFactor f, const Operand& q, Mat& out, const Mat& y_this, double& forward_relative,
                        double& backward_relative);
  void product_extended(ChainFactor f, const Operand& q, Mat& out_hi, Mat& out_lo, const Mat& y_next,
                        const Mat& y_this, int exponent_slot_base, double& forward_relative,
                        double& backward_relative);
  // y <- |op(M)| x + floor (x, y: n x 1 per member). Every probe is a sum of nonnegative terms, so a
  // computed probe times relative_error_factor(relative) is an upper bound of the exact one: each call
  // adds its gamma_{n+1}, and the floor (kVectorFloor) absorbs the absolute error of underflow.
  void abs_mv(Op op, const Mat& m, const Mat& x, Mat& y, double& relative);
  // out <- alpha a + beta b + floor (b may be null; out may alias a or b), adding 6u to `relative`.
  void combine(double alpha, const Mat& a, double beta, const Mat* b, Mat& out, double& relative);

  Backend& be_;
  std::int64_t n_, batch_;
  ChainArithmetic arithmetic_;
  int max_factors_;
  int bits_;

  // Products (ping-pong) and, for extended, the slices and remainders.
  Mat q_hi_[2], q_lo_[2];
  Mat left_slices_[3], left_remainder_;
  Mat right_slices_[3], right_remainder_, low_slice_[1], low_remainder_;
  Mat term_;
  const Mat* result_hi_ = nullptr;
  const Mat* result_lo_ = nullptr;

  // Probe vectors (n x 1 x batch): ones, the forward accumulator, backward accumulator, temporaries,
  // and y_j = |F_j|^T ... |F_k|^T 1 for every j.
  Mat ones_, floor_, forward_, forward_next_, backward_, backward_next_, tmp_[6];
  std::vector<Mat> y_;
};

}  // namespace pe::detail::verify
