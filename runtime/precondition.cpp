#include "precondition.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace pe::detail {

namespace {

// Slots used by preconditioning (fetched before anything else reuses them).
enum Slot { kInfNorm = 0, kFrobenius = 1, kGershLo = 2, kGershHi = 3, kMaxDiag = 4 };

// How far an unconfirmed lambda_min estimate is trusted: power iteration approaches lambda_min from
// above, and only resolves eigenvalues down to ~1/iterations, so the estimate is divided by this.
constexpr double kEstimateSafety = 0.01;

std::vector<double> diagonal_scaling(Precond mode, const std::vector<double>& host_a, std::int64_t n,
                                     std::int64_t k, double ridge) {
  auto a = [&](std::int64_t i, std::int64_t j) {
    return host_a[static_cast<std::size_t>(k * n * n + i + j * n)] + (i == j ? ridge : 0.0);
  };
  std::vector<double> d(static_cast<std::size_t>(n), 1.0);
  switch (mode) {
    case Precond::jacobi:
      for (std::int64_t i = 0; i < n; ++i) d[static_cast<std::size_t>(i)] = 1 / std::sqrt(a(i, i));
      break;
    case Precond::aol:
      for (std::int64_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::int64_t j = 0; j < n; ++j) s += std::abs(a(i, j));
        d[static_cast<std::size_t>(i)] = 1 / std::sqrt(s);
      }
      break;
    case Precond::ruiz:
      // Symmetric Ruiz equilibration: d_i <- d_i / sqrt(max_j |d_i a_ij d_j|), a few sweeps.
      for (int sweep = 0; sweep < 8; ++sweep) {
        std::vector<double> row_max(static_cast<std::size_t>(n), 0.0);
        for (std::int64_t j = 0; j < n; ++j)
          for (std::int64_t i = 0; i < n; ++i)
            row_max[static_cast<std::size_t>(i)] =
                std::max(row_max[static_cast<std::size_t>(i)],
                         std::abs(d[static_cast<std::size_t>(i)] * a(i, j) * d[static_cast<std::size_t>(j)]));
        for (std::int64_t i = 0; i < n; ++i) d[static_cast<std::size_t>(i)] /= std::sqrt(row_max[static_cast<std::size_t>(i)]);
      }
      break;
    default:
      break;
  }
  return d;
}

}  // namespace

void check_precond_mode(Precond mode, int p) {
  const bool diagonal = mode == Precond::jacobi || mode == Precond::ruiz || mode == Precond::aol;
  if (diagonal && p != 1)
    throw Error(std::string("precond mode '") + to_string(mode) + "' is a diagonal scaling S = D A D, which is exact " +
                "only for p = 1 (A^{-1} = D S^{-1} D); with p = " + std::to_string(p) +
                " it would change the result. Use precond none or frobenius");
}

std::vector<double> estimate_lambda_min(Backend& backend, const Mat& a_normalized, int iterations) {
  const std::int64_t n = a_normalized.rows, batch = a_normalized.batch;
  Mat v = backend.allocate(n, 1, batch), w = backend.allocate(n, 1, batch);
  // A fixed, non-special start vector (deterministic results; not orthogonal to any eigenvector in practice).
  std::vector<double> start(static_cast<std::size_t>(n * batch));
  for (std::size_t i = 0; i < start.size(); ++i) start[i] = 1.0 + 0.5 * std::sin(0.7 * static_cast<double>(i) + 0.3);
  backend.upload(HostMat{start.data(), DType::f64, n, 1, n, batch, n, Layout::col_major}, v);
  std::vector<double> mu(static_cast<std::size_t>(batch), 0.0), one(1, 1.0), minus_one(1, -1.0), zero(1, 0.0);
  backend.frobenius_norm(v, 0);
  std::vector<double> norm = backend.fetch_scalars()[0];
  for (auto& x : norm) x = 1 / x;
  backend.scale(norm, v);
  for (int it = 0; it < iterations; ++it) {
    backend.gemm(Op::N, Op::N, 1.0, a_normalized, v, 0.0, w);        // w = A_n v
    backend.axpby_identity(one, &v, minus_one, &w, zero, w);          // w = (I - A_n) v
    backend.frobenius_norm(w, 0);
    const std::vector<double> wn = backend.fetch_scalars()[0];
    std::vector<double> inv(wn.size());
    for (std::size_t k = 0; k < wn.size(); ++k) {
      mu[k] = wn[k];
      inv[k] = wn[k] > 0 ? 1 / wn[k] : 0.0;
    }
    if (*std::max_element(wn.begin(), wn.end()) == 0) break;
    backend.copy(w, v);
    backend.scale(inv, v);
  }
  std::vector<double> lambda(mu.size());
  for (std::size_t k = 0; k < mu.size(); ++k) lambda[k] = 1 - mu[k];
  return lambda;
}

Preconditioned precondition_spd(Backend& backend, Mat& a, const std::vector<double>& host_a,
                                const PrecondSettings& s) {
  check_precond_mode(s.mode, s.p);
  const std::int64_t n = a.rows, batch = a.batch;
  const auto nb = static_cast<std::size_t>(batch);
  Preconditioned out;
  out.shift.assign(nb, 0.0);
  out.l0.assign(nb, 0.0);
  out.l0_rigorous.assign(nb, false);
  if (s.ridge != 0) backend.add_diagonal(std::vector<double>{s.ridge}, a);

  out.diagonal = s.mode == Precond::jacobi || s.mode == Precond::ruiz || s.mode == Precond::aol;
  if (out.diagonal) {
    std::vector<double> d(static_cast<std::size_t>(n * batch));
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::vector<double> dk = diagonal_scaling(s.mode, host_a, n, k, s.ridge);
      std::copy(dk.begin(), dk.end(), d.begin() + k * n);
    }
    for (double x : d)
      if (!std::isfinite(x) || x <= 0)
        throw Error(std::string("precond ") + to_string(s.mode) + ": the scaling is not finite and positive (A has a "
                    "non-positive diagonal or row sum), so A is not positive definite");
    out.d = backend.allocate(n, 1, batch);
    backend.upload(HostMat{d.data(), DType::f64, n, 1, n, batch, n, Layout::col_major}, out.d);
    backend.diag_scale(&out.d, a, &out.d);
  }

  backend.max_abs_row_sum(a, kInfNorm);
  backend.frobenius_norm(a, kFrobenius);
  backend.gershgorin(a, kGershLo, kGershHi);
  auto slots = backend.fetch_scalars();
  out.scale.resize(nb);
  for (std::size_t k = 0; k < nb; ++k) {
    double u = slots[kInfNorm][k];
    if (s.mode == Precond::frobenius) u = std::min(u, slots[kFrobenius][k]);
    if (s.mode == Precond::aol) u = std::min(u, 1.0);  // ||D A D||_2 <= 1 for the AOL scaling
    if (!(u > 0) || !std::isfinite(u))
      throw Error("A (batch member " + std::to_string(k) + ") has norm " + std::to_string(u) +
                  "; a positive definite matrix needs a positive, finite norm");
    out.scale[k] = u;
  }
  std::vector<double> inv_scale(nb);
  for (std::size_t k = 0; k < nb; ++k) inv_scale[k] = 1 / out.scale[k];
  backend.scale(inv_scale, a);

  // Lower bound: Gershgorin (rigorous), else caller hints, else an estimate.
  std::vector<std::string> source(nb);
  std::vector<double> max_diag;
  std::vector<double> estimate;
  for (std::size_t k = 0; k < nb; ++k) {
    const double g = slots[kGershLo][k] / out.scale[k];
    if (g > 0) {
      out.l0[k] = g;
      out.l0_rigorous[k] = true;
      source[k] = "gershgorin";
    } else if (s.lambda_min_hint > 0 && !out.diagonal) {
      out.l0[k] = (s.lambda_min_hint + s.ridge) / out.scale[k];
      source[k] = "lambda_min_hint";
    } else if (s.kappa_hint > 1) {
      // lambda_max(A_n) >= max_i (A_n)_ii, so max diagonal / kappa bounds lambda_min from below if kappa holds.
      if (max_diag.empty()) {
        std::vector<double> diag(static_cast<std::size_t>(n * batch));
        Mat dm = backend.allocate(n, 1, batch);
        backend.extract_diagonal(a, dm);
        backend.download(dm, HostMat{diag.data(), DType::f64, n, 1, n, batch, n, Layout::col_major});
        max_diag.assign(nb, 0.0);
        for (std::size_t kk = 0; kk < nb; ++kk)
          max_diag[kk] = *std::max_element(diag.begin() + static_cast<std::ptrdiff_t>(kk * n),
                                           diag.begin() + static_cast<std::ptrdiff_t>((kk + 1) * n));
      }
      out.l0[k] = max_diag[k] / s.kappa_hint;
      source[k] = "kappa_hint";
    } else {
      if (estimate.empty()) estimate = estimate_lambda_min(backend, a, 30);
      out.l0[k] = estimate[k] * kEstimateSafety;
      source[k] = "estimate";
    }
    out.l0[k] = std::clamp(out.l0[k], s.l0_floor, 1.0);
  }
  const auto worst = static_cast<std::size_t>(std::min_element(out.l0.begin(), out.l0.end()) - out.l0.begin());
  out.l0_source = source[worst];
  if (out.l0_source == "estimate")
    out.notes.push_back("l0 is an estimate (power iteration on I - A_n, times " + std::to_string(kEstimateSafety) +
                        "), not a bound");

  // Floor by a diagonal shift: (A_n + delta I) / (1 + delta) has lower bound l_target.
  if (s.l_target > 0) {
    if (s.l_target >= 1) throw Error("l_target = " + std::to_string(s.l_target) + " must be in [0, 1)");
    std::vector<double> delta(nb, 0.0), inv(nb, 1.0);
    bool any = false;
    for (std::size_t k = 0; k < nb; ++k)
      if (out.l0[k] < s.l_target) {
        delta[k] = (s.l_target - out.l0[k]) / (1 - s.l_target);
        inv[k] = 1 / (1 + delta[k]);
        out.shift[k] = delta[k] * out.scale[k];
        out.scale[k] *= 1 + delta[k];
        out.l0[k] = s.l_target;
        any = true;
      }
    if (any) {
      backend.add_diagonal(delta, a);
      backend.scale(inv, a);
      out.notes.push_back("l_target shifted the diagonal: the result is the root of A + shift I");
    }
  }
  return out;
}

}  // namespace pe::detail
