#include "reference_general.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <cmath>
#include <random>
#include <stdexcept>

namespace pe::reference {

std::vector<double> random_gaussian(std::int64_t n, std::int64_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> out(static_cast<std::size_t>(n * k));
  for (double& v : out) v = normal(rng);
  return out;
}

std::vector<double> random_orthogonal(std::int64_t n, std::uint64_t seed) {
  std::vector<double> q = random_gaussian(n, n, seed), tau(static_cast<std::size_t>(n));
  const auto ln = static_cast<lapack_int>(n);
  if (LAPACKE_dgeqrf(LAPACK_COL_MAJOR, ln, ln, q.data(), ln, tau.data()) != 0)
    throw std::runtime_error("random_orthogonal: dgeqrf failed");
  std::vector<double> sign(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) sign[static_cast<std::size_t>(i)] = q[static_cast<std::size_t>(i + i * n)] < 0 ? -1.0 : 1.0;
  if (LAPACKE_dorgqr(LAPACK_COL_MAJOR, ln, ln, ln, q.data(), ln, tau.data()) != 0)
    throw std::runtime_error("random_orthogonal: dorgqr failed");
  // Q diag(sign(R_ii)) is Haar distributed.
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) q[static_cast<std::size_t>(i + j * n)] *= sign[static_cast<std::size_t>(j)];
  return q;
}

std::vector<double> random_general(const std::vector<double>& sigma, std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(sigma.size());
  std::vector<double> u = random_orthogonal(n, seed), v = random_orthogonal(n, seed ^ 0x9e3779b97f4a7c15ull);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) u[static_cast<std::size_t>(i + j * n)] *= sigma[static_cast<std::size_t>(j)];
  std::vector<double> a(static_cast<std::size_t>(n * n));
  const auto bn = static_cast<blasint>(n);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, bn, bn, bn, 1.0, u.data(), bn, v.data(), bn, 0.0, a.data(), bn);
  return a;
}

std::vector<double> lapack_solve(const std::vector<double>& a, const std::vector<double>& b, std::int64_t n,
                                 std::int64_t k) {
  std::vector<double> lu(a), x(b);
  std::vector<lapack_int> piv(static_cast<std::size_t>(n));
  const lapack_int info = LAPACKE_dgesv(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(k),
                                        lu.data(), static_cast<lapack_int>(n), piv.data(), x.data(),
                                        static_cast<lapack_int>(n));
  if (info != 0) throw std::runtime_error("lapack_solve: dgesv info = " + std::to_string(info));
  return x;
}

double relative_residual(const std::vector<double>& a, const std::vector<double>& x, const std::vector<double>& b,
                         std::int64_t n, std::int64_t k) {
  std::vector<double> r(b);
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k),
              static_cast<blasint>(n), -1.0, a.data(), static_cast<blasint>(n), x.data(), static_cast<blasint>(n), 1.0,
              r.data(), static_cast<blasint>(n));
  double rn = 0, bn = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    rn += r[i] * r[i];
    bn += b[i] * b[i];
  }
  return std::sqrt(rn / bn);
}

}  // namespace pe::reference
