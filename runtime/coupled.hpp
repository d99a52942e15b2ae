// The coupled step pieces, GEMM-only, over the backend: q(Y) from per-member coefficients, the residual
// update Y <- q(Y)^p Y (dedicated paths for p = 1..4, binary powering otherwise), the terminal direct
// apply. Every function returns the number of GEMM calls it issued.
#pragma once

#include <span>
#include <vector>

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

// Per-member coefficients c0..c4 of q (only 0..degree are read), one vector per power.
using Coefficients = std::vector<double>[5];

// q <- c0 I + c1 Y + ... + c_d Y^d per member, degree d in 1..4, by Paterson-Stockmeyer with block size 2
// (GEMMs as pe::detail::q_form_gemms counts them). Uses buffers.y2 and buffers.y_alt.
int form_q(Backend& backend, const Mat& y, int degree, const Coefficients& coeff, StepBuffers& buffers, Mat& q);

// Y <- q^p Y (q and Y commute): p = 1: q Y; even p = 2m: q^m Y q^m; odd p = 2m + 1: q (q^m Y q^m).
// GEMM count: pe::residual_update_gemms(p).
int update_residual(Backend& backend, int p, const Mat& q, Mat& y, StepBuffers& buffers);

// The terminal direct step without forming q(Y): Z <- q(Y) Z by Horner on the skinny Z (one n x n x k
// product per degree). w1, w2: n x k scratch.
int terminal_apply(Backend& backend, const Mat& y, int degree, const Coefficients& coeff, Mat& z, Mat& w1, Mat& w2);

}  // namespace pe::detail
