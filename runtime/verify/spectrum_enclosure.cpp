#include "verify/spectrum_enclosure.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "pe/detail/format.hpp"
#include "pe/types.hpp"
#include "verify/rounding.hpp"

namespace pe::detail::verify {
namespace {

constexpr int kSuccessSlot = 0;
// The first shift is 5 % (of the larger extreme) beyond the Ritz value: the bound is then at most
// 1.05 times the estimate, and a Lanczos estimate short by more than that costs one more
// factorisation with eight times the margin.
constexpr double kFirstMargin = 0.05;
constexpr double kMarginGrowth = 8;
constexpr int kMaxAttempts = 4;

double dot(const double* x, const double* y, std::int64_t n) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

Mat member_view(const Mat& m, std::int64_t k) {
  Mat one = m;
  one.data = static_cast<double*>(m.data) + k * m.stride;
  one.batch = 1;
  one.stride = m.ld * m.cols;
  return one;
}

}  // namespace

SpectrumEnclosure::SpectrumEnclosure(Backend& wide, std::int64_t n, std::int64_t batch, int lanczos_steps)
    : be_(wide), n_(n), batch_(batch), steps_(static_cast<int>(std::min<std::int64_t>(lanczos_steps, n))) {
  if (wide.storage() != DType::f64)
    throw Error(std::string("verify: the spectrum enclosure needs an f64 backend, got ") + to_string(wide.storage()));
  if (n < 1 || batch < 1 || lanczos_steps < 1)
    throw Error("verify: spectrum enclosure of order " + std::to_string(n) + ", batch " + std::to_string(batch) +
                ", " + std::to_string(lanczos_steps) + " Lanczos steps; expected all >= 1");
  c_ = be_.allocate(n, n, batch);
  v_ = be_.allocate(n, 1, batch);
  w_ = be_.allocate(n, 1, batch);
  basis_.resize(static_cast<std::size_t>(steps_ * n * batch));
  v_host_.resize(static_cast<std::size_t>(n * batch));
  w_host_.resize(static_cast<std::size_t>(n * batch));
}

void SpectrumEnclosure::ritz_extremes(const Mat& d, std::vector<double>& lowest, std::vector<double>& highest) {
  const std::int64_t n = n_;
  const auto at = [n](std::vector<double>& v, std::int64_t k) { return v.data() + k * n; };
  std::vector<std::vector<double>> alpha(static_cast<std::size_t>(batch_)), beta(alpha.size());
  std::vector<bool> running(alpha.size(), true);
  // A fixed, non-special start (deterministic: 64-bit LCG, top 53 bits as uniform values), the same for
  // every member so that a member's certificate does not depend on its place in the batch.
  for (std::int64_t k = 0; k < batch_; ++k) {
    std::uint64_t state = 0x9E3779B97F4A7C15ull;
    double* v = at(v_host_, k);
    for (std::int64_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      v[i] = static_cast<double>(state >> 11) * 0x1p-53 - 0.5;
    }
    const double norm = std::sqrt(dot(v, v, n));
    for (std::int64_t i = 0; i < n; ++i) v[i] /= norm;
  }
  const HostMat v_view{v_host_.data(), DType::f64, n, 1, n, batch_, n, Layout::col_major};
  const HostMat w_view{w_host_.data(), DType::f64, n, 1, n, batch_, n, Layout::col_major};
  for (int j = 0; j < steps_; ++j) {
    be_.upload(v_view, v_);
    be_.gemm(Op::N, Op::N, 1.0, d, v_, 0.0, w_);
    be_.download(w_, w_view);
    for (std::int64_t k = 0; k < batch_; ++k) {
      if (!running[static_cast<std::size_t>(k)]) continue;
      double* v = at(v_host_, k);
      double* w = at(w_host_, k);
      double* basis = basis_.data() + (k * steps_ + j) * n;
      std::copy(v, v + n, basis);
      alpha[static_cast<std::size_t>(k)].push_back(dot(w, v, n));
      for (int pass = 0; pass < 2; ++pass)  // full reorthogonalisation, twice is enough
        for (int i = 0; i <= j; ++i) {
          const double* q = basis_.data() + (k * steps_ + i) * n;
          const double c = dot(w, q, n);
          for (std::int64_t r = 0; r < n; ++r) w[r] -= c * q[r];
        }
      const double b = std::sqrt(dot(w, w, n));
      const double scale = std::abs(alpha[static_cast<std::size_t>(k)].front()) + b;
      if (!(b > 1e-13 * scale) || j + 1 == steps_) {  // invariant subspace (or done): stop this member
        running[static_cast<std::size_t>(k)] = false;
        std::fill(v, v + n, 0.0);
        continue;
      }
      beta[static_cast<std::size_t>(k)].push_back(b);
      for (std::int64_t r = 0; r < n; ++r) v[r] = w[r] / b;
    }
    if (std::none_of(running.begin(), running.end(), [](bool r) { return r; })) break;
  }
  lowest.assign(static_cast<std::size_t>(batch_), std::nan(""));
  highest = lowest;
  for (std::int64_t k = 0; k < batch_; ++k) {
    std::vector<double> diag = alpha[static_cast<std::size_t>(k)];
    std::vector<double> off = beta[static_cast<std::size_t>(k)];
    off.resize(diag.size() > 1 ? diag.size() - 1 : 1);
    if (diag.empty()) continue;
    if (LAPACKE_dstev(LAPACK_COL_MAJOR, 'N', static_cast<lapack_int>(diag.size()), diag.data(), off.data(), nullptr,
                      1) != 0)
      continue;
    lowest[static_cast<std::size_t>(k)] = diag.front();
    highest[static_cast<std::size_t>(k)] = diag.back();
  }
}

SpectrumEnclosure::Bounds SpectrumEnclosure::enclose(const Mat& d, std::span<const double> d_norm_inf,
                                                     const std::vector<bool>& active) {
  if (d.rows != n_ || d.cols != n_ || d.batch != batch_)
    throw Error("verify: spectrum enclosure planned for " + std::to_string(n_) + " x " + std::to_string(n_) + " x " +
                std::to_string(batch_) + ", got " + std::to_string(d.rows) + " x " + std::to_string(d.cols) + " x " +
                std::to_string(d.batch));
  Bounds out;
  out.upper.assign(static_cast<std::size_t>(batch_), std::numeric_limits<double>::infinity());
  out.lower.assign(out.upper.size(), -std::numeric_limits<double>::infinity());
  out.failure.assign(out.upper.size(), "");
  std::vector<double> lowest, highest;
  ritz_extremes(d, lowest, highest);

  const double n = static_cast<double>(n_);
  for (int side = 0; side < 2; ++side) {  // 0: the upper end (t I - D), 1: the lower end (D + t I)
    // Per member: the shift t beyond the Ritz value and the margin used; members to (re)try.
    std::vector<double> margin(static_cast<std::size_t>(batch_)), shift(margin.size());
    std::vector<std::int64_t> pending;
    for (std::int64_t k = 0; k < batch_; ++k) {
      const auto i = static_cast<std::size_t>(k);
      if (!active[i]) continue;
      if (!std::isfinite(lowest[i]) || !std::isfinite(highest[i]) || !std::isfinite(d_norm_inf[i])) {
        out.failure[i] = "Lanczos gave no finite estimate of the extreme eigenvalues";
        continue;
      }
      // An absolute floor: D = 0 still needs a positive shift for the factorisation to succeed.
      margin[i] = std::max(kFirstMargin * std::max(std::abs(lowest[i]), std::abs(highest[i])), 0x1p-1000);
      pending.push_back(k);
    }
    for (int attempt = 0; attempt < kMaxAttempts && !pending.empty(); ++attempt) {
      std::vector<std::int64_t> failed;
      // Every member in one batched call on the first attempt; the few retries one by one.
      const bool whole_batch = attempt == 0 && static_cast<std::int64_t>(pending.size()) == batch_;
      std::vector<std::int64_t> groups = whole_batch ? std::vector<std::int64_t>{-1} : pending;
      for (std::int64_t g : groups) {
        std::vector<double> t;
        for (std::int64_t k : pending) {
          if (!whole_batch && k != g) continue;
          const auto i = static_cast<std::size_t>(k);
          shift[i] = side == 0 ? highest[i] + margin[i] : -lowest[i] + margin[i];
          t.push_back(shift[i]);
        }
        const Mat dm = whole_batch ? d : member_view(d, g);
        Mat cm = whole_batch ? c_ : member_view(c_, g);
        const double sign = side == 0 ? -1.0 : 1.0;
        be_.axpby_identity({&sign, 1}, &dm, {}, nullptr, t, cm);  // C = t I -/+ D, off-diagonal exact
        be_.cholesky_completes(cm, kSuccessSlot);
        out.factorizations += static_cast<int>(cm.batch);
        const std::vector<double> ok = be_.fetch_scalars().at(kSuccessSlot);
        std::size_t slot_index = 0;
        for (std::int64_t k : pending) {
          if (!whole_batch && k != g) continue;
          const auto i = static_cast<std::size_t>(k);
          if (ok.at(slot_index++) != 1.0) {
            failed.push_back(k);
            continue;
          }
          // C's diagonal is fl(t -/+ d_ii): |c_ii| <= (t + ||D||_inf)(1 + u) and its rounding is at most
          // u |c_ii|; tr(C) <= n max c_ii. Completed Cholesky: lambda_min(C) >= -rho.
          const double c_max = up((shift[i] + d_norm_inf[i]) * (1 + 2 * kUnitRoundoff));
          const double rho = cholesky_backward_error(n_, up(n * c_max), c_max);
          const double bound = up(up(shift[i] + rho) + up(kUnitRoundoff * c_max));
          if (side == 0)
            out.upper[i] = bound;
          else
            out.lower[i] = -bound;
        }
      }
      for (std::int64_t k : failed) margin[static_cast<std::size_t>(k)] *= kMarginGrowth;
      pending = failed;
    }
    for (std::int64_t k : pending)
      out.failure[static_cast<std::size_t>(k)] =
          std::string("Cholesky of ") + (side == 0 ? "t I - D" : "D + t I") + " failed " +
          std::to_string(kMaxAttempts) + " times (last margin " + format_number(margin[static_cast<std::size_t>(k)]) +
          " beyond the Lanczos estimate)";
  }
  for (std::int64_t k = 0; k < batch_; ++k) {
    const auto i = static_cast<std::size_t>(k);
    if (!out.failure[i].empty()) {
      out.upper[i] = std::numeric_limits<double>::infinity();
      out.lower[i] = -std::numeric_limits<double>::infinity();
    }
  }
  return out;
}

}  // namespace pe::detail::verify
