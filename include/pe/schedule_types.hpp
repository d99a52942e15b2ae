// The contract between pe-synth (which writes schedule tables) and the runtime (which reads them).
// Plain aggregate records so that the generated header can define them as constexpr arrays and the
// JSON loader can fill the very same structs: both sources give bit-identical numbers.
//
// The math both sides agree on (see docs/schedule-format.md for the full statement):
//   residual Y = X^p A, one step maps an eigenvalue y of Y to phi(y) = y * q(y)^p,
//   q(y) = a + b*y + c*y^2 (c == 0 for degree 1). The fixed point is y = 1.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pe {

// Bumped whenever a field is added, removed or changes meaning. The JSON loader rejects other versions.
inline constexpr int kScheduleSchemaVersion = 1;

// One kappa bucket of a (p, degree) table.
//
// Coefficients are valid for every interval [l, 1] with l >= l_edge: since [l,1] is inside [l_edge,1],
// phi([l,1]) is inside the certified image [image_lo, image_hi] of the edge. The runtime therefore
// always picks the bucket with the largest l_edge <= its current lower bound (the safe side).
//
// Everything named *_f64 is certified for the coefficients exactly as rounded to double, everything
// named *_f32 for the coefficients exactly as rounded to float (what a float runtime multiplies by).
//
// Guards (checked and certified by pe-synth for every entry, with eta the table's rounding margin):
//   G1  for y in [0, l_edge]:   y <= phi(y) <= image_hi   (below the edge we still move up, never over)
//   G2  q(y) > 0 on [0, 1 + eta]
//   G3  for y in [1, 1 + eta]:  image_lo <= phi(y) <= overshoot * image_hi
// Where the plain minimax optimum breaks G1..G3 (G3 with overshoot <= 1 + eta), the stored
// coefficients are the constrained optimum found with NLopt and `guarded` is true; eps_plain keeps
// the unconstrained optimum's bound for comparison.
struct BucketEntry {
  double l_edge;         // lower edge of the bucket (kappa_edge = 1 / l_edge)
  double coeff_f64[3];   // a, b, c
  double eps_f64;        // certified: max_{y in [l_edge,1]} |1 - phi(y)| <= eps_f64
  double image_lo_f64;   // certified: phi([l_edge,1]) is inside [image_lo_f64, image_hi_f64]
  double image_hi_f64;
  float coeff_f32[3];
  double eps_f32;
  double image_lo_f32;
  double image_hi_f32;
  double eps_plain;      // certified bound of the unguarded optimum (== eps_f64 when !guarded)
  double overshoot;      // certified: max_{y in [1,1+eta]} phi(y) / image_hi_f64 (G3)
  bool guarded;
};

// All buckets of one (p, degree): entries sorted by l_edge ascending (largest kappa first).
struct BucketTable {
  int p;
  int degree;
  double eta;            // rounding margin the guards were certified for
  const BucketEntry* entries;
  std::size_t count;
};

// One step of a greedy fixed schedule, solved exactly for its own interval [l, 1].
struct FixedStep {
  double l;              // lower end of the (normalised) interval this step starts from
  double coeff_f64[3];
  float coeff_f32[3];
  double eps_f64;        // certified bound of this step on [l, 1]
  double image_lo_f64;   // certified image; the next step starts from l' = image_lo / image_hi
  double image_hi_f64;
};

// A greedy schedule from [l0, 1]: steps[0..count) in order; a prefix of T steps is the optimal
// T-step schedule in the interval model. final bound after T steps: steps[T-1].eps_f64.
struct FixedSchedule {
  int p;
  int degree;
  double l0;
  const FixedStep* steps;
  std::size_t count;
};

// GEMM count of the coupled iteration (materialised X, n x n x n products) as the runtime executes it.
//   step t of T:  [degree == 2]          (Y^2, to form q(Y))
//               + [t > 0]                (X <- X q(Y); X_0 is a multiple of I, so step 0 is a scaling)
//               + [t < T-1] * residual_update_gemms(p)   (Y <- q(Y)^p Y; the last step skips it)
// residual_update_gemms(p): p = 1 -> 1 (q(Y) Y); p = 3 -> 3; even p = 2m -> powers(m) + 2 (sandwich
// B^m Y B^m); odd p = 2m+1 -> powers(m) + 3, with powers(m) the products of binary powering of B.
constexpr int binary_powering_products(int m) {
  int products = 0, bits = 0, ones = 0;
  for (int v = m; v > 0; v >>= 1) {
    ++bits;
    ones += v & 1;
  }
  products = m > 0 ? (bits - 1) + (ones - 1) : 0;
  return products;
}
constexpr int residual_update_gemms(int p) {
  if (p == 1) return 1;
  if (p % 2 == 0) return binary_powering_products(p / 2) + 2;
  return binary_powering_products(p / 2) + 3;
}
constexpr int step_gemms(int p, int degree, int t, int total_steps) {
  return (degree == 2 ? 1 : 0) + (t > 0 ? 1 : 0) + (t < total_steps - 1 ? residual_update_gemms(p) : 0);
}
constexpr int schedule_gemms(int p, int degree, int total_steps) {
  int sum = 0;
  for (int t = 0; t < total_steps; ++t) sum += step_gemms(p, degree, t, total_steps);
  return sum;
}

}  // namespace pe
