// Host-side references in double for tests, the demo and the bench (not part of the library API):
// seeded random SPD matrices with a prescribed spectrum and the eigendecomposition-based root.
#pragma once

#include <cstdint>
#include <vector>

namespace pe::reference {

// Eigenvalues of cond `kappa`, largest 1: log-spaced ("spread") or all but one at 1/kappa... see Spectrum.
enum class Spectrum { spread, clustered_low, clustered_high };
std::vector<double> make_spectrum(std::int64_t n, double kappa, Spectrum kind);

// Q diag(eigenvalues) Q^T with Q Haar-random from `seed` (column-major n x n, exactly symmetric).
std::vector<double> random_spd(const std::vector<double>& eigenvalues, std::uint64_t seed);

// A^{-1/p} of symmetric positive definite A through LAPACK dsyevd (column-major). Throws if not SPD.
std::vector<double> inverse_root(const std::vector<double>& a, std::int64_t n, int p);

// Eigenvalues (ascending) of a symmetric matrix (dsyevd).
std::vector<double> eigenvalues(const std::vector<double>& a, std::int64_t n);

// C = A B for column-major n x m times m x k.
std::vector<double> multiply(const std::vector<double>& a, const std::vector<double>& b, std::int64_t n,
                             std::int64_t m, std::int64_t k);

// eps(X) = max_i |lambda_i(X^p A) - 1| for symmetric positive definite A (column-major n x n), measured in
// double as the eigenvalues of L^T S^p L with A = L L^T (dpotrf) and S = (X + X^T) / 2. Throws if A is not
// positive definite. Rounding of the measurement: about n u_f64 ||L^T S^p L||, far below f32's floors.
double root_eps(const std::vector<double>& a, const std::vector<double>& x, std::int64_t n, int p);

// ||a - b||_F / ||b||_F.
double relative_error(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace pe::reference
