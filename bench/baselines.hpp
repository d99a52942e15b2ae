// What a user would pick instead of our root, on the same BLAS and dtype, for pe-bench and the
// micro-benchmarks: an eigendecomposition root (LAPACK syevd), the classic coupled Newton iteration
// (Guo & Higham 2006), and bare GEMM calls (the floor for a given GEMM count).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace pe_bench {

// Column-major n x n products C <- A B (sgemm / dgemm).
template <class T>
void gemm(std::int64_t n, const T* a, const T* b, T* c);

// X <- A^{-1/p} through syevd: A = Q diag(w) Q^T, X = (Q W) (Q W)^T with W = diag(w^{-1/(2p)}).
// Returns false when an eigenvalue is not positive (A not positive definite in this dtype).
template <class T>
bool eigh_inverse_root(const std::vector<T>& a, std::int64_t n, int p, std::vector<T>& x);

// Guo & Higham's optimal scalar c for X_0 = I / c when the spectrum of A is in [lambda_min, lambda_max]:
// c = ((alpha^{1/p} lambda_max - lambda_min) / ((alpha^{1/p} - 1)(p + 1)))^{1/p}, alpha = lambda_max/lambda_min
// (for p = 1 this is the midpoint (lambda_min + lambda_max) / 2, the classic Newton-Schulz scaling).
double newton_scaling(double lambda_min, double lambda_max, int p);

// GEMMs of one coupled Newton iteration: X <- X T (none on the first, X_0 being scalar), T^p by binary
// powering, M <- T^p M (skipped on the last iteration, when M is no longer needed).
int newton_gemms(int p, int iteration, bool last);

// The coupled Newton iteration for A^{-1/p}:
//   X_0 = I/c, M_0 = A/c^p;  T_k = ((p+1) I - M_k)/p;  X_{k+1} = X_k T_k;  M_{k+1} = T_k^p M_k.
// Workspace is allocated once per size; run() does exactly `iterations` iterations.
template <class T>
class CoupledNewton {
 public:
  CoupledNewton(std::int64_t n, int p);
  // after_iteration(k, X) is called after iteration k (1-based); return false to stop early.
  // Returns the number of GEMM calls made.
  int run(const std::vector<T>& a, double c, int iterations, std::vector<T>& x,
          const std::function<bool(int, const std::vector<T>&)>& after_iteration = {});

 private:
  std::int64_t n_;
  int p_;
  std::vector<T> m_, t_, power_, scratch_, x_next_;
};

}  // namespace pe_bench
