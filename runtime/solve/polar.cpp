#include "polar.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "plan/step_planner.hpp"
#include "interval.hpp"
#include "lanczos.hpp"
#include "pe/detail/format.hpp"

namespace pe::detail::solve {

namespace {

enum Slot { kInf = 0, kFrobenius = 1, kGershLo = 2, kGershHi = 3, kTrace = 4, kNonfinite = 5 };

// The polar start without a certificate: Lanczos steps on the normalised U^T U and the factor its
// smallest Ritz value is trusted to (it approaches lambda_min from above).
constexpr int kLanczosSteps = 40;
constexpr double kRitzSafety = 0.01;

int max_degree_of(const ScheduleSet& tables) {
  int d = 0;
  for (const auto& t : tables.tables)
    if (t.p == 2) d = std::max(d, t.degree);
  if (d == 0) throw Error("the schedule tables (" + tables.origin + ") have no p = 2 bucket table, which the polar iteration uses");
  return d;
}

}  // namespace

PolarFactor::PolarFactor(Backend& backend, std::int64_t n, const ScheduleSet& tables)
    : be_(backend), tables_(tables), n_(n) {
  u0_ = be_.allocate(n, n, 1);
  lanczos_ = allocate_lanczos_workspace(be_, n);
  driver_ = std::make_unique<Driver>(
      be_, DriverShape{n, 1, 2, max_degree_of(tables), StepOutput::polar, 0, ResidualForm::recomputed_gram});
}

PolarResult PolarFactor::run(const Mat& a, const PolarSettings& s, Mat& u) {
  const std::int64_t n = n_;
  PolarResult result;
  if (s.max_gemms < 1) {
    result.reason = "the GEMM budget (" + std::to_string(s.max_gemms) + ") leaves nothing for the polar iteration";
    return result;
  }
  be_.max_abs_row_sum(a, kInf);
  be_.frobenius_norm(a, kFrobenius);
  const auto norms = be_.fetch_scalars();
  const double inf = norms[kInf][0];
  if (!(inf > 0) || !std::isfinite(inf) || !std::isfinite(1 / inf)) {
    result.reason = "||A||_inf = " + format_number(inf);
    return result;
  }
  // U_0 = A / ||A||_F (sigma_max <= ||A||_F); near the ends of the double range U^T U (and ||A||_F itself)
  // would underflow or overflow, so there A is first divided by ||A||_inf, whose entries are then <= 1.
  be_.copy(a, u0_);
  double fro = norms[kFrobenius][0];
  if (inf < kFrobeniusSafeLo || inf > kFrobeniusSafeHi) {
    be_.scale(std::vector<double>{1 / inf}, u0_);
    be_.frobenius_norm(u0_, kFrobenius);
    fro = be_.fetch_scalars()[kFrobenius][0];
  }
  be_.scale(std::vector<double>{1 / fro}, u0_);
  Mat& y = driver_->y();
  be_.gemm(Op::T, Op::N, 1.0, u0_, u0_, 0.0, y);
  be_.symmetrize(y);
  int gemms = 1;
  be_.count_nonfinite(y, kNonfinite);
  be_.trace(y, kTrace);
  be_.gershgorin(y, kGershLo, kGershHi);
  const auto slots = be_.fetch_scalars();
  if (slots[kNonfinite][0] > 0) {
    result.reason = "non-finite values in A^T A";
    return result;
  }
  // sigma_max^2 <= ||A||_F^2 gives hi = 1; Gershgorin may give a tighter upper end.
  const double hi = std::min(1.0, slots[kGershHi][0]);
  const double mean = slots[kTrace][0] / static_cast<double>(n);
  double l0 = 0;
  if (slots[kGershLo][0] > 0) {
    l0 = slots[kGershLo][0] / hi;
    result.certified = true;
    result.l0_source = "gershgorin";
  } else if (s.kappa_hint > 1) {
    // sigma_max^2 >= mean eigenvalue, so sigma_min^2 = sigma_max^2 / kappa^2 >= mean / kappa^2.
    l0 = mean / hi / (s.kappa_hint * s.kappa_hint);
    result.l0_source = "kappa_hint";
  } else if (!s.estimate_start) {
    l0 = 0;  // clamped to the table's smallest edge below
    result.l0_source = "table_floor";
  } else {
    // Lanczos' smallest Ritz value bounds lambda_min from above, often within a few decades for a spread
    // spectrum; a start above the truth only leaves U less accurate (cond(H) grows, and the SPD iteration on
    // H is judged by its own residual), a start far below costs polar steps.
    be_.scale(std::vector<double>{1 / hi}, y);
    const double ritz = smallest_ritz_value(be_, y, kLanczosSteps, 0.0, lanczos_);
    be_.scale(std::vector<double>{hi}, y);
    l0 = std::max(0.0, ritz) * kRitzSafety;
    result.l0_source = "lanczos_estimate";
  }
  be_.scale(std::vector<double>{1 / std::sqrt(hi)}, u0_);
  be_.scale(std::vector<double>{1 / hi}, y);
  double smallest_edge = 1;
  for (const auto& t : tables_.tables)
    if (t.p == 2) smallest_edge = std::min(smallest_edge, t.entries.front().l_edge);
  l0 = std::clamp(l0, smallest_edge, 1.0);
  if (interval_bound({l0, 1.0}) <= s.target) {
    // Already within the target: U = A scaled and centred.
    be_.copy(u0_, u);
    be_.scale(std::vector<double>{std::sqrt(2 / (1 + l0))}, u);
    result.converged = true;
    result.gemms = gemms;
    result.bound = (1 - l0) / (1 + l0);
    return result;
  }
  PlanRequest req;
  req.p = 2;
  req.storage = be_.storage();
  req.start = {l0, 1.0};
  req.target = s.target;
  req.max_gemms = s.max_gemms == INT_MAX ? 0 : s.max_gemms;
  req.output = StepOutput::polar;
  StepPlan plan;
  try {
    plan = plan_steps(tables_, req);
  } catch (const Error& e) {
    result.reason = e.what();
    return result;
  }
  DriverSettings ds;
  ds.polar_residual_ready = true;
  const DriverResult it = driver_->run(tables_, plan, u0_, {l0}, {1.0}, ds, nullptr);
  result.steps = it.steps;
  result.gemms = gemms + it.gemms;
  for (const PlannedStep& st : plan.steps) result.degree = std::max(result.degree, st.degree);
  result.bound = it.model_eps;
  for (const auto& r : it.records) result.intervals.push_back(r.interval.at(0));
  if (it.diverged) {
    result.reason = it.reason;
    return result;
  }
  if (!plan.reached) {
    result.reason = "the GEMM budget (" + std::to_string(s.max_gemms) + ") ran out after " +
                    std::to_string(result.steps) + " polar steps, tracked bound " + format_number(result.bound);
    return result;
  }
  be_.copy(driver_->x(), u);
  result.converged = true;
  return result;
}

}  // namespace pe::detail::solve
