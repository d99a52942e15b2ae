#include "precondition.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "pe/detail/format.hpp"
#include "view_checks.hpp"

namespace pe::detail {

namespace {

// Slots used by preconditioning (fetched before anything else reuses them).
enum Slot { kInfNorm = 0, kFrobenius = 1, kGershLo = 2, kGershHi = 3, kMaxDiag = 4 };

// The spectrum's ends (dense A without Gershgorin or hints): inverse iterations for the lower end's
// estimate and the fraction of it the iteration starts from; power iterations for the upper end's
// estimate and the factor above it that a Cholesky factorisation then proves.
constexpr int kInverseIterations = 8;
constexpr int kPowerIterations = 30;
// (The estimate is from above and typically within a few percent after 8 steps: 0.8 usually holds.)
constexpr double kTrialFraction = 0.8;
constexpr double kUpperMargin = 1.02;

struct LowerBound {
  bool positive_definite = true;
  double bound = 0;
};

// cond(A) >= max_i a_ii / min_i a_ii for symmetric positive definite A (lambda_max >= every diagonal
// entry >= lambda_min). When normalising by `scale` (about lambda_max) takes the smallest diagonal entry
// below the storage's normal range, the normalised matrix cannot hold A's small eigenvalues: they
// underflow, and what is left is no longer A. Refuse it with what would work instead.
void check_normalised_diagonal(const std::vector<double>& diagonal, std::int64_t n, const PrecondSettings& s,
                               const std::vector<double>& scale, const StorageRange& range) {
  for (std::size_t k = 0; k < scale.size(); ++k) {
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double d = diagonal[k * static_cast<std::size_t>(n) + static_cast<std::size_t>(i)] + s.ridge;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    const double normalised = lo / scale[k];
    if (normalised >= range.smallest_normal) continue;
    const double ratio = hi / lo;  // overflows for the widest spans: then say it as a power of ten
    const std::string cond = std::isfinite(ratio) ? format_number(ratio)
                                                  : "10^" + format_number(std::log10(hi) - std::log10(lo));
    std::vector<std::string> remedies;
    if (range.dtype != DType::f64) remedies.push_back("store A in f64");
    if (s.p == 1) remedies.push_back("use precond jacobi (exact for p = 1)");
    remedies.push_back("shift it by a ridge (roots and applies: options.ridge) if A + ridge I will do");
    std::string remedy = remedies.front();
    for (std::size_t i = 1; i < remedies.size(); ++i) remedy += (i + 1 < remedies.size() ? ", " : " or ") + remedies[i];
    throw Error("a (batch member " + std::to_string(k) + "): the diagonal spans [" + format_number(lo) + ", " +
                format_number(hi) + "], so cond(A) >= " + cond + "; normalised by " + format_number(scale[k]) +
                " its smallest entry becomes " + format_number(normalised) + ", below the smallest normal " +
                to_string(range.dtype) + " number " + format_number(range.smallest_normal) +
                ", so A's small eigenvalues would underflow. Expected a spectrum the " + to_string(range.dtype) +
                " storage can hold: " + remedy);
  }
}

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

namespace {

// Slots of the Cholesky bounds (after preconditioning's own slots were fetched).
enum SpectrumSlot { kPowerPrevious = 0, kPowerLast = 1, kFactorised = 2, kInversePrevious = 3, kInverseLast = 4 };

// numerator / denominator per member, 0 where that is not a finite positive number (the iteration
// overflowed or underflowed: the caller then falls back to the weakest claim).
std::vector<double> norm_ratio(const std::vector<double>& numerator, const std::vector<double>& denominator) {
  std::vector<double> r(numerator.size(), 0.0);
  for (std::size_t k = 0; k < r.size(); ++k) {
    const double q = numerator[k] / denominator[k];
    r[k] = std::isfinite(q) && q > 0 ? q : 0.0;
  }
  return r;
}

// An estimate of lambda_max of every normalised member: power iteration on A_n in double. Not normalised
// between steps, so that it costs one fetch: ||A_n||_2 <= 1 and the scale is at most sqrt(n) lambda_max(A)
// (both cheap norms are), so kPowerIterations steps keep the vector within n^(-kPowerIterations/2) of its
// start norm, far inside double's range for any n we can store.
std::vector<double> estimated_lambda_max(Backend& backend, const Mat& a, PrecondWorkspace& ws) {
  Backend& wide = *ws.wide;
  wide.import_from(backend, a, ws.factor);
  wide.copy(ws.start, ws.v);
  Mat *current = &ws.v, *next = &ws.w;
  for (int it = 0; it < kPowerIterations; ++it) {
    wide.gemm(Op::N, Op::N, 1.0, ws.factor, *current, 0.0, *next);
    std::swap(current, next);
  }
  wide.frobenius_norm(*next, kPowerPrevious);
  wide.frobenius_norm(*current, kPowerLast);
  const auto slots = wide.fetch_scalars();
  return norm_ratio(slots[kPowerLast], slots[kPowerPrevious]);
}

// Upper bounds t <= 1 of lambda_max of the members in `wanted` (1 elsewhere, and where no tighter bound is
// proven), each proven by a completed Cholesky factorisation of t I - A_n. Unlike the lower end, the upper
// end must hold: eigenvalues above 1 + eta leave the guards' cover (G3) and can overshoot.
std::vector<double> certified_lambda_max(Backend& backend, const Mat& a, const std::vector<bool>& wanted,
                                         PrecondWorkspace& ws) {
  Backend& wide = *ws.wide;
  const std::int64_t n = a.rows;
  const std::size_t nb = wanted.size();
  // A completed Cholesky factorisation R^T R = M + E has ||E||_2 <= n (n + 1) u ||M||_2 (Demmel), so success
  // on sigma I - A_n (||.|| <= 2) proves lambda_max(A_n) <= sigma + 2 n (n + 1) u.
  const double margin = 2 * static_cast<double>(n) * static_cast<double>(n + 1) * std::numeric_limits<double>::epsilon() / 2;
  const std::vector<double> estimate = estimated_lambda_max(backend, a, ws);
  std::vector<double> bound(nb, 1.0);
  std::vector<bool> pending = wanted;
  for (double f : {kUpperMargin, 1.25}) {
    std::vector<double> sigma(nb, 0.0);
    bool any = false;
    for (std::size_t k = 0; k < nb; ++k) {
      if (pending[k] && !(estimate[k] > 0 && f * estimate[k] + margin < 1)) pending[k] = false;  // nothing to prove
      if (!pending[k]) continue;
      sigma[k] = f * estimate[k];
      any = true;
    }
    if (!any) break;
    // The first round finds A_n still in the factor's buffer (the power iteration only read it).
    if (f != kUpperMargin) wide.import_from(backend, a, ws.factor);
    wide.axpby_identity(std::vector<double>{-1.0}, &ws.factor, {}, nullptr, sigma, ws.factor);  // sigma I - A_n
    wide.cholesky_completes(ws.factor, kFactorised);
    const std::vector<double> ok = wide.fetch_scalars()[kFactorised];
    for (std::size_t k = 0; k < nb; ++k)
      if (pending[k] && ok[k] > 0) {
        bound[k] = sigma[k] + margin;
        pending[k] = false;
      }
  }
  return bound;
}

struct LowerEstimates {
  std::vector<bool> positive_definite;
  std::vector<double> bound;
};

// Estimates of lambda_min of every normalised member (||A_n||_2 <= 1): inverse iteration with a Cholesky
// factor, which also tells whether A_n is numerically positive definite. ||A^{-1} v|| / ||v|| <= 1 / lambda_min,
// so the estimate approaches lambda_min from above; the start is kTrialFraction of it. Not a proof (an
// optimistic start leaves eigenvalues below it, which guard G1 keeps moving up): the verified certificate of
// the returned root is what certifies. Not normalised between steps (one fetch): the vector grows by at most
// lambda_min^-kInverseIterations, within range down to lambda_min ~ 1e-17; below that the estimate may come
// out 0, which the caller raises to the tables' smallest edge, as it would the true value.
LowerEstimates estimated_lambda_min(Backend& backend, const Mat& a, PrecondWorkspace& ws) {
  Backend& wide = *ws.wide;
  wide.import_from(backend, a, ws.factor);
  wide.cholesky(ws.factor, kFactorised);
  wide.copy(ws.start, ws.v);
  Mat *current = &ws.v, *next = &ws.w;
  for (int it = 0; it < kInverseIterations; ++it) {
    wide.copy(*current, *next);
    wide.cholesky_solve(ws.factor, *next);  // (values of a member whose factorisation failed are not read)
    std::swap(current, next);
  }
  wide.frobenius_norm(*next, kInversePrevious);
  wide.frobenius_norm(*current, kInverseLast);
  const auto slots = wide.fetch_scalars();
  LowerEstimates out;
  out.bound = norm_ratio(slots[kInversePrevious], slots[kInverseLast]);
  for (std::size_t k = 0; k < out.bound.size(); ++k) {
    out.positive_definite.push_back(slots[kFactorised][k] > 0);
    out.bound[k] *= kTrialFraction;
  }
  return out;
}

}  // namespace

namespace {

// Floor by a diagonal shift: (A_n + delta I) / (1 + delta) has lower bound l_target.
void apply_l_target(Backend& backend, Mat& a, const PrecondSettings& s, Preconditioned& out) {
  const std::size_t nb = out.l0.size();
  if (s.l_target > 0) {
    if (s.l_target >= 1) throw Error("l_target = " + format_number(s.l_target) + " must be in [0, 1)");
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
}

}  // namespace

PrecondWorkspace allocate_precond_workspace(Backend& backend, std::int64_t n, std::int64_t batch) {
  PrecondWorkspace ws;
  ws.d = backend.allocate(n, 1, batch);
  ws.diag = backend.allocate(n, 1, batch);
  return ws;
}

void ensure_spectrum_workspace(PrecondWorkspace& ws, Backend& wide, std::int64_t n, std::int64_t batch,
                               const Mat* factor) {
  if (ws.wide) return;
  if (wide.storage() != DType::f64)
    throw Error("internal: the Cholesky bounds need an f64 backend, got " + std::string(to_string(wide.storage())));
  ws.wide = &wide;
  ws.factor = factor ? *factor : wide.allocate(n, n, batch);
  ws.v = wide.allocate(n, 1, batch);
  ws.w = wide.allocate(n, 1, batch);
  ws.start = wide.allocate(n, 1, batch);
  // A start with a component along every eigenvector for all but contrived matrices.
  std::vector<double> start(static_cast<std::size_t>(n * batch));
  for (std::size_t i = 0; i < start.size(); ++i)
    start[i] = 1.0 + 0.5 * std::sin(0.7 * static_cast<double>(i % static_cast<std::size_t>(n)) + 0.3);
  wide.upload(HostMat{start.data(), DType::f64, n, 1, n, batch, n, Layout::col_major}, ws.start);
}

Preconditioned precondition_spd(Backend& backend, Mat& a, const std::vector<double>& diagonal,
                                const std::vector<double>& host_a, const PrecondSettings& s, PrecondWorkspace& ws) {
  check_precond_mode(s.mode, s.p);
  const std::int64_t n = a.rows, batch = a.batch;
  const auto nb = static_cast<std::size_t>(batch);
  Preconditioned out;
  out.shift.assign(nb, 0.0);
  out.l0.assign(nb, 0.0);
  out.l0_rigorous.assign(nb, false);
  out.upper_proven.assign(nb, false);
  if (s.ridge != 0) backend.add_diagonal(std::vector<double>{s.ridge}, a);

  out.diagonal = s.mode == Precond::jacobi || s.mode == Precond::ruiz || s.mode == Precond::aol;
  if (out.diagonal) {
    std::vector<double> d(static_cast<std::size_t>(n * batch));
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::vector<double> dk = diagonal_scaling(s.mode, host_a, n, k, s.ridge);
      std::copy(dk.begin(), dk.end(), d.begin() + k * n);
    }
    // The diagonal was checked positive, so a scaling that is not finite and positive comes from a row
    // sum (aol) or row maximum (ruiz) that overflowed double, or from entries that underflowed.
    for (std::size_t i = 0; i < d.size(); ++i)
      if (!std::isfinite(d[i]) || d[i] <= 0)
        throw Error(std::string("precond ") + to_string(s.mode) + ": the scaling of row " +
                    std::to_string(static_cast<std::int64_t>(i) % n) + " (batch member " +
                    std::to_string(static_cast<std::int64_t>(i) / n) + ") is " + format_number(d[i]) +
                    ", expected a finite positive value: the entries of that row are beyond what double can "
                    "sum; rescale a by a power of two or use precond jacobi");
    out.d = ws.d;
    backend.upload(HostMat{d.data(), DType::f64, n, 1, n, batch, n, Layout::col_major}, out.d);
    backend.diag_scale(&out.d, a, &out.d);
  }

  backend.max_abs_row_sum(a, kInfNorm);
  backend.frobenius_norm(a, kFrobenius);
  backend.gershgorin(a, kGershLo, kGershHi);
  auto slots = backend.fetch_scalars();
  out.scale.resize(nb);
  const StorageRange range = storage_range(backend.storage());
  // Outside the range where frobenius_norm is accurate, it is taken again after dividing by ||A||_inf.
  bool frobenius_after_scaling = false;
  for (std::size_t k = 0; k < nb; ++k) {
    double u = slots[kInfNorm][k];
    // The backend multiplies by 1 / u in the storage dtype, so the reciprocal must be finite there.
    if (!(u > 0) || !std::isfinite(u) || !(1 / u <= range.largest))
      throw Error("a (batch member " + std::to_string(k) + "): ||A||_inf = " + format_number(u) + " " +
                  (std::isinf(u) ? "overflows although every entry is finite (its rows sum past the largest double)"
                                 : "is too small: its reciprocal overflows " + std::string(to_string(range.dtype)) + " storage") +
                  "; rescale a by a power of two c (the root of c A is c^{-1/p} times that of A)");
    if (s.mode == Precond::frobenius) {
      if (u < kFrobeniusSafeLo || u > kFrobeniusSafeHi)
        frobenius_after_scaling = true;
      else
        u = std::min(u, slots[kFrobenius][k]);
    }
    if (s.mode == Precond::aol) u = std::min(u, 1.0);  // ||D A D||_2 <= 1 for the AOL scaling
    if (s.lambda_max_hint > 0 && !out.diagonal) u = std::min(u, s.lambda_max_hint + s.ridge);
    out.scale[k] = u;
  }
  std::vector<double> inv_scale(nb);
  for (std::size_t k = 0; k < nb; ++k) inv_scale[k] = 1 / out.scale[k];
  backend.scale(inv_scale, a);
  if (frobenius_after_scaling) {
    backend.frobenius_norm(a, kFrobenius);
    const auto frobenius = backend.fetch_scalars()[kFrobenius];
    for (std::size_t k = 0; k < nb; ++k) {
      const double t = std::min(1.0, frobenius[k]);
      out.scale[k] *= t;
      inv_scale[k] = 1 / t;
    }
    backend.scale(inv_scale, a);
  }

  if (!out.diagonal) check_normalised_diagonal(diagonal, n, s, out.scale, range);

  // Lower bound: Gershgorin (rigorous), else caller hints, else a Cholesky-based estimate. The source is
  // decided once per member, from the Gershgorin bound of the normalised matrix: the same number that
  // becomes l0 (the bound of A itself can be positive where the normalised one underflows to 0).
  enum class Source { gershgorin, lambda_min_hint, kappa_hint, cholesky };
  std::vector<double> gershgorin_lo(nb);
  std::vector<Source> source_of(nb);
  for (std::size_t k = 0; k < nb; ++k) {
    gershgorin_lo[k] = slots[kGershLo][k] / out.scale[k];
    source_of[k] = gershgorin_lo[k] > 0                        ? Source::gershgorin
                   : s.lambda_min_hint > 0 && !out.diagonal ? Source::lambda_min_hint
                   : s.kappa_hint > 1                        ? Source::kappa_hint
                                                             : Source::cholesky;
  }
  std::vector<bool> needs_cholesky(nb);
  for (std::size_t k = 0; k < nb; ++k) needs_cholesky[k] = source_of[k] == Source::cholesky;
  const bool any_cholesky = std::find(needs_cholesky.begin(), needs_cholesky.end(), true) != needs_cholesky.end();
  LowerEstimates lower;
  if (any_cholesky) {
    if (!ws.wide) throw Error("internal: preconditioning needs the Cholesky bounds but the plan made no workspace for them");
    // The cheap norms overestimate lambda_max (||A||_F by up to sqrt(n)), which costs steps. Where we pay
    // for Cholesky anyway, tighten the upper end to a proven bound of lambda_max as well.
    std::vector<bool> tighten_wanted = needs_cholesky;
    if (s.lambda_max_hint > 0) tighten_wanted.assign(nb, false);
    const std::vector<double> tighten = certified_lambda_max(backend, a, tighten_wanted, ws);
    if (std::any_of(tighten.begin(), tighten.end(), [](double t) { return t < 1; })) {
      std::vector<double> inv(nb);
      for (std::size_t k = 0; k < nb; ++k) {
        out.scale[k] *= tighten[k];
        inv[k] = 1 / tighten[k];
        out.upper_proven[k] = tighten[k] < 1;
      }
      backend.scale(inv, a);
    }
    lower = estimated_lambda_min(backend, a, ws);
  }
  std::vector<std::string> source(nb);
  std::vector<double> max_diag;
  bool below_floor = false;
  for (std::size_t k = 0; k < nb; ++k) {
    if (source_of[k] == Source::gershgorin) {
      out.l0[k] = gershgorin_lo[k];  // (the tightening above scaled only members that need Cholesky)
      out.l0_rigorous[k] = true;
      source[k] = "gershgorin";
    } else if (source_of[k] == Source::lambda_min_hint) {
      out.l0[k] = (s.lambda_min_hint + s.ridge) / out.scale[k];
      source[k] = "lambda_min_hint";
    } else if (source_of[k] == Source::kappa_hint) {
      // lambda_max(A_n) >= max_i (A_n)_ii, so max diagonal / kappa bounds lambda_min from below if kappa holds.
      if (max_diag.empty()) {
        std::vector<double> diag(static_cast<std::size_t>(n * batch));
        backend.extract_diagonal(a, ws.diag);
        backend.download(ws.diag, HostMat{diag.data(), DType::f64, n, 1, n, batch, n, Layout::col_major});
        max_diag.assign(nb, 0.0);
        for (std::size_t kk = 0; kk < nb; ++kk)
          max_diag[kk] = *std::max_element(diag.begin() + static_cast<std::ptrdiff_t>(kk * n),
                                           diag.begin() + static_cast<std::ptrdiff_t>((kk + 1) * n));
      }
      out.l0[k] = max_diag[k] / s.kappa_hint;
      source[k] = "kappa_hint";
    } else {
      // A dense matrix usually defeats Gershgorin: estimate by Cholesky on the stored A_n.
      if (!lower.positive_definite[k]) {
        out.not_positive_definite = true;
        out.failure = "the Cholesky factorisation of the normalised matrix (batch member " + std::to_string(k) +
                      ") failed, so A is not numerically positive definite";
        return out;
      }
      out.l0[k] = lower.bound[k];
      out.l0_rigorous[k] = false;
      source[k] = "cholesky_estimate";
    }
    if (out.l0[k] < s.l0_floor) {
      // Below the tables' smallest edge: start from that edge (guard G1 keeps such eigenvalues moving up)
      // but do not claim the interval is certified.
      out.l0[k] = s.l0_floor;
      out.l0_rigorous[k] = false;
      below_floor = true;
    }
    out.l0[k] = std::min(out.l0[k], 1.0);
  }
  if (below_floor)
    out.notes.push_back("the lower bound of A_n is below the tables' smallest bucket edge; the iteration starts "
                        "from that edge, so the interval model does not cover the smallest eigenvalues");
  const auto worst = static_cast<std::size_t>(std::min_element(out.l0.begin(), out.l0.end()) - out.l0.begin());
  out.l0_source = source[worst];

  apply_l_target(backend, a, s, out);
  return out;
}

Preconditioned precondition_from_hints(Backend& backend, Mat& a, const PrecondSettings& s) {
  check_precond_mode(s.mode, s.p);
  if (s.mode != Precond::none && s.mode != Precond::frobenius)
    throw Error(std::string("precond mode '") + to_string(s.mode) + "' computes its scaling from A on the host; an "
                "enqueued run takes its scale from the hints: use precond none or frobenius");
  if (!(s.lambda_max_hint > 0) || !(s.lambda_min_hint > 0))
    throw Error("internal: precondition_from_hints without both hints");
  const std::size_t nb = static_cast<std::size_t>(a.batch);
  Preconditioned out;
  out.shift.assign(nb, 0.0);
  out.scale.assign(nb, s.lambda_max_hint + s.ridge);
  out.l0.assign(nb, std::min(1.0, (s.lambda_min_hint + s.ridge) / (s.lambda_max_hint + s.ridge)));
  out.l0_rigorous.assign(nb, false);
  out.upper_proven.assign(nb, false);
  out.l0_source = "lambda_min_hint";
  // Where the hints hold, every diagonal entry of A_n is at least l0; below the storage's smallest normal
  // the small eigenvalues could underflow, which precondition_spd refuses from the diagonal itself.
  const StorageRange range = storage_range(backend.storage());
  if (out.l0[0] < range.smallest_normal)
    throw Error("options.lambda_min_hint / lambda_max_hint = " + format_number(out.l0[0]) + " is below the smallest normal " +
                to_string(range.dtype) + " number " + format_number(range.smallest_normal) +
                ": A's small eigenvalues would underflow in the normalised matrix; store A in a wider dtype");
  if (out.l0[0] < s.l0_floor) {
    out.l0.assign(nb, s.l0_floor);
    out.notes.push_back("the lower bound of A_n is below the tables' smallest bucket edge; the iteration starts "
                        "from that edge, so the interval model does not cover the smallest eigenvalues");
  }
  if (s.ridge != 0) backend.add_diagonal(std::vector<double>{s.ridge}, a);
  backend.scale(std::vector<double>{1 / out.scale[0]}, a);
  apply_l_target(backend, a, s, out);
  return out;
}

}  // namespace pe::detail
