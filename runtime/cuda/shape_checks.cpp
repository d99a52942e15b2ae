#include "shape_checks.hpp"

#include <string>

#include "pe/types.hpp"

namespace pe::detail::gpu {
namespace {

[[noreturn]] void fail(const char* op, const char* arg, const std::string& what) {
  throw pe::Error(std::string("cuda backend ") + op + ": argument '" + arg + "' " + what);
}

std::string dims(std::int64_t rows, std::int64_t cols, std::int64_t batch) {
  return std::to_string(rows) + " x " + std::to_string(cols) + " x " + std::to_string(batch);
}

void check_common(const char* op, const char* arg, const void* data, std::int64_t rows, std::int64_t cols,
                  std::int64_t ld, std::int64_t inner, std::int64_t outer, std::int64_t batch,
                  std::int64_t stride) {
  if (data == nullptr) fail(op, arg, "has a null data pointer");
  if (rows < 1 || cols < 1)
    fail(op, arg, "has shape " + std::to_string(rows) + " x " + std::to_string(cols) + ", expected both >= 1");
  if (batch < 1) fail(op, arg, "has batch " + std::to_string(batch) + ", expected >= 1");
  if (ld < inner)
    fail(op, arg, "has leading dimension " + std::to_string(ld) + ", expected >= " + std::to_string(inner));
  if (batch > 1 && stride < ld * outer)
    fail(op, arg, "has batch stride " + std::to_string(stride) + ", expected >= ld * " +
                      std::to_string(outer) + " = " + std::to_string(ld * outer));
}

}  // namespace

void check_mat(const char* op, const char* arg, const Mat& m) {
  check_common(op, arg, m.data, m.rows, m.cols, m.ld, m.rows, m.cols, m.batch, m.stride);
}

void check_host_mat(const char* op, const char* arg, const HostMat& m) {
  const bool col = m.layout == Layout::col_major;
  check_common(op, arg, m.data, m.rows, m.cols, m.ld, col ? m.rows : m.cols, col ? m.cols : m.rows, m.batch,
               m.stride);
}

void check_same_shape(const char* op, const char* arg_a, const Mat& a, const char* arg_b, const Mat& b) {
  if (a.rows != b.rows || a.cols != b.cols || a.batch != b.batch)
    fail(op, arg_a, "is " + dims(a.rows, a.cols, a.batch) + ", expected the shape of '" + arg_b + "' (" +
                        dims(b.rows, b.cols, b.batch) + ")");
}

void check_same_shape(const char* op, const char* arg_a, const HostMat& a, const char* arg_b, const Mat& b) {
  if (a.rows != b.rows || a.cols != b.cols || a.batch != b.batch)
    fail(op, arg_a, "is " + dims(a.rows, a.cols, a.batch) + ", expected the shape of '" + arg_b + "' (" +
                        dims(b.rows, b.cols, b.batch) + ")");
}

void check_square(const char* op, const char* arg, const Mat& m) {
  if (m.rows != m.cols)
    fail(op, arg, "is " + std::to_string(m.rows) + " x " + std::to_string(m.cols) + ", expected a square matrix");
}

void check_member_scalars(const char* op, const char* arg, std::span<const double> s, std::int64_t batch) {
  if (s.size() != 1 && static_cast<std::int64_t>(s.size()) != batch)
    fail(op, arg, "has " + std::to_string(s.size()) + " values, expected 1 or the batch size " +
                      std::to_string(batch));
}

void check_batch_compatible(const char* op, const char* arg, const Mat& operand, std::int64_t batch) {
  if (operand.batch != 1 && operand.batch != batch)
    fail(op, arg, "has batch " + std::to_string(operand.batch) + ", expected 1 or " + std::to_string(batch));
}

bool spans_overlap(const Mat& a, const Mat& b, std::int64_t element_bytes) {
  auto extent = [element_bytes](const Mat& m) {
    const std::int64_t last = (m.batch - 1) * m.stride + (m.cols - 1) * m.ld + m.rows;
    const auto* begin = static_cast<const char*>(m.data);
    return std::pair{begin, begin + last * element_bytes};
  };
  const auto [a0, a1] = extent(a);
  const auto [b0, b1] = extent(b);
  return a0 < b1 && b0 < a1;
}

GemmDims check_gemm(Op op_a, Op op_b, const Mat& a, const Mat& b, const Mat& c, std::int64_t element_bytes) {
  check_mat("gemm", "a", a);
  check_mat("gemm", "b", b);
  check_mat("gemm", "c", c);
  const std::int64_t m = op_a == Op::N ? a.rows : a.cols;
  const std::int64_t k = op_a == Op::N ? a.cols : a.rows;
  const std::int64_t kb = op_b == Op::N ? b.rows : b.cols;
  const std::int64_t n = op_b == Op::N ? b.cols : b.rows;
  if (kb != k)
    fail("gemm", "b", "gives op(b) with " + std::to_string(kb) + " rows, expected " + std::to_string(k) +
                          " (the columns of op(a))");
  if (c.rows != m || c.cols != n)
    fail("gemm", "c", "is " + std::to_string(c.rows) + " x " + std::to_string(c.cols) + ", expected " +
                          std::to_string(m) + " x " + std::to_string(n) + " (op(a) times op(b))");
  check_batch_compatible("gemm", "a", a, c.batch);
  check_batch_compatible("gemm", "b", b, c.batch);
  if (spans_overlap(a, c, element_bytes)) fail("gemm", "c", "overlaps 'a'; the product needs a separate output");
  if (spans_overlap(b, c, element_bytes)) fail("gemm", "c", "overlaps 'b'; the product needs a separate output");
  return {m, n, k};
}

}  // namespace pe::detail::gpu
