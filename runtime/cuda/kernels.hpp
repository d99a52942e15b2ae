// The CUDA backend's own kernels (everything that is not a GEMM or a factorisation), as host
// launchers. Every launcher enqueues on `stream` and returns without waiting. Matrices are
// column-major device views in `dtype`; element arithmetic is done in double and rounded once.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>

#include "backend.hpp"

namespace pe::detail::gpu {

// A matrix view with its dtype and layout: the source or destination of a conversion.
struct TypedView {
  void* data = nullptr;
  DType dtype = DType::f64;
  Layout layout = Layout::col_major;
  std::int64_t rows = 0, cols = 0, ld = 0, batch = 1, stride = 0;
};

// dst <- src element by element (same rows, cols, batch), converting dtype and layout.
void launch_convert(const TypedView& src, const TypedView& dst, cudaStream_t stream);

// c <- alpha[k] a + beta[k] b + gamma[k] I; a or b may be null, c may alias either.
void launch_axpby_identity(DType dtype, std::span<const double> alpha, const Mat* a, std::span<const double> beta,
                           const Mat* b, std::span<const double> gamma, Mat& c, cudaStream_t stream);
// m <- diag(left) m diag(right); left/right (vectors, batch 1 or m.batch) may be null.
void launch_diag_scale(DType dtype, const Mat* left, Mat& m, const Mat* right, cudaStream_t stream);
// m <- (m + m^T) / 2 in place, through shared-memory tiles (each block owns a tile and its mirror).
void launch_symmetrize(DType dtype, Mat& m, cudaStream_t stream);
void launch_extract_diagonal(DType dtype, const Mat& m, Mat& out, cudaStream_t stream);

// Reductions of one matrix, fused into one pass over its elements plus one small pass per member.
// Every non-null output receives one double per batch member:
//   trace, max_abs_row_sum (infinity norm), max_abs_row_sum_minus_identity (||M - I||_inf),
//   gershgorin_lower/upper (min_i / max_i of m_ii -/+ sum_{j != i} |m_ij|), frobenius, nonfinite (count).
// Any NaN among the entries makes every norm and bound NaN (a max or min would otherwise drop it).
struct ReductionOutputs {
  double* trace = nullptr;
  double* max_abs_row_sum = nullptr;
  double* max_abs_row_sum_minus_identity = nullptr;
  double* gershgorin_lower = nullptr;
  double* gershgorin_upper = nullptr;
  double* frobenius = nullptr;
  double* nonfinite = nullptr;
};
// Doubles of scratch launch_reductions needs for m (row sums and per-member accumulators).
std::int64_t reduction_scratch_doubles(const Mat& m);
void launch_reductions(DType dtype, const Mat& m, const ReductionOutputs& out, double* scratch, cudaStream_t stream);

// m <- m ./ c elementwise (c: batch 1 or m.batch), in double, rounded once to dtype.
void launch_divide_elementwise(DType dtype, const Mat& c, Mat& m, cudaStream_t stream);

// v[i] <- v[i]^power for a device vector of doubles (the eigenvalue scaling of the exact root).
void launch_power(double* v, std::int64_t count, double power, cudaStream_t stream);

// ---- verification kernels (f64 matrices only; see Backend in backend.hpp for the contracts) ------
// y <- |op(m)| x + beta y (x, y: n x 1 per member; m shared when m.batch == 1).
void launch_abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y, cudaStream_t stream);
// Error-free slices of m by rows (or columns); at most kMaxSlices slices. `line_exponent` is scratch
// of lines * batch ints; `exponent_out` gets one double per member (min exponent, NaN if non-finite).
inline constexpr int kMaxSlices = 4;
void launch_split_slices(const Mat& m, bool by_rows, int bits, const Mat* slices, int slice_count, Mat& remainder,
                         int* line_exponent, double* exponent_out, cudaStream_t stream);
// (hi, e) <- TwoSum(hi, term), lo <- lo + e, elementwise in round-to-nearest intrinsics.
void launch_two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term, cudaStream_t stream);
// Any storage dtype: out[k] <- max_ij |m_ij - m_ji| of member k in double, magnitude_out[k] (when not null) <-
// max_ij |m_ij|, both NaN if an entry is not finite; `line_scratch`: 2 * rows * batch doubles.
void launch_max_asymmetry(DType dtype, const Mat& m, double* line_scratch, double* out, double* magnitude_out,
                          cudaStream_t stream);
// Strictly lower part of every member <- 0; out[k] <- (info[k] == 0 ? 1 : 0).
void launch_finish_cholesky(Mat& m, const int* info, double* out, cudaStream_t stream);

}  // namespace pe::detail::gpu
