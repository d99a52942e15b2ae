#include "interval.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "pe/detail/format.hpp"

namespace pe::detail {

StepChoice choose_step(const OwnedBucketTable& table, DType storage, Interval current) {
  if (!(current.lo > 0 && current.lo <= current.hi && current.hi <= 1 + table.eta))
    throw Error("internal: interval [" + format_number(current.lo) + ", " + format_number(current.hi) +
                "] is outside what the tables certify (0 < lo <= hi <= 1 + eta)");
  const auto& entries = table.entries;
  // Largest l_edge <= lo: upper_bound gives the first edge > lo.
  auto it = std::upper_bound(entries.begin(), entries.end(), current.lo,
                             [](double l, const BucketEntry& e) { return l < e.l_edge; });
  const BucketEntry& e = it == entries.begin() ? entries.front() : *std::prev(it);
  StepChoice c;
  c.entry = &e;
  // The coefficients as the backends multiply by them: f32 storage uses the values rounded to float
  // (the *_f32 certificate). Every other storage applies them in double: f64 natively, and bf16/f16
  // because both backends do element arithmetic in double and round once to the storage (the CUDA
  // kernels and the CPU emulation alike), so the *_f64 certificate is the one that applies.
  bool f32 = false;
  switch (storage) {
    case DType::f32: f32 = true; break;
    case DType::f64:
    case DType::bf16:
    case DType::f16: f32 = false; break;
  }
  for (int i = 0; i < 3; ++i) c.coeff[i] = f32 ? static_cast<double>(e.coeff_f32[i]) : e.coeff_f64[i];
  double lo = f32 ? e.image_lo_f32 : e.image_lo_f64;
  double hi = f32 ? e.image_hi_f32 : e.image_hi_f64;
  if (current.lo < e.l_edge) lo = std::min(lo, current.lo);  // G1: below the edge, phi(y) >= y
  if (current.hi > 1) hi *= std::max(1.0, e.overshoot);  // G3: phi([1, 1 + eta]) <= overshoot * image_hi
  c.image = {lo, hi};
  return c;
}

double interval_bound(Interval iv) { return std::max(1 - iv.lo, iv.hi - 1); }

Interval normalized(Interval iv) { return {iv.lo / iv.hi, 1.0}; }

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

int materialize_gemms(int p, int degree, int steps_done, int r) {
  int sum = 0;
  for (int i = 0; i < r; ++i)
    sum += (degree == 2 ? 1 : 0) + (steps_done + i > 0 ? 1 : 0) + (i < r - 1 ? residual_update_gemms(p) : 0);
  return sum;
}

int direct_gemms(int p, int degree, int r) {
  if (r <= 0) return 0;
  return (r - 1) * ((degree == 2 ? 1 : 0) + 1 + residual_update_gemms(p)) + degree;
}

}  // namespace pe::detail
