// Which steps to run: the degree of each step's polynomial, chosen on the interval model of the worst
// batch member (the smallest l0) with the GEMM cost model of include/pe/detail/gemm_cost.hpp, so the
// plan's count is exactly what the driver issues.
#pragma once

#include <cstdint>
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

// The drift model (docs/precision.md). A step that starts from the normalised interval [l_t, 1] forms
// q(Y) of size about l_t^{-1/p} and the residual update q(Y)^p Y, whose rounding (unit roundoff u of the
// arithmetic it runs in, errors accumulating like sqrt(n) over the products' inner dimension) is amplified
// by about 1/l_t relative to the result's scale; later steps contract eigenvalues toward 1 but cannot undo
// such a perturbation of the iterates. The update X <- X q(Y) adds a relative rounding of X whose effect on
// eps grows with the root's condition number kappa^{1/p} = l_0^{-1/p}. So step t injects about
//   drift_t = kDriftConstant * u * sqrt(n) * (1 / l_t + l_0^{-1/p})
// into eps(X): the first steps (smallest l_t) dominate, the second term is what elevating cannot remove.
inline constexpr double kDriftConstant = 0.1;  // calibrated on the corpus: see docs/precision.md
struct DriftModel {
  std::vector<double> lower_ends;  // l_t of each planned step (worst member)
  double root_condition = 1;       // l_0^{-1/p}
  std::int64_t n = 1;
  // Predicted eps(X) from rounding when the first `elevated` steps run with unit roundoff u_elevated and
  // the rest with u_storage.
  double predicted(int elevated, double u_storage, double u_elevated) const;
};
DriftModel drift_model(const ScheduleSet& tables, int p, DType storage, double l0, const std::vector<int>& degrees,
                       std::int64_t n);
// The fewest leading steps to elevate so that the predicted drift is at most `share` of the target; when
// even elevating every step would not do, the fewest that bring it within twice that best prediction.
int elevated_steps_for(const DriftModel& model, double target, double share, double u_storage, double u_elevated);

}  // namespace pe::detail
