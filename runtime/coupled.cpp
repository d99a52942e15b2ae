#include "coupled.hpp"

#include <string>
#include <utility>
#include <vector>

#include "pe/detail/gemm_cost.hpp"
#include "pe/types.hpp"

namespace pe::detail {

StepBuffers allocate_step_buffers(Backend& backend, std::int64_t n, std::int64_t batch, int p, int max_degree) {
  StepBuffers b;
  if (max_degree >= 2 || p >= 2) b.y2 = backend.allocate(n, n, batch);
  b.y_alt = backend.allocate(n, n, batch);
  if (p % 2 == 1 && p >= 3) b.tmp = backend.allocate(n, n, batch);
  if (p >= 4)
    for (auto& m : b.pool) m = backend.allocate(n, n, batch);
  if (max_degree >= 3) b.high = backend.allocate(n, n, batch);
  return b;
}

int form_q(Backend& backend, const Mat& y, int degree, const QCoefficients& c, StepBuffers& buffers, Mat& q,
           bool square_ready) {
  if (degree < 1 || degree > kMaxDegree) throw Error("internal: form_q of degree " + std::to_string(degree));
  if (degree == 1) {
    backend.axpby_identity(c[1], &y, c[1], nullptr, c[0], q);
    return q_form_gemms(degree);
  }
  if (!square_ready) backend.gemm(Op::N, Op::N, 1.0, y, y, 0.0, buffers.y2);
  if (degree == 2) {
    backend.axpby_identity(c[1], &y, c[2], &buffers.y2, c[0], q);
    return q_form_gemms(degree);
  }
  // high = c_2 I + c_3 Y (+ c_4 Y^2); q = c_0 I + c_1 Y; q <- Y^2 high + q.
  backend.axpby_identity(c[3], &y, degree == 4 ? c[4] : c[3], degree == 4 ? &buffers.y2 : nullptr, c[2], buffers.high);
  backend.axpby_identity(c[1], &y, c[1], nullptr, c[0], q);
  backend.gemm(Op::N, Op::N, 1.0, buffers.y2, buffers.high, 1.0, q);
  return q_form_gemms(degree);
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

int terminal_apply(Backend& backend, const Mat& y, int degree, const QCoefficients& c, Mat& z, Mat& w1, Mat& w2) {
  if (degree < 1 || degree > kMaxDegree) throw Error("internal: terminal_apply of degree " + std::to_string(degree));
  const std::vector<double> zero{0.0}, one{1.0};
  backend.gemm(Op::N, Op::N, 1.0, y, z, 0.0, w1);  // w1 = Y Z
  if (degree == 1) {
    backend.axpby_identity(c[1], &w1, c[0], &z, zero, z);  // Z = c_1 Y Z + c_0 Z
    return terminal_direct_gemms(degree);
  }
  backend.axpby_identity(c[static_cast<std::size_t>(degree)], &w1, c[static_cast<std::size_t>(degree - 1)], &z, zero,
                         w1);  // w1 = c_d Y Z + c_{d-1} Z
  for (int j = degree - 2; j >= 0; --j) {
    backend.gemm(Op::N, Op::N, 1.0, y, w1, 0.0, w2);  // w2 = Y w1
    // The last term goes straight into Z (Z is read only by this term from here on).
    backend.axpby_identity(one, &w2, c[static_cast<std::size_t>(j)], &z, zero, j == 0 ? z : w1);
  }
  return terminal_direct_gemms(degree);
}

}  // namespace pe::detail
