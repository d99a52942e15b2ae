// A cheap certificate of numerical singularity: Lanczos on a symmetric matrix (products through the
// backend, the short recurrences on the host in double with full reorthogonalisation). Ritz values lie
// inside the spectrum, so the smallest one is an upper bound of lambda_min: when it is at the rounding
// level, the matrix is numerically singular (never a false alarm for a well-conditioned matrix).
#pragma once

#include "backend.hpp"

namespace pe::detail::solve {

// Backend vectors Lanczos multiplies with (n x 1 each), allocated once by the caller.
struct LanczosWorkspace {
  Mat v, w;
};
LanczosWorkspace allocate_lanczos_workspace(Backend& backend, std::int64_t n);

// Smallest Ritz value of `a` (symmetric n x n, batch 1) after at most `max_iterations` Lanczos steps;
// stops early once it is at or below `stop_below` or the Krylov space is invariant.
double smallest_ritz_value(Backend& backend, const Mat& a, int max_iterations, double stop_below,
                           LanczosWorkspace& workspace);

}  // namespace pe::detail::solve
