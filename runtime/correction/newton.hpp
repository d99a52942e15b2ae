// The Newton correction of a finished inverse p-th root X ~ A^{-1/p} (docs/newton-correction.md): one
// Newton step on the symmetric root equation G(X) = I,
//   G(X) = X^m A X^m                          (p = 2m)
//   G(X) = (X^m A X^{m+1} + X^{m+1} A X^m) / 2  (p = 2m + 1; p = 1: (A X + X A) / 2),
// with the derivative taken at the exact root, where it decouples in A's eigenbasis: for A = Q Lambda Q^T
// and r = lambda^{-1/p}, the step D solves (Q^T D Q)_ij c_ij = (Q^T (I - G(X)) Q)_ij with
//   c_ij = sum_k w_k r_i^k r_j^{-k-1},  k = -m .. m-1 (even p, w = 1), k = -(m+1) .. m (odd p, w = 1/2 at
//   both ends, 1 between),
// a matrix of rank p (even) or p + 1 (odd) formed as one product U V^T. The residual, both basis changes
// and the division run in double on an f64 backend (the companion of the storage backend; import_from
// brings X across); the caller rounds X + D to its storage.
//
// Plan once, correct many: the constructor allocates every matrix; prepare(A) factors A (one
// symmetric_eigen) and forms C; correct(X) costs gemms_per_correction() products and allocates nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.hpp"

namespace pe::detail {

// What the correction spent, in the wide (f64) backend.
struct CorrectionCost {
  int eigendecompositions = 0;  // symmetric_eigen calls (one per prepare, every member)
  int gemms = 0;                // n x n x n products (the rank-p divisor's thin product is not counted)
};

class NewtonCorrection {
 public:
  // wide: an f64 backend; n x n matrices, `batch` members, the root's p (>= 1).
  NewtonCorrection(Backend& wide, std::int64_t n, std::int64_t batch, int p);

  // Factors A (n x n x batch in `wide`, symmetric). Returns false, with failure() saying why, when the
  // eigensolver fails or a member is not numerically positive definite (smallest eigenvalue at most
  // n u_f64 times the largest); correct() then refuses to run.
  bool prepare(const Mat& a);
  const std::string& failure() const { return failure_; }

  // X <- sym(X + D) in `wide` (X: n x n x batch, f64): one Newton step for the A of the last prepare().
  void correct(Mat& x);
  // The same for X held by `storage` (a backend of the same kind): imported exactly into the wide
  // backend, corrected there, rounded back to the storage once.
  void correct(Backend& storage, Mat& x_storage);

  // Products per correct() call: the residual (m - 1 for X^m by repeated products, 2, and 1 more for odd
  // p; p = 1: 1) and the two basis changes each way (4).
  int gemms_per_correction() const;
  const CorrectionCost& cost() const { return cost_; }

 private:
  void residual(const Mat& x);  // r_ <- I - G(X) for the scaled A

  Backend& wide_;
  std::int64_t n_, batch_;
  int p_;
  int exponent_lo_, exponent_count_;   // the k range of c_ij
  Mat a_scaled_, q_, lambda_, divisor_, u_, v_;
  Mat power_, power_next_, w1_, w2_, r_, x_wide_;
  std::vector<double> x_scale_, x_unscale_;  // exact powers of two: A / 2^(p e) pairs with X 2^e
  bool prepared_ = false;
  std::string failure_;
  CorrectionCost cost_;
};

}  // namespace pe::detail
