// Shared helpers of the verification tests: test matrices with known spectra, roots built from the
// exact one with controlled perturbations, and references for eps(X) = max |lambda(X^p A) - 1| that
// do not share any code or method with runtime/verify.
#pragma once

#include <cblas.h>
#include <lapacke.h>

#include <boost/multiprecision/cpp_bin_float.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "backend_factory.hpp"
#include "reference.hpp"
#include "verify/root_verifier.hpp"

namespace pe_verify_test {

using Matrix = std::vector<double>;  // column-major n x n

enum class Shape { spread, one_outlier_high, one_outlier_low, two_clusters };
inline const char* name(Shape s) {
  switch (s) {
    case Shape::spread: return "spread";
    case Shape::one_outlier_high: return "outlier_high";
    case Shape::one_outlier_low: return "outlier_low";
    case Shape::two_clusters: return "two_clusters";
  }
  return "?";
}

// Eigenvalues in [1/kappa, 1]: log-spaced; all near 1/kappa but the top one; all near 1 but the
// bottom one; half at 1, half at 1/kappa (small relative spreads keep them distinct).
inline std::vector<double> spectrum(std::int64_t n, double kappa, Shape s) {
  using pe::reference::Spectrum;
  switch (s) {
    case Shape::spread: return pe::reference::make_spectrum(n, kappa, Spectrum::spread);
    case Shape::one_outlier_high: return pe::reference::make_spectrum(n, kappa, Spectrum::clustered_low);
    case Shape::one_outlier_low: return pe::reference::make_spectrum(n, kappa, Spectrum::clustered_high);
    case Shape::two_clusters: break;
  }
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double t = n == 1 ? 0 : static_cast<double>(i) / static_cast<double>(n - 1);
    w[static_cast<std::size_t>(i)] = i < n / 2 ? (1 + 0.01 * t) / kappa : 1 - 0.01 * t;
  }
  return w;
}

// Rounds to f32 (or leaves f64), keeping the matrix exactly symmetric.
inline Matrix to_storage(Matrix m, std::int64_t n, pe::DType dtype) {
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j; i < n; ++i) {
      double v = m[static_cast<std::size_t>(i + j * n)];
      if (dtype == pe::DType::f32) v = static_cast<double>(static_cast<float>(v));
      m[static_cast<std::size_t>(i + j * n)] = v;
      m[static_cast<std::size_t>(j + i * n)] = v;
    }
  return m;
}

// V diag(f(lambda)) V^T for the eigendecomposition of symmetric a (LAPACK dsyevd), exactly symmetric.
template <class F>
Matrix spectral_function(const Matrix& a, std::int64_t n, F&& f) {
  Matrix v(a);
  std::vector<double> w(static_cast<std::size_t>(n));
  if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n), v.data(), static_cast<lapack_int>(n),
                     w.data()) != 0)
    throw std::runtime_error("test: dsyevd failed");
  Matrix vf(v);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) vf[static_cast<std::size_t>(i + j * n)] *= f(w[static_cast<std::size_t>(j)], j);
  Matrix out(static_cast<std::size_t>(n * n));
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(n),
              static_cast<blasint>(n), 1.0, vf.data(), static_cast<blasint>(n), v.data(), static_cast<blasint>(n), 0.0,
              out.data(), static_cast<blasint>(n));
  return to_storage(out, n, pe::DType::f64);
}

// X = V diag(lambda^{-1/p} (1 + delta_i)) V^T + noise * ||X||_max * G (G symmetric, entries in [-1, 1]),
// rounded to `dtype`: the exact root with eigenvalue errors delta_i uniform in [-spread, spread].
inline Matrix perturbed_root(const Matrix& a, std::int64_t n, int p, double spread, double noise, pe::DType dtype,
                             std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::vector<double> delta(static_cast<std::size_t>(n));
  for (double& d : delta) d = spread * uniform(rng);
  Matrix x = spectral_function(a, n, [&](double lambda, std::int64_t j) {
    return std::pow(lambda, -1.0 / p) * (1 + delta[static_cast<std::size_t>(j)]);
  });
  if (noise > 0) {
    double biggest = 0;
    for (double v : x) biggest = std::max(biggest, std::abs(v));
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = j; i < n; ++i) {
        const double e = noise * biggest * uniform(rng);
        x[static_cast<std::size_t>(i + j * n)] += e;
        if (i != j) x[static_cast<std::size_t>(j + i * n)] += e;
      }
  }
  return to_storage(x, n, dtype);
}

// ---- references ---------------------------------------------------------------------------------

using Quad = boost::multiprecision::cpp_bin_float_quad;  // 113-bit significand

inline std::vector<Quad> to_quad(const Matrix& m) { return {m.begin(), m.end()}; }

inline std::vector<Quad> multiply(const std::vector<Quad>& a, const std::vector<Quad>& b, std::int64_t n,
                                  bool transpose_a = false) {
  std::vector<Quad> c(static_cast<std::size_t>(n * n));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t k = 0; k < n; ++k) {
      const Quad bkj = b[static_cast<std::size_t>(k + j * n)];
      if (bkj == 0) continue;
      for (std::int64_t i = 0; i < n; ++i)
        c[static_cast<std::size_t>(i + j * n)] +=
            (transpose_a ? a[static_cast<std::size_t>(k + i * n)] : a[static_cast<std::size_t>(i + k * n)]) * bkj;
    }
  return c;
}

// eps(X) with the residual formed in 113-bit arithmetic: W = X^m A X^m (p = 2m) or W = L^T X^p L with
// A = L L^T factored in 113 bits (odd p). W - I is then rounded to double (a relative change of
// 2^-53 of a matrix of norm eps) and its eigenvalues taken with LAPACK dsyevd (backward error about
// n 2^-53 eps): the result is eps(X) within a relative 1e-12 plus the 113-bit rounding (below 1e-25
// for the inputs of these tests). Requires A positive definite in 113 bits.
inline double quad_eps(const Matrix& a, const Matrix& x, std::int64_t n, int p) {
  const std::vector<Quad> aq = to_quad(a), xq = to_quad(x);
  std::vector<Quad> w;
  if (p % 2 == 0) {
    std::vector<Quad> g = xq;  // X^m
    for (int i = 1; i < p / 2; ++i) g = multiply(xq, g, n);
    w = multiply(g, multiply(aq, g, n), n, true);
  } else {
    std::vector<Quad> l(static_cast<std::size_t>(n * n));  // lower Cholesky factor of A
    for (std::int64_t j = 0; j < n; ++j) {
      Quad d = aq[static_cast<std::size_t>(j + j * n)];
      for (std::int64_t k = 0; k < j; ++k) d -= l[static_cast<std::size_t>(j + k * n)] * l[static_cast<std::size_t>(j + k * n)];
      if (d <= 0) throw std::runtime_error("test: A is not positive definite in 113 bits");
      const Quad r = sqrt(d);
      l[static_cast<std::size_t>(j + j * n)] = r;
      for (std::int64_t i = j + 1; i < n; ++i) {
        Quad s = aq[static_cast<std::size_t>(i + j * n)];
        for (std::int64_t k = 0; k < j; ++k) s -= l[static_cast<std::size_t>(i + k * n)] * l[static_cast<std::size_t>(j + k * n)];
        l[static_cast<std::size_t>(i + j * n)] = s / r;
      }
    }
    std::vector<Quad> g = l;  // X^p L
    for (int i = 0; i < p; ++i) g = multiply(xq, g, n);
    w = multiply(l, g, n, true);
  }
  Matrix d(static_cast<std::size_t>(n * n));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      // The symmetric part, so that rounding keeps D exactly symmetric.
      const Quad v = (w[static_cast<std::size_t>(i + j * n)] + w[static_cast<std::size_t>(j + i * n)]) / 2 -
                     (i == j ? Quad(1) : Quad(0));
      d[static_cast<std::size_t>(i + j * n)] = static_cast<double>(v);
    }
  const std::vector<double> ev = pe::reference::eigenvalues(d, n);
  return std::max(std::abs(ev.front()), std::abs(ev.back()));
}

// eps(X) in double, W = L^T X^p L with L = chol(A) (LAPACK): its own error is about n u kappa ||X||^p-ish,
// fine where eps(X) is far above that (f32 roots at kappa <= 1e6, n <= 160).
inline double double_eps(const Matrix& a, const Matrix& x, std::int64_t n, int p) {
  Matrix l(a);
  if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', static_cast<lapack_int>(n), l.data(), static_cast<lapack_int>(n)) != 0)
    throw std::runtime_error("test: A is not positive definite in double");
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < j; ++i) l[static_cast<std::size_t>(i + j * n)] = 0;
  Matrix g(l), t(l.size());
  for (int i = 0; i < p; ++i) {
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(n),
                static_cast<blasint>(n), 1.0, x.data(), static_cast<blasint>(n), g.data(), static_cast<blasint>(n), 0.0,
                t.data(), static_cast<blasint>(n));
    g.swap(t);
  }
  Matrix w(l.size());
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(n), static_cast<blasint>(n),
              static_cast<blasint>(n), 1.0, l.data(), static_cast<blasint>(n), g.data(), static_cast<blasint>(n), 0.0,
              w.data(), static_cast<blasint>(n));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = 0.5 * (w[static_cast<std::size_t>(i + j * n)] + w[static_cast<std::size_t>(j + i * n)]);
      t[static_cast<std::size_t>(i + j * n)] = v - (i == j ? 1.0 : 0.0);
    }
  const std::vector<double> ev = pe::reference::eigenvalues(t, n);
  return std::max(std::abs(ev.front()), std::abs(ev.back()));
}

// ---- running the verifier -----------------------------------------------------------------------

// Certifies (a_k, x_k) for k = 0..batch-1 (matrices one after another) in one call on a CPU f64 backend.
inline std::vector<pe::detail::RootCertificate> certify(const std::vector<Matrix>& a, const std::vector<Matrix>& x,
                                                        std::int64_t n, int p, pe::detail::VerifyArithmetic arithmetic) {
  auto be = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  const auto batch = static_cast<std::int64_t>(a.size());
  pe::detail::Mat am = be->allocate(n, n, batch), xm = be->allocate(n, n, batch);
  std::vector<double> ah, xh;
  for (std::size_t k = 0; k < a.size(); ++k) {
    ah.insert(ah.end(), a[k].begin(), a[k].end());
    xh.insert(xh.end(), x[k].begin(), x[k].end());
  }
  be->upload(pe::detail::HostMat{ah.data(), pe::DType::f64, n, n, n, batch, n * n}, am);
  be->upload(pe::detail::HostMat{xh.data(), pe::DType::f64, n, n, n, batch, n * n}, xm);
  pe::detail::RootVerifier verifier(*be, n, batch, p, arithmetic);
  return verifier.certify(am, xm);
}

inline pe::detail::RootCertificate certify_one(const Matrix& a, const Matrix& x, std::int64_t n, int p,
                                               pe::detail::VerifyArithmetic arithmetic) {
  return certify({a}, {x}, n, p, arithmetic).front();
}

}  // namespace pe_verify_test
