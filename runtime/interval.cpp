#include "interval.hpp"

#include <algorithm>

namespace pe::detail {

int steps_to_target(const OwnedBucketTable& table, DType storage, Interval start, double target, int limit,
                    double* predicted_bound) {
  Interval cur = start;
  double best = interval_bound(cur);
  int best_steps = std::min(1, limit);
  for (int r = 1; r <= limit; ++r) {
    const StepChoice c = choose_step(table, storage, cur);
    const double bound = interval_bound(c.image);
    if (target > 0 && bound <= target) {
      best = bound;
      best_steps = r;
      break;
    }
    // The model is monotone (a narrower interval is never worse), so a step that does not improve the
    // bound has reached the tables' floor for this storage: more steps would repeat it.
    if (r > 1 && !(bound < best)) break;
    best = bound;
    best_steps = r;
    cur = normalized(c.image);
  }
  if (predicted_bound) *predicted_bound = best;
  return best_steps;
}

namespace {
int steps_gemms(int p, int degree, int steps_done, int r, StepOutput output) {
  int sum = 0;
  for (int i = 0; i < r; ++i) sum += step_gemms(p, StepDesc{degree, steps_done + i == 0, i == r - 1, output});
  return sum;
}
}  // namespace

int materialize_gemms(int p, int degree, int steps_done, int r) {
  return steps_gemms(p, degree, steps_done, r, StepOutput::materialize);
}

int direct_gemms(int p, int degree, int r) { return steps_gemms(p, degree, 0, r, StepOutput::direct); }

}  // namespace pe::detail
