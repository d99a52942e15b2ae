#include "lanczos.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pe::detail::solve {

namespace {

double dot(const std::vector<double>& x, const std::vector<double>& y) {
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

// Smallest eigenvalue of the symmetric tridiagonal (alpha, beta) by bisection on the Sturm count.
double smallest_eigenvalue(const std::vector<double>& alpha, const std::vector<double>& beta) {
  const std::size_t m = alpha.size();
  double lo = alpha[0], hi = alpha[0];
  for (std::size_t i = 0; i < m; ++i) {
    const double r = (i > 0 ? std::abs(beta[i - 1]) : 0.0) + (i + 1 < m ? std::abs(beta[i]) : 0.0);
    lo = std::min(lo, alpha[i] - r);
    hi = std::max(hi, alpha[i] + r);
  }
  auto count_below = [&](double x) {
    int count = 0;
    double q = alpha[0] - x;
    for (std::size_t i = 0;; ++i) {
      if (q < 0) ++count;
      if (i + 1 == m) break;
      if (q == 0) q = 1e-300;
      q = alpha[i + 1] - x - beta[i] * beta[i] / q;
    }
    return count;
  };
  for (int it = 0; it < 200 && hi - lo > 1e-15 * std::max(std::abs(lo), std::abs(hi)) + 1e-300; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (count_below(mid) >= 1)
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

}  // namespace

LanczosWorkspace allocate_lanczos_workspace(Backend& backend, std::int64_t n) {
  return {backend.allocate(n, 1, 1), backend.allocate(n, 1, 1)};
}

double smallest_ritz_value(Backend& be, const Mat& a, int max_iterations, double stop_below, LanczosWorkspace& ws) {
  const std::int64_t n = a.rows;
  const auto nn = static_cast<std::size_t>(n);
  if (ws.v.rows != n || ws.w.rows != n) throw Error("internal: Lanczos workspace of another size");
  Mat& v_dev = ws.v;
  Mat& w_dev = ws.w;
  std::vector<std::vector<double>> basis;
  std::vector<double> v(nn), w(nn), alpha, beta;
  // A fixed, non-special start (deterministic; not orthogonal to any eigenvector in practice).
  for (std::size_t i = 0; i < nn; ++i) v[i] = 1.0 + 0.5 * std::sin(0.7 * static_cast<double>(i) + 0.3);
  const double v_norm = std::sqrt(dot(v, v));
  for (double& x : v) x /= v_norm;
  double theta = 0;
  const int steps = static_cast<int>(std::min<std::int64_t>(max_iterations, n));
  for (int j = 0; j < steps; ++j) {
    basis.push_back(v);
    be.upload(HostMat{v.data(), DType::f64, n, 1, n, 1, n, Layout::col_major}, v_dev);
    be.gemm(Op::N, Op::N, 1.0, a, v_dev, 0.0, w_dev);
    be.download(w_dev, HostMat{w.data(), DType::f64, n, 1, n, 1, n, Layout::col_major});
    alpha.push_back(dot(w, v));
    for (int pass = 0; pass < 2; ++pass)  // full reorthogonalisation, twice is enough
      for (const auto& q : basis) {
        const double c = dot(w, q);
        for (std::size_t i = 0; i < nn; ++i) w[i] -= c * q[i];
      }
    const double b = std::sqrt(dot(w, w));
    theta = smallest_eigenvalue(alpha, beta);
    const double scale = std::max(std::abs(alpha.front()), 1e-300);
    if (!std::isfinite(theta) || theta <= stop_below || b <= 1e-14 * scale) break;
    beta.push_back(b);
    for (std::size_t i = 0; i < nn; ++i) v[i] = w[i] / b;
  }
  return theta;
}

}  // namespace pe::detail::solve
