// The one interval-tracked driver below every entry point. It runs a planned sequence of steps
// (degree per step, from runtime/engine/step_plan) on a preconditioned batch whose spectrum lies in
// [l0, 1], choosing each member's bucket from its own tracked interval, and carries one of:
//   - the root X ~ A_n^{-1/p} (materialise),
//   - Z ~ A_n^{-1/p} B_n (direct apply; the last step applies q by Horner without forming it),
//   - the polar factor U of a square matrix, whose residual Y = U^T U is recomputed every step (p = 2).
// All workspace is allocated when the driver is made; run() allocates nothing on the backend and
// reads the backend's scalars once, after the last step (unless renormalisation or the on_step hook
// ask for more), so a GPU run has no host synchronisation inside the iteration.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "coupled.hpp"
#include "pe/detail/gemm_cost.hpp"
#include "pe/pe.hpp"
#include "schedules.hpp"
#include "plan/step_planner.hpp"

namespace pe::detail {

// How the next step's residual is formed.
enum class ResidualForm {
  coupled,          // Y <- q(Y)^p Y, starting from Y_0 = A_n (roots and applies)
  recomputed_gram,  // Y = U^T U after every step, U <- U q(Y) (the polar factor; p = 2 tables)
};

struct DriverShape {
  std::int64_t n = 0;
  std::int64_t batch = 1;
  int p = 2;
  int max_degree = 2;
  StepOutput output = StepOutput::materialize;
  std::int64_t rhs_cols = 0;  // direct: the columns of Z
  ResidualForm form = ResidualForm::coupled;
};

struct DriverSettings {
  int symmetrize_every = 1;  // symmetrise the residual every k steps (0: never)
  bool renormalize = false;  // re-centre the residual on its trace near convergence (one fetch per step)
  std::function<void(StepEvent&)> on_step;
  bool polar_residual_ready = false;  // polar: y() already holds U_0^T U_0 (formed for the start estimate)
  int elevated_steps = 0;             // the first steps that run on the elevated backend (one level up)
  // The coupled form's start: member k of a_n has its spectrum in upper[k] [l0[k], 1], with upper[k] <= 1 a
  // proven bound of lambda_max(a_n) (empty: 1 for every member). Folded into the residual's and the result's
  // scales, so a_n itself is not rescaled (and a prepared Y_0^2 stays valid).
  std::vector<double> upper;
  // The level (0: the storage, 1: one level up) where form_first_square left Y_0^2 for this run (-1: none).
  int first_square_level = -1;
  // Read nothing: run() returns with the checks pending, the caller posts every level's scalars
  // (Backend::post_scalars) and later calls complete(). Needs renormalize off and no on_step hook.
  bool deferred = false;
};

struct DriverResult {
  int steps = 0;
  int gemms = 0;
  bool diverged = false;
  std::string reason;
  std::vector<StepRecord> records;
  double model_eps = 0;           // worst member: the model's bound of the result
  double estimated_residual = 0;  // worst member: |1 - mean eigenvalue| of the last residual formed
  bool result_nonfinite = false;   // the result holds non-finite values (then diverged is true too)
  bool nonfinite = false;          // a residual or the result held non-finite values (then diverged is true too)
};

class Driver {
 public:
  // elevated: a backend of the same kind one precision level above the storage (or null), for the first
  // DriverSettings::elevated_steps steps; it gets a workspace of its own.
  Driver(Backend& backend, const DriverShape& shape, Backend* elevated = nullptr);

  // Runs `plan` from [l0[k], 1] for member k. a_n: the normalised matrices (left untouched; for the polar
  // form, the matrix whose polar factor is wanted, scaled so that its singular values squared lie in
  // [l0, 1]). final_factor[k] multiplies member k's result (undoes the scalar normalisation). Direct:
  // *z holds B_n on entry and the result on exit. Materialise and polar: the result is x().
  DriverResult run(const ScheduleSet& tables, const StepPlan& plan, const Mat& a_n, const std::vector<double>& l0,
                   const std::vector<double>& final_factor, const DriverSettings& settings, Mat* z);

  // A deferred run's checks, from the scalars the caller posted on every level (Backend::post_scalars) once
  // they are complete: sets result.diverged, reason and estimated_residual. May be called again after the
  // posted values change (a replayed graph).
  void complete(DriverResult& result);

  // Forms Y_0^2 = a_n a_n on `level` (0: the storage, 1: one level up), where the first step of a run()
  // reads it (that step then skips the product and still counts it), by the product that step would run
  // on the same operands. Also measures Y_0 for a bound of its spectrum from ||Y_0^2||_F: into the slots
  // of that level's backend, ||Y_0||_F, ||Y_0^2||_F and max |y_ij - y_ji| with max |y_ij| (max_asymmetry).
  // Returns that backend (the caller fetches). The caller tells the run (DriverSettings::first_square_level);
  // a prepared square the run cannot use is counted there as a GEMM of its own.
  Backend& form_first_square(int level, const Mat& a_n, int frobenius_slot, int square_frobenius_slot,
                             int asymmetry_slot, int magnitude_slot);

  Mat& x() { return levels_[0].x; }
  Mat& y() { return levels_[0].y; }
  const DriverShape& shape() const { return shape_; }
  bool has_elevated() const { return levels_[1].be != nullptr; }

 private:
  // One precision level: its backend and the workspace the steps use there.
  struct Level {
    Backend* be = nullptr;
    Mat y, q, x, x_alt, z, z_alt, w1, w2;
    StepBuffers buffers;
  };
  Level make_level(Backend& be) const;
  // The divergence checks of the last run: what each step's scalars are compared with.
  struct PendingCheck {
    int step;
    std::vector<double> res_scale;
    std::vector<Interval> interval;
  };
  struct Pending {
    std::vector<PendingCheck> checks;
    int total = 0;
  };
  void evaluate_checks(const std::vector<std::vector<double>>& collected, DriverResult& result) const;
  Pending pending_;

  DriverShape shape_;
  Level levels_[2];  // 0: the storage, 1: one level up (optional)
};

}  // namespace pe::detail
