// A rigorous enclosure of the spectrum of an exactly symmetric f64 matrix D (one per batch member):
// Lanczos estimates the extreme eigenvalues (products through the backend, the short recurrence on
// the host), then a floating-point Cholesky factorisation of t I - D (and of D + t' I) with t a little
// above the estimate proves lambda_max(D) <= t + rho and lambda_min(D) >= -(t' + rho'), rho the proven
// backward error of the factorisation (rounding.hpp). Tight where norms are not: the residual of a
// minimax schedule spreads its eigenvalues over [-e, e], and ||D||_F or ||D||_inf can exceed e by
// sqrt(n). docs/certificate.md, "Enclosing the spectrum".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend.hpp"

namespace pe::detail::verify {

class SpectrumEnclosure {
 public:
  // Workspace for n x n matrices (batch members) and `lanczos_steps` Lanczos steps, allocated here.
  SpectrumEnclosure(Backend& wide, std::int64_t n, std::int64_t batch, int lanczos_steps);

  struct Bounds {
    std::vector<double> upper;         // proven: lambda_max(D) <= upper
    std::vector<double> lower;         // proven: lambda_min(D) >= lower
    std::vector<std::string> failure;  // empty where both are proven
    int factorizations = 0;            // Cholesky factorisations run (all members)
  };
  // d must be exactly symmetric; d_norm_inf[k] >= ||D_k||_inf. Members with active[k] false are
  // skipped (their bounds stay infinite). Allocates nothing on the backend.
  Bounds enclose(const Mat& d, std::span<const double> d_norm_inf, const std::vector<bool>& active);

 private:
  // Lanczos with full reorthogonalisation; extreme Ritz values of every member (they lie inside the
  // spectrum up to rounding, which the Cholesky proofs do not rely on).
  void ritz_extremes(const Mat& d, std::vector<double>& lowest, std::vector<double>& highest);

  Backend& be_;
  std::int64_t n_, batch_;
  int steps_;
  Mat c_, v_, w_;
  std::vector<double> basis_, v_host_, w_host_;  // host: steps x n x batch, n x batch, n x batch
};

}  // namespace pe::detail::verify
