// The GEMM-only polar iteration X <- X q(X^T X) for a square A, on the certified p = 2 bucket tables:
// with y = sigma^2 a step maps y -> y q(y)^2, exactly the p = 2 map, so the runtime's interval tracking
// over those tables bounds the singular values of the iterate (|1 - y| <= eps gives |1 - sigma| <= eps).
#pragma once

#include <climits>
#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/pe.hpp"
#include "schedules.hpp"

namespace pe::detail::solve {

struct PolarSettings {
  double target = 0.5;       // stop when the tracked bound of |1 - sigma^2| is at most this
  int max_gemms = INT_MAX;   // for the iteration alone
  double kappa_hint = 0;     // caller's estimate of cond(A) (> 1 to use)
  bool estimate_start = true;  // without Gershgorin or hint: start from a Lanczos estimate (else the table floor)
};

struct PolarResult {
  bool converged = false;
  std::string reason;         // why not, when !converged
  int steps = 0;
  int gemms = 0;
  int degree = 0;
  double bound = 0;           // tracked bound of |1 - sigma^2(U)| after the final centring
  bool certified = false;     // the interval was backed by a Gershgorin enclosure at some step
  std::string l0_source;      // gershgorin | kappa_hint | lanczos_estimate
  std::vector<Interval> intervals;  // tracked interval of sigma^2 after each step (normalised)
};

// U ~ polar factor of `a` (n x n) into `u` (n x n, allocated by the caller). Talks to the backend only.
PolarResult polar_factor(Backend& backend, const Mat& a, const ScheduleSet& schedules, const PolarSettings& settings,
                         Mat& u);

}  // namespace pe::detail::solve
