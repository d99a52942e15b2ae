// The interval model over bucket tables, shared by the runtime and pe-synth: pick the bucket for the
// current interval (safe side), map the interval through its certified image. Host-only arithmetic.
#pragma once

#include "pe/pe.hpp"
#include "schedule_set.hpp"

namespace pe::detail {

struct StepChoice {
  const BucketEntry* entry = nullptr;
  double coeff[kMaxCoefficients] = {};  // c_0 .. c_d of q as the storage dtype multiplies them (f32 values for f32)
  Interval image;                       // certified enclosure of phi([lo, hi])
};

// Interval [lo, hi] of the normalised residual: 0 < lo <= hi, hi <= 1 + table.eta (guard G3 covers
// [1, 1 + eta]). Picks the entry with the largest l_edge <= lo (the smallest edge when lo is below all,
// relying on guard G1, which keeps phi(y) >= y there). Tables are monotone, so this is also the entry
// with the best image among those valid for the interval.
StepChoice choose_step(const OwnedBucketTable& table, DType storage, Interval current);

// max |1 - y| over the interval: the bound of ||Y - I||_2 it implies.
double interval_bound(Interval iv);

// [lo/hi, 1]: the interval after folding 1/hi into the residual.
Interval normalized(Interval iv);

}  // namespace pe::detail
