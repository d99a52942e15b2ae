#include "baselines.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "pe/schedule_types.hpp"

namespace pe_bench {

template <class T>
void gemm(std::int64_t n, const T* a, const T* b, T* c) {
  const auto m = static_cast<blasint>(n);
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0f, a, m, b, m, 0.0f, c, m);
  else
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1.0, a, m, b, m, 0.0, c, m);
}

template <class T>
bool eigh_inverse_root(const std::vector<T>& a, std::int64_t n, int p, std::vector<T>& x) {
  std::vector<T> q(a), w(static_cast<std::size_t>(n));
  const auto m = static_cast<lapack_int>(n);
  lapack_int info;
  if constexpr (std::is_same_v<T, float>)
    info = LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'U', m, q.data(), m, w.data());
  else
    info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', m, q.data(), m, w.data());
  if (info != 0 || !(w.front() > 0)) return false;
  for (std::int64_t j = 0; j < n; ++j) {
    const T f = std::pow(w[static_cast<std::size_t>(j)], T(-0.5) / static_cast<T>(p));
    T* col = q.data() + j * n;
    for (std::int64_t i = 0; i < n; ++i) col[i] *= f;
  }
  x.resize(a.size());
  if constexpr (std::is_same_v<T, float>)
    cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, m, m, 1.0f, q.data(), m, 0.0f, x.data(), m);
  else
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, m, m, 1.0, q.data(), m, 0.0, x.data(), m);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) x[static_cast<std::size_t>(i + j * n)] = x[static_cast<std::size_t>(j + i * n)];
  return true;
}

double newton_scaling(double lambda_min, double lambda_max, int p) {
  const double alpha = lambda_max / lambda_min;
  if (alpha <= 1 + 1e-12) return std::pow(lambda_max, 1.0 / p);  // A = lambda I: M_0 = I
  const double r = std::pow(alpha, 1.0 / p);
  return std::pow((r * lambda_max - lambda_min) / ((r - 1) * (p + 1)), 1.0 / p);
}

// The coupled Newton iteration is the degree-1 step q = (p + 1 - Y) / p, so it costs what the one GEMM
// model says for that step (B^p Y by binary powering and the sandwiched form take the same count).
int newton_gemms(int p, int iteration, bool last) {
  return pe::detail::step_gemms(p, pe::detail::StepDesc{1, iteration == 1, last, pe::detail::StepOutput::materialize});
}

template <class T>
CoupledNewton<T>::CoupledNewton(std::int64_t n, int p)
    : n_(n), p_(p), m_(static_cast<std::size_t>(n * n)), t_(m_.size()), power_(m_.size()), scratch_(m_.size()),
      x_next_(m_.size()) {}

template <class T>
int CoupledNewton<T>::run(const std::vector<T>& a, double c, int iterations, std::vector<T>& x,
                          const std::function<bool(int, const std::vector<T>&)>& after_iteration) {
  const std::int64_t n = n_;
  const std::size_t nn = m_.size();
  const T inv_cp = static_cast<T>(std::pow(c, -p_));
  for (std::size_t i = 0; i < nn; ++i) m_[i] = a[i] * inv_cp;
  x.assign(nn, T(0));
  const T inv_c = static_cast<T>(1 / c);
  for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(i + i * n)] = inv_c;
  const T inv_p = T(1) / static_cast<T>(p_);
  int gemms = 0;
  for (int k = 1; k <= iterations; ++k) {
    const bool last = k == iterations;
    // T = ((p+1) I - M) / p, no GEMM.
    for (std::size_t i = 0; i < nn; ++i) t_[i] = -m_[i] * inv_p;
    for (std::int64_t i = 0; i < n; ++i) t_[static_cast<std::size_t>(i + i * n)] += static_cast<T>(p_ + 1) * inv_p;
    if (k == 1) {
      for (std::size_t i = 0; i < nn; ++i) x[i] = t_[i] * inv_c;  // X_0 T with X_0 = I/c
    } else {
      gemm(n, x.data(), t_.data(), x_next_.data());
      x.swap(x_next_);
      ++gemms;
    }
    if (!last) {
      // power_ <- T^p by binary powering from the top bit, then M <- T^p M.
      const T* pw = t_.data();
      int top = 0;
      while ((p_ >> (top + 1)) > 0) ++top;
      if (top > 0) {
        std::copy(t_.begin(), t_.end(), power_.begin());
        for (int bit = top - 1; bit >= 0; --bit) {
          gemm(n, power_.data(), power_.data(), scratch_.data());
          power_.swap(scratch_);
          ++gemms;
          if ((p_ >> bit) & 1) {
            gemm(n, power_.data(), t_.data(), scratch_.data());
            power_.swap(scratch_);
            ++gemms;
          }
        }
        pw = power_.data();
      }
      gemm(n, pw, m_.data(), scratch_.data());
      m_.swap(scratch_);
      ++gemms;
    }
    if (after_iteration && !after_iteration(k, x)) break;
  }
  return gemms;
}

template void gemm<float>(std::int64_t, const float*, const float*, float*);
template void gemm<double>(std::int64_t, const double*, const double*, double*);
template bool eigh_inverse_root<float>(const std::vector<float>&, std::int64_t, int, std::vector<float>&);
template bool eigh_inverse_root<double>(const std::vector<double>&, std::int64_t, int, std::vector<double>&);
template class CoupledNewton<float>;
template class CoupledNewton<double>;

}  // namespace pe_bench
