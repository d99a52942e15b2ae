// A cheap certificate of numerical singularity: Lanczos on a symmetric matrix (products through the
// backend, the short recurrences on the host in double with full reorthogonalisation). Ritz values lie
// inside the spectrum, so the smallest one is an upper bound of lambda_min: when it is at the rounding
// level, the matrix is numerically singular (never a false alarm for a well-conditioned matrix).
#pragma once

#include "backend.hpp"

namespace pe::detail::solve {

// Smallest Ritz value of `a` (symmetric n x n, batch 1) after at most `max_iterations` Lanczos steps;
// stops early once it is at or below `stop_below` or the Krylov space is invariant.
double smallest_ritz_value(Backend& backend, const Mat& a, int max_iterations, double stop_below);

}  // namespace pe::detail::solve
