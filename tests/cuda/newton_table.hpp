// The classic inverse Newton step q(y) = ((p + 1) - y) / p written as a bucket table, so that the
// runtime's interval-tracked iteration can run it: the GPU tests use it when no generated tables are
// compiled in, and pe-bench-cuda uses it as the "classic coupled Newton" baseline on the same code path.
//
// Closed form (no solver involved): phi(y) = y q(y)^p has phi'(y) = q^{p-1} (p + 1)(1 - y) / p >= 0 on
// [0, 1] and phi(1) = 1, so phi maps [l, 1] onto [phi(l), 1]: image = [phi(l_edge), 1], eps = 1 - phi(l_edge).
// q >= 1 on [0, 1] gives phi(y) >= y (guard G1). The coefficients (p + 1)/p and -1/p are exact in float
// for p = 1, 2, 4, so the f32 fields equal the f64 ones there (other p: float rounding is below the
// 1e-7 margin this table is not certified for; use p in {1, 2, 4} where exactness matters).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "schedules.hpp"

namespace pe::test {

inline double newton_phi(double y, int p) { return y * std::pow((p + 1 - y) / p, p); }

// Edges: 12 per decade of l from 1e-12 to 1, and 12 per decade of 1 - l from 1e-1 to 1e-12 (the
// quadratic tail), so the bucket below any interval loses at most a factor 10^(1/12) in l or 1 - l.
inline detail::OwnedBucketTable newton_bucket_table(int p) {
  std::vector<double> edges;
  for (int i = 0; i <= 144; ++i) edges.push_back(std::pow(10.0, -i / 12.0));
  for (int i = 12; i <= 144; ++i) edges.push_back(1 - std::pow(10.0, -i / 12.0));
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  edges.pop_back();  // l = 1: nothing left to do
  detail::OwnedBucketTable table;
  table.p = p;
  table.degree = 1;
  table.eta = 0;
  const double a = (p + 1.0) / p, b = -1.0 / p;
  for (double l : edges) {
    BucketEntry e{};
    e.l_edge = l;
    e.coeff_f64[0] = a;
    e.coeff_f64[1] = b;
    e.coeff_f32[0] = static_cast<float>(a);
    e.coeff_f32[1] = static_cast<float>(b);
    e.image_lo_f64 = e.image_lo_f32 = newton_phi(l, p);
    e.image_hi_f64 = e.image_hi_f32 = 1.0;
    e.eps_f64 = e.eps_f32 = e.eps_plain = 1 - e.image_lo_f64;
    e.overshoot = 1.0;
    e.guarded = false;
    table.entries.push_back(e);
  }
  return table;
}

}  // namespace pe::test
