// Which steps to run: the degree of each step's polynomial, chosen on the interval model of the worst
// batch member (the smallest l0) with the GEMM cost model of include/pe/detail/gemm_cost.hpp, so the
// plan's count is exactly what the driver issues.
#pragma once

#include <vector>

#include "pe/detail/gemm_cost.hpp"
#include "pe/types.hpp"
#include "schedules.hpp"

namespace pe::detail {

struct StepPlanRequest {
  int p = 2;                 // the tables' p (2 for the polar factor)
  DType storage = DType::f64;
  double l0 = 1;             // the planning interval is [l0, 1]
  double target = 0;         // reach this model bound with the fewest GEMMs (0: the best bound in budget)
  int max_gemms = 0;         // 0: no GEMM budget
  int max_steps = 0;         // 0: no step budget besides the driver's limit
  StepOutput output = StepOutput::materialize;
  int degree = 0;            // 0: any degree the tables have; else only this one
};

struct StepPlan {
  std::vector<int> degrees;      // one per step
  double model_bound = 1;        // the model's bound after the last step, from [l0, 1]
  int gemms = 0;                 // sum of step_gemms over the steps
  bool reaches_target = false;
  bool at_floor = false;         // the bound stopped improving short of the target: the tables' floor
};

// Throws pe::Error when the tables have no table for p (or for the forced degree), or when the budget
// does not allow a single step.
StepPlan plan_steps(const ScheduleSet& tables, const StepPlanRequest& request);

// GEMMs of the plan's steps as gemm_cost.hpp counts them (the driver issues exactly these).
int plan_gemms(int p, const std::vector<int>& degrees, StepOutput output);

}  // namespace pe::detail
