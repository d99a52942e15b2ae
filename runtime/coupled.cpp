#include "coupled.hpp"

#include <utility>
#include <vector>

#include "pe/schedule_types.hpp"
#include "pe/types.hpp"

namespace pe::detail {

StepBuffers allocate_step_buffers(Backend& backend, std::int64_t n, std::int64_t batch, int p, int degree) {
  StepBuffers b;
  if (degree == 2 || p >= 2) b.y2 = backend.allocate(n, n, batch);
  b.y_alt = backend.allocate(n, n, batch);
  if (p % 2 == 1 && p >= 3) b.tmp = backend.allocate(n, n, batch);
  if (p >= 4)
    for (auto& m : b.pool) m = backend.allocate(n, n, batch);
  return b;
}

int form_q(Backend& backend, const Mat& y, int degree, std::span<const double> a, std::span<const double> b,
           std::span<const double> c, StepBuffers& buffers, Mat& q) {
  if (degree == 2) {
    backend.gemm(Op::N, Op::N, 1.0, y, y, 0.0, buffers.y2);
    backend.axpby_identity(b, &y, c, &buffers.y2, a, q);
    return 1;
  }
  backend.axpby_identity(b, &y, b, nullptr, a, q);
  return 0;
}

namespace {

// q^m by binary powering into one of buffers.pool (or q itself for m == 1). GEMMs: binary_powering_products(m).
const Mat* power(Backend& backend, const Mat& q, int m, StepBuffers& buffers, int& gemms) {
  const Mat* result = nullptr;
  const Mat* base = &q;
  auto free_buffer = [&]() -> Mat* {
    for (auto& candidate : buffers.pool)
      if (&candidate != result && &candidate != base) return &candidate;
    throw Error("internal: no free powering buffer");
  };
  for (int v = m; v > 0; v >>= 1) {
    if (v & 1) {
      if (result == nullptr) {
        result = base;
      } else {
        Mat* out = free_buffer();
        backend.gemm(Op::N, Op::N, 1.0, *result, *base, 0.0, *out);
        ++gemms;
        result = out;
      }
    }
    if (v > 1) {
      Mat* out = free_buffer();
      backend.gemm(Op::N, Op::N, 1.0, *base, *base, 0.0, *out);
      ++gemms;
      base = out;
    }
  }
  return result;
}

}  // namespace

int update_residual(Backend& backend, int p, const Mat& q, Mat& y, StepBuffers& buffers) {
  int gemms = 0;
  if (p == 1) {
    backend.gemm(Op::N, Op::N, 1.0, q, y, 0.0, buffers.y_alt);
    std::swap(y, buffers.y_alt);
    return 1;
  }
  const Mat* qm = power(backend, q, p / 2, buffers, gemms);
  backend.gemm(Op::N, Op::N, 1.0, *qm, y, 0.0, buffers.y2);
  if (p % 2 == 0) {
    backend.gemm(Op::N, Op::N, 1.0, buffers.y2, *qm, 0.0, buffers.y_alt);
    gemms += 2;
  } else {
    backend.gemm(Op::N, Op::N, 1.0, buffers.y2, *qm, 0.0, buffers.tmp);
    backend.gemm(Op::N, Op::N, 1.0, q, buffers.tmp, 0.0, buffers.y_alt);
    gemms += 3;
  }
  std::swap(y, buffers.y_alt);
  return gemms;
}

int terminal_apply(Backend& backend, const Mat& y, int degree, std::span<const double> a,
                   std::span<const double> b, std::span<const double> c, Mat& z, Mat& w1, Mat& w2) {
  const std::vector<double> zero{0.0}, one{1.0};
  backend.gemm(Op::N, Op::N, 1.0, y, z, 0.0, w1);                  // w1 = Y Z
  if (degree == 2) {
    backend.gemm(Op::N, Op::N, 1.0, y, w1, 0.0, w2);               // w2 = Y (Y Z)
    backend.axpby_identity(a, &z, b, &w1, zero, w1);               // w1 = a Z + b Y Z
    backend.axpby_identity(one, &w1, c, &w2, zero, z);             // Z = w1 + c Y (Y Z)
    return 2;
  }
  backend.axpby_identity(a, &z, b, &w1, zero, z);
  return 1;
}

}  // namespace pe::detail
