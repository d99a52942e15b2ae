// The coupled step pieces, GEMM-only, over the backend: q(Y) from per-member coefficients, the residual
// update Y <- q(Y)^p Y (dedicated paths for p = 1..4, binary powering otherwise), the terminal direct
// apply. Every function returns the number of GEMM calls it issued.
#pragma once

#include <span>

#include "backend.hpp"

namespace pe::detail {

// Square buffers the step pieces use besides Y, X and q (allocated once per call).
struct StepBuffers {
  Mat y2;       // Y^2 for degree 2, and the first sandwich product
  Mat y_alt;    // the new residual before the swap
  Mat tmp;      // odd p: the second sandwich product
  Mat pool[3];  // binary powering of q (p >= 4 only)
};

StepBuffers allocate_step_buffers(Backend& backend, std::int64_t n, std::int64_t batch, int p, int degree);

// q <- a I + b Y + c Y^2 per member (c ignored for degree 1). Uses buffers.y2.
int form_q(Backend& backend, const Mat& y, int degree, std::span<const double> a, std::span<const double> b,
           std::span<const double> c, StepBuffers& buffers, Mat& q);

// Y <- q^p Y (q and Y commute): p = 1: q Y; even p = 2m: q^m Y q^m; odd p = 2m + 1: q (q^m Y q^m).
// GEMM count: pe::residual_update_gemms(p).
int update_residual(Backend& backend, int p, const Mat& q, Mat& y, StepBuffers& buffers);

// The terminal direct step without forming q(Y): Z <- a Z + b (Y Z) + c (Y (Y Z)) per member.
// w1, w2: n x k scratch. GEMM count: degree.
int terminal_apply(Backend& backend, const Mat& y, int degree, std::span<const double> a,
                   std::span<const double> b, std::span<const double> c, Mat& z, Mat& w1, Mat& w2);

}  // namespace pe::detail
