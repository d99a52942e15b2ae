#include "drift.hpp"

#include <algorithm>
#include <cmath>

namespace pe::detail {

DriftModel drift_model(const ScheduleSet& tables, const StepPlan& plan, int p, DType storage, std::int64_t n) {
  DriftModel m;
  m.n = n;
  for (const PlannedStep& s : plan.steps) {
    const StepChoice c = choose_step(*tables.find(p, s.degree), storage, s.before);
    // sum |c_j| bounds the terms q is summed from; max |q| on the interval (sampled) its value.
    double size = 0, peak = 0;
    for (int j = 0; j <= s.degree; ++j) size += std::abs(c.coeff[j]);
    const double lo = std::max(s.before.lo / s.before.hi, 1e-300);
    for (int i = 0; i <= 32; ++i) {
      const double y = lo * std::pow(1 / lo, i / 32.0);
      double q = 0;
      for (int j = s.degree; j >= 0; --j) q = q * y + c.coeff[j];
      peak = std::max(peak, std::abs(q));
    }
    m.term_sizes.push_back(size * std::pow(peak, p - 1));
  }
  if (!plan.steps.empty())
    m.root_condition = std::pow(plan.steps.front().before.hi / std::max(plan.steps.front().before.lo, 1e-300), 1.0 / p);
  return m;
}

double DriftModel::predicted(int elevated, double u_storage, double u_elevated) const {
  double sum = 0;
  for (std::size_t t = 0; t < term_sizes.size(); ++t) {
    const double u = static_cast<int>(t) < elevated ? u_elevated : u_storage;
    sum += kDriftConstant * u * std::sqrt(static_cast<double>(n)) * (term_sizes[t] + root_condition);
  }
  return sum;
}

int elevated_steps_for(const DriftModel& model, double target, double share, double u_storage, double u_elevated) {
  const int total = static_cast<int>(model.term_sizes.size());
  const double best = model.predicted(total, u_storage, u_elevated);
  // Unreachable by elevating: take the steps that give nearly all of the gain (the first few).
  const double goal = std::max(share * target, 2 * best);
  for (int k = 0; k < total; ++k)
    if (model.predicted(k, u_storage, u_elevated) <= goal) return k;
  return total;
}

}  // namespace pe::detail
