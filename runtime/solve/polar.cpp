#include "polar.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "coupled.hpp"
#include "interval.hpp"
#include "lanczos.hpp"
#include "pe/detail/format.hpp"

namespace pe::detail::solve {

namespace {

enum Slot { kNonfinite = 0, kTrace = 1, kGershLo = 2, kGershHi = 3 };

// As in the root iteration: rounding moves the trace proxy by far less than this, divergence by O(1).
constexpr double kCheckSlack = 0.05;
constexpr int kStepLimit = 60;
// The polar start without a certificate: Lanczos steps on the normalised X^T X and the factor its
// smallest Ritz value is trusted to (it approaches lambda_min from above).
constexpr int kLanczosSteps = 40;
constexpr double kRitzSafety = 0.01;

struct Plan {
  const OwnedBucketTable* table = nullptr;
  int steps = 0;
  int gemms = 0;
  double bound = 1;
};

// GEMMs of a step: Y = X^T X, Y^2 (degree 2), X q(Y).
int step_gemms(int degree) { return degree == 2 ? 3 : 2; }

}  // namespace

PolarResult polar_factor(Backend& be, const Mat& a, const ScheduleSet& schedules, const PolarSettings& s, Mat& u) {
  const std::int64_t n = a.rows;
  const DType storage = be.storage();
  PolarResult result;
  Mat y = be.allocate(n, n, 1), q = be.allocate(n, n, 1), u_alt = be.allocate(n, n, 1);
  be.copy(a, u);
  be.max_abs_row_sum(a, 0);
  be.frobenius_norm(a, 1);
  const auto norms = be.fetch_scalars();
  const double inf = norms[0][0];
  if (!(inf > 0) || !std::isfinite(inf) || !std::isfinite(1 / inf)) {
    result.reason = "||A||_inf = " + format_number(inf);
    return result;
  }
  // Near the ends of the double range u^T u (and ||A||_F itself) would underflow or overflow: there u
  // starts as A / ||A||_inf, whose entries are at most 1.
  double fro = norms[1][0];
  if (inf < kFrobeniusSafeLo || inf > kFrobeniusSafeHi) {
    be.scale(std::vector<double>{1 / inf}, u);
    be.frobenius_norm(u, 1);
    fro = be.fetch_scalars()[1][0];
  }
  // U_true = x_scale * u throughout; sigma(U_true)^2 are the eigenvalues of x_scale^2 u^T u.
  double x_scale = 1 / fro;
  Interval iv{0, 1};
  const OwnedBucketTable* table = nullptr;
  StepBuffers buffers;
  auto budget_spent = [&] {
    return "the GEMM budget (" + std::to_string(s.max_gemms) + ") ran out after " + std::to_string(result.steps) +
           " polar steps, tracked bound " + format_number(interval_bound(iv));
  };

  for (int t = 0;; ++t) {
    // Y = u^T u and the cheap checks (one fetch): non-finite entries, trace, Gershgorin enclosure.
    if (result.gemms + 1 > s.max_gemms) {
      result.reason = budget_spent();
      return result;
    }
    be.gemm(Op::T, Op::N, 1.0, u, u, 0.0, y);
    ++result.gemms;
    be.symmetrize(y);
    be.count_nonfinite(y, kNonfinite);
    be.trace(y, kTrace);
    be.gershgorin(y, kGershLo, kGershHi);
    const auto slots = be.fetch_scalars();
    const double s2 = x_scale * x_scale;
    const double mean = slots[kTrace][0] * s2 / static_cast<double>(n);
    const Interval rig{slots[kGershLo][0] * s2, slots[kGershHi][0] * s2};
    if (slots[kNonfinite][0] > 0 || !std::isfinite(mean)) {
      result.reason = "non-finite values in X^T X after " + std::to_string(result.steps) + " polar steps";
      return result;
    }
    if (t == 0) {
      // sigma_max^2 <= ||A||_F^2 gives hi = 1; Gershgorin may give a tighter upper end.
      const double hi = std::min(1.0, rig.hi);
      x_scale /= std::sqrt(hi);
      if (rig.lo > 0) {
        iv = {rig.lo / hi, 1.0};
        result.certified = true;
        result.l0_source = "gershgorin";
      } else if (s.kappa_hint > 1) {
        // sigma_max^2 >= mean eigenvalue, so sigma_min^2 = sigma_max^2 / kappa^2 >= mean / kappa^2.
        iv = {mean / hi / (s.kappa_hint * s.kappa_hint), 1.0};
        result.l0_source = "kappa_hint";
      } else if (!s.estimate_start) {
        iv = {0, 1.0};  // clamped to the table's smallest edge below
        result.l0_source = "table_floor";
      } else {
        // Lanczos' smallest Ritz value bounds lambda_min from above, often within a few decades for a
        // spread spectrum; a start above the truth only leaves U less accurate (cond(H) grows, the SPD
        // iteration on H certifies its own bound), a start far below costs polar steps.
        be.scale(std::vector<double>{s2 / hi}, y);
        const double ritz = smallest_ritz_value(be, y, kLanczosSteps, 0.0);
        be.scale(std::vector<double>{hi / s2}, y);
        iv = {std::max(0.0, ritz) * kRitzSafety, 1.0};
        result.l0_source = "lanczos_estimate";
      }
      // Degree: the cheaper plan that reaches the target within the budget (else the better bound).
      Plan best;
      for (int degree : {1, 2}) {
        const OwnedBucketTable* tb = schedules.find(2, degree);
        if (!tb) continue;
        Interval start = iv;
        start.lo = std::max(start.lo, tb->entries.front().l_edge);
        double bound = 1;
        int r = steps_to_target(*tb, storage, start, s.target, kStepLimit, &bound);
        while (r > 0 && 1 + r * step_gemms(degree) - 1 > s.max_gemms) --r;
        if (r > 0) steps_to_target(*tb, storage, start, 0.0, r, &bound);
        const Plan p{tb, r, r * step_gemms(degree), bound};
        auto key = [&](const Plan& x) {
          const bool reached = x.table && x.bound <= s.target;
          return std::make_tuple(!reached, reached ? double(x.gemms) : x.bound);
        };
        if (!best.table || key(p) < key(best)) best = p;
      }
      if (!best.table) throw Error("the schedule tables have no p = 2 bucket table, which the polar iteration uses");
      table = best.table;
      result.degree = table->degree;
      iv.lo = std::clamp(iv.lo, table->entries.front().l_edge, 1.0);
      buffers = allocate_step_buffers(be, n, 1, 2, table->degree);
    } else {
      const std::string where = " after polar step " + std::to_string(t - 1);
      if (mean > iv.hi + kCheckSlack || (result.certified && mean < iv.lo - kCheckSlack) || mean <= 0) {
        result.reason = "the singular values left the tracked interval [" + format_number(iv.lo) + ", " +
                        format_number(iv.hi) + "]" + where + " (mean sigma^2 " + format_number(mean) + ")";
        return result;
      }
      if (rig.lo > 0 && (!result.certified || rig.lo / rig.hi > iv.lo / iv.hi)) {
        x_scale /= std::sqrt(rig.hi);
        iv = normalized(rig);
        result.certified = true;
      }
    }
    if (interval_bound(iv) <= s.target) break;
    const int cost = step_gemms(table->degree) - 1;  // this step's Y^2 and X q(Y); Y is already paid
    if (result.gemms + cost > s.max_gemms) {
      result.reason = budget_spent();
      return result;
    }
    if (result.steps >= kStepLimit) {
      result.reason = "no convergence in " + std::to_string(kStepLimit) + " polar steps";
      return result;
    }
    const StepChoice c = choose_step(*table, storage, iv);
    // q(x_scale^2 Y) with the normalisation folded into the coefficients.
    const double s2n = x_scale * x_scale;
    QCoefficients cq;
    double power = 1;
    for (std::size_t j = 0; j < cq.size(); ++j, power *= s2n) cq[j] = {c.coeff[j] * power};
    result.gemms += form_q(be, y, table->degree, cq, buffers, q);
    be.gemm(Op::N, Op::N, 1.0, u, q, 0.0, u_alt);
    ++result.gemms;
    std::swap(u, u_alt);
    ++result.steps;
    x_scale *= 1 / std::sqrt(c.image.hi);
    iv = normalized(c.image);
    result.intervals.push_back(iv);
    if (interval_bound(iv) <= s.target) break;
  }
  // Centre [lo, 1] on 1: sigma^2 in [2 lo / (1 + lo), 2 / (1 + lo)], bound (1 - lo) / (1 + lo).
  const double centre = 2 / (1 + iv.lo);
  x_scale *= std::sqrt(centre);
  result.bound = (1 - iv.lo) / (1 + iv.lo);
  be.scale(std::vector<double>{x_scale}, u);
  be.count_nonfinite(u, kNonfinite);
  if (be.fetch_scalars()[kNonfinite][0] > 0) {
    result.reason = "non-finite values in the polar factor";
    return result;
  }
  result.converged = true;
  return result;
}

}  // namespace pe::detail::solve
