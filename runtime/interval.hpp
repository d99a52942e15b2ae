// Interval tracking over bucket tables: pick the bucket for the current interval (safe side), map the
// interval through its certified image, plan how many steps reach a target. Host-only arithmetic.
#pragma once

#include "pe/pe.hpp"
#include "schedules.hpp"

namespace pe::detail {

struct StepChoice {
  const BucketEntry* entry = nullptr;
  double coeff[3] = {0, 0, 0};  // a, b, c of q, as the storage dtype multiplies them (f32 values for f32)
  Interval image;               // certified enclosure of phi([lo, hi])
};

// Interval [lo, hi] of the normalised residual: 0 < lo <= hi, hi <= 1 + table.eta (guard G3 covers
// [1, 1 + eta]). Picks the entry with the largest l_edge <= lo (the smallest edge when lo is below all,
// relying on guard G1, which keeps phi(y) >= y there).
StepChoice choose_step(const OwnedBucketTable& table, DType storage, Interval current);

// max |1 - y| over the interval: the bound of ||Y - I||_2 it implies.
double interval_bound(Interval iv);

// [lo/hi, 1]: the interval after folding 1/hi into the residual.
Interval normalized(Interval iv);

// Steps needed from `start` until interval_bound(image) <= target, at most `limit`; fewer where the
// bound stops improving first (the tables' floor for this storage: an unreachable target, or target <= 0).
// `predicted_bound` receives the bound after the returned number of steps.
int steps_to_target(const OwnedBucketTable& table, DType storage, Interval start, double target, int limit,
                    double* predicted_bound = nullptr);

// GEMM calls of r more steps, materialising X, when `steps_done` steps came before (step 0's X update is
// a scaling; the last step skips the residual update). Matches pe::schedule_gemms for steps_done = 0.
int materialize_gemms(int p, int degree, int steps_done, int r);
// The same for the direct apply (Z <- q(Y) Z each step; terminal step a Z + b YZ + c Y(YZ)).
int direct_gemms(int p, int degree, int r);

}  // namespace pe::detail
