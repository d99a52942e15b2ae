// Interval tracking over bucket tables for the iteration: the interval model itself (bucket choice,
// certified images) is shared with pe-synth in plan/interval_model.hpp; the budget-optimal planner is
// plan/step_planner.hpp. Host-only arithmetic.
#pragma once

#include "pe/detail/gemm_cost.hpp"
#include "pe/pe.hpp"
#include "plan/interval_model.hpp"
#include "schedules.hpp"

namespace pe::detail {

// Steps needed from `start` until interval_bound(image) <= target, at most `limit`; fewer where the
// bound stops improving first (the tables' floor for this storage: an unreachable target, or target <= 0).
// `predicted_bound` receives the bound after the returned number of steps.
int steps_to_target(const OwnedBucketTable& table, DType storage, Interval start, double target, int limit,
                    double* predicted_bound = nullptr);

// GEMM calls of r more steps of one degree, materialising X, when `steps_done` steps came before, and the
// same for the direct apply: sums of step_gemms (gemm_cost.hpp, the one cost model).
int materialize_gemms(int p, int degree, int steps_done, int r);
int direct_gemms(int p, int degree, int r);

}  // namespace pe::detail
