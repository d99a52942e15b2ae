#include "step_plan.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "interval.hpp"
#include "pe/detail/format.hpp"

namespace pe::detail {

namespace {

constexpr int kStepLimit = 60;

struct Candidate {
  std::vector<int> degrees;
  double bound = 1;
  int gemms = 0;
};

// The model bound after running `degrees` from [l0, 1].
double simulate(const ScheduleSet& tables, int p, DType storage, double l0, const std::vector<int>& degrees) {
  Interval cur{l0, 1.0};
  double bound = interval_bound(cur);
  for (int d : degrees) {
    const StepChoice c = choose_step(*tables.find(p, d), storage, cur);
    bound = interval_bound(c.image);
    cur = normalized(c.image);
  }
  return bound;
}

}  // namespace

int plan_gemms(int p, const std::vector<int>& degrees, StepOutput output) {
  int sum = 0;
  for (std::size_t t = 0; t < degrees.size(); ++t)
    sum += step_gemms(p, StepDesc{degrees[t], t == 0, t + 1 == degrees.size(), output});
  return sum;
}

DriftModel drift_model(const ScheduleSet& tables, int p, DType storage, double l0, const std::vector<int>& degrees,
                       std::int64_t n) {
  DriftModel m;
  m.n = n;
  m.root_condition = std::pow(1 / std::clamp(l0, 1e-300, 1.0), 1.0 / p);
  Interval cur{std::clamp(l0, 1e-300, 1.0), 1.0};
  for (int d : degrees) {
    m.lower_ends.push_back(cur.lo);
    cur = normalized(choose_step(*tables.find(p, d), storage, cur).image);
  }
  return m;
}

double DriftModel::predicted(int elevated, double u_storage, double u_elevated) const {
  double sum = 0;
  for (std::size_t t = 0; t < lower_ends.size(); ++t) {
    const double u = static_cast<int>(t) < elevated ? u_elevated : u_storage;
    sum += kDriftConstant * u * std::sqrt(static_cast<double>(n)) * (1 / lower_ends[t] + root_condition);
  }
  return sum;
}

int elevated_steps_for(const DriftModel& model, double target, double share, double u_storage, double u_elevated) {
  const int total = static_cast<int>(model.lower_ends.size());
  const double best = model.predicted(total, u_storage, u_elevated);
  // Unreachable by elevating: take the steps that give nearly all of the gain (the first few).
  const double goal = std::max(share * target, 2 * best);
  for (int k = 0; k < total; ++k)
    if (model.predicted(k, u_storage, u_elevated) <= goal) return k;
  return total;
}

StepPlan plan_steps(const ScheduleSet& tables, const StepPlanRequest& r) {
  std::vector<int> degrees;
  for (const auto& t : tables.tables)
    if (t.p == r.p && (r.degree == 0 || t.degree == r.degree)) degrees.push_back(t.degree);
  std::sort(degrees.begin(), degrees.end());
  if (degrees.empty()) {
    if (r.degree != 0 && (tables.find(r.p, 1) || tables.find(r.p, 2)))
      throw Error("the schedule tables (" + tables.origin + ") have no bucket table for p = " + std::to_string(r.p) +
                  ", degree " + std::to_string(r.degree));
    throw Error("the schedule tables (" + tables.origin + ") have no bucket table for p = " + std::to_string(r.p));
  }
  const int max_gemms = r.max_gemms > 0 ? r.max_gemms : INT_MAX;
  const int max_steps = std::min(r.max_steps > 0 ? r.max_steps : kStepLimit, kStepLimit);
  const double l0 = std::clamp(r.l0, 1e-300, 1.0);

  // Candidates: d repeated, optionally ending with a step of another degree (a cheaper last step that
  // still reaches the target, or a stronger one that lowers the bound within the budget). The model is
  // monotone (a narrower interval is never worse), so for each main degree the prefixes are the only
  // sequences worth trying, and stopping where the bound stops improving finds the tables' floor.
  std::vector<Candidate> candidates;
  bool at_floor = false;
  for (int d : degrees) {
    Interval cur{l0, 1.0};
    double best = interval_bound(cur);
    std::vector<int> prefix;
    for (int steps = 1; steps <= max_steps; ++steps) {
      for (int last : degrees) {
        std::vector<int> seq = prefix;
        seq.push_back(last);
        const int gemms = plan_gemms(r.p, seq, r.output);
        if (gemms > max_gemms) continue;
        candidates.push_back({seq, simulate(tables, r.p, r.storage, l0, seq), gemms});
      }
      const StepChoice c = choose_step(*tables.find(r.p, d), r.storage, cur);
      const double bound = interval_bound(c.image);
      if (r.target > 0 && bound <= r.target) break;
      if (steps > 1 && !(bound < best)) {
        at_floor = true;
        break;
      }
      best = bound;
      cur = normalized(c.image);
      prefix.push_back(d);
      if (plan_gemms(r.p, prefix, r.output) > max_gemms) break;
    }
  }
  if (candidates.empty())
    throw Error("the budget (max_gemms = " + std::to_string(r.max_gemms) + ", max_steps = " + std::to_string(r.max_steps) +
                ") does not allow a single step for p = " + std::to_string(r.p) + " (the cheapest step needs " +
                std::to_string(plan_gemms(r.p, {degrees.front()}, r.output)) + " GEMM(s))");
  auto key = [&](const Candidate& c) {
    const bool reached = r.target > 0 && c.bound <= r.target;
    // Reached: fewest GEMMs, then the better bound; not reached: the best bound, then the fewest GEMMs.
    return reached ? std::make_tuple(0, static_cast<double>(c.gemms), c.bound)
                   : std::make_tuple(1, c.bound, static_cast<double>(c.gemms));
  };
  const Candidate& best = *std::min_element(candidates.begin(), candidates.end(),
                                            [&](const Candidate& a, const Candidate& b) { return key(a) < key(b); });
  StepPlan plan;
  plan.degrees = best.degrees;
  plan.model_bound = best.bound;
  plan.gemms = best.gemms;
  plan.reaches_target = r.target > 0 && best.bound <= r.target;
  plan.at_floor = !plan.reaches_target && r.target > 0 && at_floor;
  return plan;
}

}  // namespace pe::detail
