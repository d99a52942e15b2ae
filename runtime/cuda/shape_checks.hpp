// Argument checks of the CUDA backend, done on the host before any CUDA call so that a bad shape
// is a pe::Error naming the operation, the argument, its value and what was expected.
#pragma once

#include <cstdint>
#include <span>

#include "backend.hpp"

namespace pe::detail::gpu {

// Non-null data, rows, cols, batch >= 1, ld >= rows, stride >= ld * cols when batch > 1.
void check_mat(const char* op, const char* arg, const Mat& m);
// The same for a host view; ld is checked against the layout's inner dimension.
void check_host_mat(const char* op, const char* arg, const HostMat& m);
void check_same_shape(const char* op, const char* arg_a, const Mat& a, const char* arg_b, const Mat& b);
void check_same_shape(const char* op, const char* arg_a, const HostMat& a, const char* arg_b, const Mat& b);
void check_square(const char* op, const char* arg, const Mat& m);
// A per-member scalar span has length 1 (broadcast) or `batch`.
void check_member_scalars(const char* op, const char* arg, std::span<const double> s, std::int64_t batch);
// An operand whose batch is 1 is shared by every member of the result; otherwise batches agree.
void check_batch_compatible(const char* op, const char* arg, const Mat& operand, std::int64_t batch);

struct GemmDims {
  std::int64_t m, n, k;
};
// op(A) is m x k, op(B) is k x n, C is m x n; C must not overlap A or B (element size in bytes).
GemmDims check_gemm(Op op_a, Op op_b, const Mat& a, const Mat& b, const Mat& c, std::int64_t element_bytes);

// Whether the memory spans of two matrices (all members) intersect.
bool spans_overlap(const Mat& a, const Mat& b, std::int64_t element_bytes);

}  // namespace pe::detail::gpu
