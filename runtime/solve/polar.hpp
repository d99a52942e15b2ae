// The GEMM-only polar iteration U <- U q(U^T U) for a square A, on the certified p = 2 bucket tables:
// with y = sigma^2 a step maps y -> y q(y)^2, exactly the p = 2 map, so the engine's driver (residual
// form recomputed_gram) tracks the singular values of the iterate (|1 - y| <= eps gives |1 - sigma| <= eps).
#pragma once

#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"
#include "engine/driver.hpp"
#include "lanczos.hpp"
#include "pe/pe.hpp"
#include "schedules.hpp"

namespace pe::detail::solve {

struct PolarSettings {
  double target = 0.5;         // stop when the tracked bound of |1 - sigma^2| is at most this
  int max_gemms = INT_MAX;     // for the iteration alone
  double kappa_hint = 0;       // caller's estimate of cond(A) (> 1 to use)
  bool estimate_start = true;  // without Gershgorin or hint: start from a Lanczos estimate (else the table floor)
};

struct PolarResult {
  bool converged = false;
  std::string reason;         // why not, when !converged
  int steps = 0;
  int gemms = 0;
  int degree = 0;
  double bound = 0;           // tracked bound of |1 - sigma^2(U)| after the final centring
  bool certified = false;     // the start was a Gershgorin enclosure (rigorous) rather than an estimate
  std::string l0_source;      // gershgorin | kappa_hint | lanczos_estimate | table_floor
  std::vector<Interval> intervals;  // tracked interval of sigma^2 after each step (normalised)
};

// Made once per shape: the driver and its workspace.
class PolarFactor {
 public:
  PolarFactor(Backend& backend, std::int64_t n, const ScheduleSet& tables);
  // U ~ polar factor of `a` (n x n) into `u` (n x n). Talks to the backend only.
  PolarResult run(const Mat& a, const PolarSettings& settings, Mat& u);

 private:
  Backend& be_;
  const ScheduleSet& tables_;
  std::int64_t n_;
  Mat u0_;
  std::unique_ptr<Driver> driver_;
  LanczosWorkspace lanczos_;
};

}  // namespace pe::detail::solve
