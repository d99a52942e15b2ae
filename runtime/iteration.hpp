// The interval-tracked coupled iteration on a preconditioned batch A_n (spectrum in [l0, 1]), in two
// modes: materialise X ~ A_n^{-1/p}, or carry Z ~ A_n^{-1/p} B_n directly. Talks to the backend only.
#pragma once

#include <climits>
#include <functional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/pe.hpp"
#include "schedules.hpp"

namespace pe::detail {

struct IterationSettings {
  int p = 2;
  double target = 1e-3;
  int max_steps = kDefaultStepLimit;
  int max_gemms = INT_MAX;   // for the iteration alone (callers subtract their own GEMMs first)
  int degree = 0;            // 0: choose
  int symmetrize_every = 1;
  bool renormalize = false;
  bool direct = false;       // carry Z instead of materialising X
  // A cheaper (degree 1) table for the last step: used when its one step alone reaches the target from
  // the current interval, saving the Y^2 product (null: every step uses the main table).
  const OwnedBucketTable* final_table = nullptr;
  std::function<void(StepEvent&)> on_step;
};

struct IterationResult {
  bool diverged = false;
  std::string reason;
  int steps = 0;
  int gemms = 0;
  int degree = 0;
  std::vector<StepRecord> records;
  double final_eps = 0;
  double estimated_residual = 0;
  bool certified = false;
  bool target_reached = false;
  bool at_floor = false;  // the target was not reached and another step would not lower the bound
};

// The degree (1 or 2) that reaches the target with fewer GEMMs for the worst start, within the budget.
int choose_degree(const ScheduleSet& schedules, int p, DType storage, double worst_l0, double target,
                  int max_steps, int max_gemms, bool direct);

// Runs the iteration. a_n: the normalised matrices (left untouched). start/rigorous: per member.
// final_factor: per member scalar multiplied into the result (undoes a scalar normalisation).
// Materialise: result in `x` (n x n). Direct: `z` (n x k) holds B_n on entry and the result on exit.
IterationResult run_coupled(Backend& backend, const Mat& a_n, const OwnedBucketTable& table,
                            const std::vector<double>& l0, const std::vector<bool>& rigorous,
                            const std::vector<double>& final_factor, const IterationSettings& settings, Mat& x,
                            Mat& z);

}  // namespace pe::detail
