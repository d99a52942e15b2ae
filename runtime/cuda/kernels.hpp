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

// Reductions. Each writes one double per batch member to out[0 .. batch).
void launch_trace(DType dtype, const Mat& m, double* out, cudaStream_t stream);

enum class RowSum { abs, abs_minus_identity, off_diagonal_abs };
// row_sums[k * rows + i] <- sum_j f(m_ij) for every member k (row_sums has rows * batch doubles).
void launch_row_sums(DType dtype, const Mat& m, RowSum kind, double* row_sums, cudaStream_t stream);
void launch_max_of_rows(std::int64_t rows, std::int64_t batch, const double* row_sums, double* out,
                        cudaStream_t stream);
// lower[k] = min_i (m_ii - r_i), upper[k] = max_i (m_ii + r_i) with r the off-diagonal row sums.
void launch_gershgorin_bounds(DType dtype, const Mat& m, const double* off_diagonal_sums, double* lower,
                              double* upper, cudaStream_t stream);

enum class ElementSum { squares_then_sqrt, nonfinite_count };
// out[k] <- sqrt(sum m_ij^2) or the number of non-finite entries; `accumulators` holds batch doubles.
void launch_element_sum(DType dtype, const Mat& m, ElementSum kind, double* accumulators, double* out,
                        cudaStream_t stream);

// v[i] <- v[i]^power for a device vector of doubles (the eigenvalue scaling of the exact root).
void launch_power(double* v, std::int64_t count, double power, cudaStream_t stream);

}  // namespace pe::detail::gpu
