// The coupled step pieces, GEMM-only, over the backend: q(Y) from per-member coefficients (degrees
// 1..4, Paterson-Stockmeyer), the residual update Y <- q(Y)^p Y (binary powering of q, sandwiched), the
// terminal direct apply (Horner on Z). Every function returns the number of GEMM calls it issued, which
// is what include/pe/detail/gemm_cost.hpp counts for the same step.
#pragma once

#include <array>
#include <span>
#include <vector>

#include "backend.hpp"
#include "pe/schedule_types.hpp"

namespace pe::detail {

// Square buffers the step pieces use besides Y, X and q (allocated once per call).
struct StepBuffers {
  Mat y2;       // Y^2 for degrees >= 2, and the first sandwich product
  Mat y_alt;    // the new residual before the swap
  Mat tmp;      // odd p: the second sandwich product
  Mat pool[3];  // binary powering of q (p >= 4 only)
  Mat high;     // degrees 3, 4: c_2 I + c_3 Y + c_4 Y^2 (Paterson-Stockmeyer's second block)
};

// Coefficients of q per batch member: c[j][k] multiplies Y^j for member k (each span of length batch,
// or 1 to broadcast), j = 0..degree.
using QCoefficients = std::array<std::vector<double>, kMaxCoefficients>;

// Buffers for steps of every degree up to max_degree.
StepBuffers allocate_step_buffers(Backend& backend, std::int64_t n, std::int64_t batch, int p, int max_degree);

// q <- c_0 I + c_1 Y + ... + c_d Y^d per member. Paterson-Stockmeyer with block size 2:
//   degree 1: c_0 I + c_1 Y (no product); 2: with Y^2 (one product);
//   3, 4: (c_0 I + c_1 Y) + Y^2 (c_2 I + c_3 Y + c_4 Y^2) (two products). GEMM count: q_form_gemms(degree),
// which counts the Y^2 product also when square_ready says buffers.y2 already holds it (formed earlier by
// the same product, on the same operands: Driver::form_first_square).
int form_q(Backend& backend, const Mat& y, int degree, const QCoefficients& c, StepBuffers& buffers, Mat& q,
           bool square_ready = false);

// Y <- q^p Y (q and Y commute): p = 1: q Y; even p = 2m: q^m Y q^m; odd p = 2m + 1: q (q^m Y q^m).
// GEMM count: residual_update_gemms(p).
int update_residual(Backend& backend, int p, const Mat& q, Mat& y, StepBuffers& buffers);

// The terminal direct step without forming q(Y): Z <- q(Y) Z by Horner,
//   W = c_d Y Z + c_{d-1} Z, W = Y W + c_j Z for j = d-2 .. 0 (one skinny product per degree).
// w1, w2: n x k scratch. GEMM count: terminal_direct_gemms(degree).
int terminal_apply(Backend& backend, const Mat& y, int degree, const QCoefficients& c, Mat& z, Mat& w1, Mat& w2);

}  // namespace pe::detail
