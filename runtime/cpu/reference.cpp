#include "reference.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "pe/types.hpp"

namespace pe::reference {

std::vector<double> make_spectrum(std::int64_t n, double kappa, Spectrum kind) {
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double t = n == 1 ? 1.0 : static_cast<double>(i) / static_cast<double>(n - 1);
    switch (kind) {
      case Spectrum::spread: w[static_cast<std::size_t>(i)] = std::pow(kappa, t - 1); break;
      // All but the top eigenvalue near 1/kappa (a small relative spread keeps them distinct).
      case Spectrum::clustered_low: w[static_cast<std::size_t>(i)] = (i == n - 1 ? 1.0 : (1 + 0.01 * t) / kappa); break;
      // All but the bottom eigenvalue near 1.
      case Spectrum::clustered_high: w[static_cast<std::size_t>(i)] = (i == 0 ? 1 / kappa : 1 - 0.01 * (1 - t)); break;
    }
  }
  if (n == 1) w[0] = 1;
  return w;
}

std::vector<double> random_spd(const std::vector<double>& eigenvalues, std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(eigenvalues.size());
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> q(static_cast<std::size_t>(n * n)), tau(static_cast<std::size_t>(n));
  for (auto& v : q) v = normal(rng);
  LAPACKE_dgeqrf(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(n), q.data(),
                 static_cast<lapack_int>(n), tau.data());
  LAPACKE_dorgqr(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(n), static_cast<lapack_int>(n),
                 q.data(), static_cast<lapack_int>(n), tau.data());
  std::vector<double> qd(q);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) qd[static_cast<std::size_t>(i + j * n)] *= eigenvalues[static_cast<std::size_t>(j)];
  std::vector<double> a(static_cast<std::size_t>(n * n));
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(n),
              static_cast<blasint>(n), 1.0, qd.data(), static_cast<blasint>(n), q.data(), static_cast<blasint>(n), 0.0,
              a.data(), static_cast<blasint>(n));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) a[static_cast<std::size_t>(j + i * n)] = a[static_cast<std::size_t>(i + j * n)];
  return a;
}

namespace {
void eig(std::vector<double>& a, std::vector<double>& w, std::int64_t n, char jobz) {
  w.resize(static_cast<std::size_t>(n));
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, jobz, 'U', static_cast<lapack_int>(n), a.data(), static_cast<lapack_int>(n),
                     w.data()) != 0)
    throw Error("reference: dsyevd failed");
}
}  // namespace

std::vector<double> inverse_root(const std::vector<double>& a, std::int64_t n, int p) {
  std::vector<double> q(a), w;
  eig(q, w, n, 'V');
  if (!(w.front() > 0)) throw Error("reference: matrix is not positive definite");
  std::vector<double> qd(q);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i)
      qd[static_cast<std::size_t>(i + j * n)] *= std::pow(w[static_cast<std::size_t>(j)], -1.0 / p);
  std::vector<double> x(static_cast<std::size_t>(n * n));
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(n),
              static_cast<blasint>(n), 1.0, qd.data(), static_cast<blasint>(n), q.data(), static_cast<blasint>(n), 0.0,
              x.data(), static_cast<blasint>(n));
  return x;
}

std::vector<double> eigenvalues(const std::vector<double>& a, std::int64_t n) {
  std::vector<double> q(a), w;
  eig(q, w, n, 'N');
  return w;
}

std::vector<double> multiply(const std::vector<double>& a, const std::vector<double>& b, std::int64_t n, std::int64_t m,
                             std::int64_t k) {
  std::vector<double> c(static_cast<std::size_t>(n * k));
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(k),
              static_cast<blasint>(m), 1.0, a.data(), static_cast<blasint>(n), b.data(), static_cast<blasint>(m), 0.0,
              c.data(), static_cast<blasint>(n));
  return c;
}

double root_eps(const std::vector<double>& a, const std::vector<double>& x, std::int64_t n, int p) {
  const auto ni = static_cast<blasint>(n);
  std::vector<double> l(a);
  if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', static_cast<lapack_int>(n), l.data(), static_cast<lapack_int>(n)) != 0)
    throw Error("reference: root_eps needs a positive definite A");
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < j; ++i) l[static_cast<std::size_t>(i + j * n)] = 0;
  std::vector<double> s(x);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) {
      const double m = 0.5 * (x[static_cast<std::size_t>(i + j * n)] + x[static_cast<std::size_t>(j + i * n)]);
      s[static_cast<std::size_t>(i + j * n)] = s[static_cast<std::size_t>(j + i * n)] = m;
    }
  std::vector<double> w(l), t(l.size());  // w <- S^p L
  for (int k = 0; k < p; ++k) {
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0, s.data(), ni, w.data(), ni, 0.0, t.data(), ni);
    w.swap(t);
  }
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, ni, ni, ni, 1.0, l.data(), ni, w.data(), ni, 0.0, t.data(), ni);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) {
      const double m = 0.5 * (t[static_cast<std::size_t>(i + j * n)] + t[static_cast<std::size_t>(j + i * n)]);
      t[static_cast<std::size_t>(i + j * n)] = t[static_cast<std::size_t>(j + i * n)] = m;
    }
  const std::vector<double> ev = eigenvalues(t, n);
  return std::max(std::abs(ev.front() - 1), std::abs(ev.back() - 1));
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

}  // namespace pe::reference
