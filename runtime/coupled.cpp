#include "coupled.hpp"

#include <string>
#include <utility>
#include <vector>

#include "pe/schedule_types.hpp"
#include "pe/types.hpp"

namespace pe::detail {

StepBuffers allocate_step_buffers(Backend& backend, std::int64_t n, std::int64_t batch, int p, int degree) {
  StepBuffers b;
  if (degree >= 2 || p >= 2) b.y2 = backend.allocate(n, n, batch);
  b.y_alt = backend.allocate(n, n, batch);
  if (p % 2 == 1 && p >= 3) b.tmp = backend.allocate(n, n, batch);
  if (p >= 4)
    for (auto& m : b.pool) m = backend.allocate(n, n, batch);
  return b;
}

int form_q(Backend& backend, const Mat& y, int degree, const Coefficients& c, StepBuffers& buffers, Mat& q) {
  const std::vector<double> one{1.0};
  switch (degree) {
    case 1:
      backend.axpby_identity(c[1], &y, c[1], nullptr, c[0], q);
      return 0;
    case 2:
      backend.gemm(Op::N, Op::N, 1.0, y, y, 0.0, buffers.y2);
      backend.axpby_identity(c[1], &y, c[2], &buffers.y2, c[0], q);
      return 1;
    case 3:
    case 4:
      // (c0 I + c1 Y) + Y^2 (c2 I + c3 Y [+ c4 Y^2]).
      backend.gemm(Op::N, Op::N, 1.0, y, y, 0.0, buffers.y2);
      if (degree == 3)
        backend.axpby_identity(c[3], &y, c[3], nullptr, c[2], q);
      else
        backend.axpby_identity(c[3], &y, c[4], &buffers.y2, c[2], q);
      backend.gemm(Op::N, Op::N, 1.0, buffers.y2, q, 0.0, buffers.y_alt);
      backend.axpby_identity(one, &buffers.y_alt, c[1], &y, c[0], q);
      return 2;
    default:
      throw Error("internal: form_q for degree " + std::to_string(degree) + " (expected 1..4)");
  }
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

int terminal_apply(Backend& backend, const Mat& y, int degree, const Coefficients& c, Mat& z, Mat& w1, Mat& w2) {
  if (degree < 1 || degree > 4) throw Error("internal: terminal_apply for degree " + std::to_string(degree));
  const std::vector<double> zero{0.0}, one{1.0};
  // Horner: h = c_d Z, then h <- Y h + c_j Z for j = d-1 .. 0; the last update writes Z itself.
  backend.axpby_identity(c[degree], &z, c[degree], nullptr, zero, w1);
  for (int j = degree - 1; j >= 0; --j) {
    backend.gemm(Op::N, Op::N, 1.0, y, w1, 0.0, w2);
    backend.axpby_identity(one, &w2, c[j], &z, zero, j == 0 ? z : w1);
  }
  return degree;
}

}  // namespace pe::detail
