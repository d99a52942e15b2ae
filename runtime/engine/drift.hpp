// The drift model (docs/precision.md): how much rounding each planned step injects into eps(X), and so
// which leading steps to run one precision level above the storage.
//
// A step forms q(Y) = sum_j c_j Y^j and the residual update q(Y)^p Y. The rounding of q (unit roundoff u of
// the arithmetic the step runs in, errors accumulating like sqrt(n) over the products' inner dimension)
// scales with the size of the terms, at most s_t = sum_j |c_j| for Y's spectrum in [l_t, 1] (about
// l_t^{-1/p} for degrees 1 and 2, far more for the alternating large coefficients of degrees 3 and 4 on wide
// intervals), and q^p Y multiplies it by m_t^{p-1}, m_t = max |q| on [l_t, 1]; later steps contract
// eigenvalues toward 1 but cannot undo such a perturbation of the iterates. The update X <- X q(Y) adds a relative rounding of X whose effect on eps
// grows with the root's condition number kappa^{1/p} = l_0^{-1/p}. So step t injects about
//   drift_t = kDriftConstant * u * sqrt(n) * (s_t m_t^{p-1} + l_0^{-1/p})
// into eps(X): the first steps dominate, the second term is what elevating cannot remove.
#pragma once

#include <cstdint>
#include <vector>

#include "plan/step_planner.hpp"

namespace pe::detail {

inline constexpr double kDriftConstant = 1.5;  // calibrated on the corpus: see docs/precision.md

struct DriftModel {
  std::vector<double> term_sizes;   // s_t m_t^{p-1} of each planned step (worst member)
  double root_condition = 1;       // l_0^{-1/p}
  std::int64_t n = 1;
  // Predicted eps(X) from rounding when the first `elevated` steps run with unit roundoff u_elevated and
  // the rest with u_storage.
  double predicted(int elevated, double u_storage, double u_elevated) const;
};

DriftModel drift_model(const ScheduleSet& tables, const StepPlan& plan, int p, DType storage, std::int64_t n);

// The fewest leading steps to elevate so that the predicted drift is at most `share` of the target; when
// even elevating every step would not do, the fewest that bring it within twice that best prediction.
int elevated_steps_for(const DriftModel& model, double target, double share, double u_storage, double u_elevated);

}  // namespace pe::detail
