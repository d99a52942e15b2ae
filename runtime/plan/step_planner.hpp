// Budget-optimal step planning over certified bucket tables, shared by the runtime and pe-synth.
//
// A plan is a sequence of steps, each a degree (the bucket table it uses) applied to the tracked
// interval; its certified bound is that of the last step's image. For a target the planner returns the
// plan that reaches it with the fewest GEMMs (ties: the smaller bound, then fewer steps); without one,
// or when the budget cannot reach it, the plan with the smallest bound within the budget (ties: fewer
// GEMMs, then fewer steps). GEMMs are counted only by pe::detail::step_gemms (gemm_cost.hpp).
//
// Dynamic programming over (steps taken, GEMMs spent), keeping for each the best normalised lower end
// l, is exact: the cost of a step does not depend on l, and every table is monotone (a larger l never
// gives a worse image or a worse next l; pe::table_violation rejects tables where it fails), so a state
// with a smaller l at the same (steps, GEMMs) can never lead to a better plan.
//
// Batches: the runtime tracks one interval per member but runs one degree sequence for all. Plan for
// the member with the smallest lower end: by monotonicity every other member, choosing its own bucket
// each step, ends with a bound no worse than the planned one.
#pragma once

#include <vector>

#include "interval_model.hpp"
#include "pe/detail/gemm_cost.hpp"
#include "pe/pe.hpp"
#include "schedule_set.hpp"

namespace pe::detail {

struct PlanRequest {
  int p = 2;
  DType storage = DType::f32;          // which certificate counts (f32 coefficients for f32, else f64)
  Interval start{0, 1};                // tracked interval of the worst batch member
  double target = 0;                   // > 0: fewest GEMMs reaching it; 0: the smallest bound
  int max_gemms = 0;                   // GEMMs the plan may spend (0: no GEMM budget)
  int max_steps = kDefaultStepLimit;   // steps the plan may take (from now)
  StepOutput output = StepOutput::materialize;
  std::vector<int> degrees;            // step types allowed (empty: every degree the set has for p)
  int steps_done = 0;                  // steps already executed (> 0: no planned step is the first)
};

struct PlannedStep {
  int degree = 0;
  double l_edge = 0;       // the bucket the planned interval uses
  Interval before;         // the interval the step starts from
  Interval image;          // its certified image; the next step starts from normalized(image)
  double bound = 0;        // interval_bound(image)
  int gemms = 0;           // this step's GEMMs (step_gemms)
  int cumulative_gemms = 0;
};

struct StepPlan {
  std::vector<PlannedStep> steps;
  double final_bound = 1;
  int gemms = 0;
  bool reached = false;    // target > 0 and final_bound <= target
};

// Throws pe::Error when the set has no table for p (of an allowed degree), when the budget does not
// allow a single step, or on a malformed request.
StepPlan plan_steps(const ScheduleSet& set, const PlanRequest& request);

// The bound and GEMMs of executing a given degree sequence from `start` (the interval model, bucket by
// bucket): what plan_steps optimises, for checking a plan or comparing with a fixed sequence.
StepPlan simulate_steps(const ScheduleSet& set, const PlanRequest& request, const std::vector<int>& degrees);

}  // namespace pe::detail
