// Host references in double for the solve tests and pe-run bench-solve (not part of the library API):
// seeded random non-symmetric matrices with prescribed singular values, LAPACK solves, residual norms.
#pragma once

#include <cstdint>
#include <vector>

namespace pe::reference {

// Haar-random orthogonal n x n (column-major), from the QR of a Gaussian matrix with sign-fixed R.
std::vector<double> random_orthogonal(std::int64_t n, std::uint64_t seed);

// U diag(sigma) V^T with U, V independent Haar-random orthogonal (column-major, n = sigma.size()).
std::vector<double> random_general(const std::vector<double>& sigma, std::uint64_t seed);

// Gaussian n x k (column-major).
std::vector<double> random_gaussian(std::int64_t n, std::int64_t k, std::uint64_t seed);

// X = A^{-1} B by LAPACK dgesv (column-major A n x n, B n x k); throws std::runtime_error when singular.
std::vector<double> lapack_solve(const std::vector<double>& a, const std::vector<double>& b, std::int64_t n,
                                 std::int64_t k);

// ||B - A X||_F / ||B||_F, in double.
double relative_residual(const std::vector<double>& a, const std::vector<double>& x, const std::vector<double>& b,
                         std::int64_t n, std::int64_t k);

}  // namespace pe::reference
