// The constants of binary64 rounding-error analysis the verifier's bounds are built from
// (docs/certificate.md, "Rounding"). Every function returns a value at or above the exact quantity it
// names, although it is itself evaluated in round to nearest: each result is pushed one ulp up and the
// formulas keep their own rounding below that ulp.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace pe::detail::verify {

// u = 2^-53, the unit roundoff of binary64 in round to nearest.
inline constexpr double kUnitRoundoff = 0x1p-53;
// eta = 2^-1074, the smallest positive subnormal: the absolute error a product may make on underflow
// is at most eta / 2.
inline constexpr double kSmallestSubnormal = 0x1p-1074;
// A floor added to every vector of the bound evaluations: at least n * eta / 2 for every n below
// 2^70, so that it absorbs the underflow of one dot product or of one scaled sum (runtime/verify/residual_chain.cpp).
inline constexpr double kVectorFloor = 0x1p-1000;

// x rounded up by one ulp (+inf stays, NaN stays NaN).
inline double up(double x) { return std::nextafter(x, std::numeric_limits<double>::infinity()); }

// gamma_k = k u / (1 - k u) (Higham, Accuracy and Stability, Lemma 3.1), an upper bound; +inf once
// k u >= 1/2 (no bound of this form is useful there).
inline double gamma(std::int64_t k) {
  const double ku = static_cast<double>(k) * kUnitRoundoff;  // exact: k < 2^53 and u a power of two
  if (!(ku < 0.5)) return std::numeric_limits<double>::infinity();
  return up(up(ku) / (1.0 - ku) * (1.0 + 2 * kUnitRoundoff));
}

// If a floating-point Cholesky factorisation of the symmetric n x n matrix C ran to completion, then
// C + Delta = R^T R with ||Delta||_2 at most this (so lambda_min(C) >= -bound): with
// alpha = gamma_{n+2} / (1 - gamma_{n+2}), |Delta_ij| <= alpha sqrt(c_ii c_jj) (Higham Thm 10.3 plus
// Cauchy-Schwarz on the columns of R, one extra rounding allowed for a reciprocal multiplication in
// the triangular solves), so ||Delta||_2 <= alpha tr(C), plus Rump's underflow term
// 6 n (n + max c_ii) eta ("Verification of positive definiteness", BIT 46 (2006), Thm 2.3).
// trace_upper and max_diagonal_upper are upper bounds of tr(C) and max_i c_ii.
inline double cholesky_backward_error(std::int64_t n, double trace_upper, double max_diagonal_upper) {
  const double g = gamma(n + 2);
  const double alpha = up(g / (1.0 - g) * (1.0 + 2 * kUnitRoundoff));
  const double underflow = up(6.0 * static_cast<double>(n) * (static_cast<double>(n) + max_diagonal_upper) *
                              kSmallestSubnormal * (1.0 + 4 * kUnitRoundoff));
  return up((alpha * trace_upper + underflow) * (1.0 + 2 * kUnitRoundoff));
}

// (1 - x_1)^-1 ... (1 - x_m)^-1 <= 1 + 2 (x_1 + ... + x_m) while the sum is at most 1/2: the factor that
// turns a value computed through m steps of relative error at most x_i each (all terms nonnegative,
// each step rounding down at worst) into an upper bound of the exact value.
inline double relative_error_factor(double sum_of_relative_errors) {
  if (!(sum_of_relative_errors <= 0.5)) return std::numeric_limits<double>::infinity();
  return up(1.0 + up(2.0 * sum_of_relative_errors * (1.0 + 2 * kUnitRoundoff)));
}

}  // namespace pe::detail::verify
