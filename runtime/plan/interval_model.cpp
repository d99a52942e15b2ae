#include "interval_model.hpp"

#include <algorithm>
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
  const bool f32 = storage == DType::f32;
  for (int i = 0; i < kMaxCoefficients; ++i) c.coeff[i] = f32 ? static_cast<double>(e.coeff_f32[i]) : e.coeff_f64[i];
  double lo = f32 ? e.image_lo_f32 : e.image_lo_f64;
  double hi = f32 ? e.image_hi_f32 : e.image_hi_f64;
  if (current.lo < e.l_edge) lo = std::min(lo, current.lo);  // G1: below the edge, phi(y) >= y
  if (current.hi > 1) hi *= std::max(1.0, e.overshoot);  // G3: phi([1, 1 + eta]) <= overshoot * image_hi
  c.image = {lo, hi};
  return c;
}

double interval_bound(Interval iv) { return image_bound(iv.lo, iv.hi); }

Interval normalized(Interval iv) { return {image_ratio(iv.lo, iv.hi), 1.0}; }

}  // namespace pe::detail
