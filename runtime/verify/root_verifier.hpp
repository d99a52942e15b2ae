// The certificate of a returned inverse p-th root: a proven upper bound of
//
//   eps(X) = max_i |lambda_i(X^p A) - 1|
//
// for the X handed back and the A it is for, rounding included, with X and A proven symmetric
// positive definite. By Loewner-Heinz, eps(X) <= e < 1 gives (1 - e)^{1/p} A^{-1/p} <= X <=
// (1 + e)^{1/p} A^{-1/p}, hence ||X - A^{-1/p}||_2 <= (1 - (1 - e)^{1/p}) ||A^{-1/p}||_2. Every step of the
// proof, and what each field below means, is in docs/certificate.md.
//
// Plan once, certify many: the constructor allocates every buffer in the f64 backend it is given;
// certify allocates nothing there (the backend's own scratch for reductions and factorisations grows
// on first use and is then reused).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/types.hpp"

namespace pe::detail {

namespace verify {
class ResidualChain;
class SpectrumEnclosure;
}  // namespace verify

// How the residual is formed: in binary64 products (BLAS dgemm, cuBLASLt fp64), or in extended
// products (Ozaki's error-free slices summed into double-double pairs, about 4.5x the products).
// Double is one level above f32 and the 16-bit formats and its rounding term sits far below their
// floor; for f64 storage it is not (gamma_2n |||X||A||X|||  ~ 8e-9 at n = 160, kappa = 1e4, p = 2), so
// f64 needs the extended products to reach a verified 1e-10.
enum class VerifyArithmetic { binary64, extended };
// The arithmetic one level above `storage`: extended for f64, binary64 for every narrower format.
VerifyArithmetic verify_arithmetic_for(DType storage);

struct RootCertificate {             // one per batch member
  bool proven = false;               // eps_bound is a proven upper bound of eps(X)
  double eps_bound = std::numeric_limits<double>::infinity();  // +inf when not proven
  bool x_positive_definite = false;  // X proven symmetric positive definite (A then is too)
  double residual_term = 0;          // the proven enclosure of the computed residual: max |lambda(W_hat) - 1|
  double rounding_term = 0;          // the proven bound of the rounding made while forming W_hat
  double factor_term = 0;            // odd p: the proven bound of ||F||, X = U^T (I + F) U the Cholesky factor's error
  std::string failure;               // why not proven (not symmetric, not positive definite, non-finite, ...)
};

class RootVerifier {
 public:
  // wide: an f64 backend that holds A and X when certify is called (import them exactly with
  // Backend::import_from or upload: f32, bf16, f16 and tf32 values are all exact in double).
  RootVerifier(Backend& wide, std::int64_t n, std::int64_t batch, int p, VerifyArithmetic arithmetic);
  ~RootVerifier();
  RootVerifier(const RootVerifier&) = delete;
  RootVerifier& operator=(const RootVerifier&) = delete;

  // a: the matrix the root is for, exactly symmetric (for a ridge or shift, the shifted matrix);
  // x: the returned root, exactly symmetric. Both n x n x batch in the wide backend; neither is
  // modified. One certificate per member, each proven or not independently of the others.
  std::vector<RootCertificate> certify(const Mat& a, const Mat& x);

  int p() const { return p_; }
  VerifyArithmetic arithmetic() const { return arithmetic_; }
  // Cholesky factorisations the last certify ran (1 per member for X, 2 or more for the enclosure).
  int factorizations() const { return factorizations_; }

 private:
  Backend& be_;
  std::int64_t n_, batch_;
  int p_;
  VerifyArithmetic arithmetic_;
  Mat x_scaled_, a_scaled_, factor_, d_;
  std::unique_ptr<verify::ResidualChain> chain_;
  std::unique_ptr<verify::SpectrumEnclosure> enclosure_;
  int factorizations_ = 0;
};

// Smallest eps(X) the storage dtype can reach for an A of condition number kappa: the first-order effect
// of rounding the exact root A^{-1/p} to the storage (u its unit roundoff), in A's eigenbasis:
//
//   floor = u max(p kappa^{1/p}, kappa^{1/2}) / sqrt(3)
//
// (docs/certificate.md, "The floor"). An estimate, not a bound: on the test corpus the measured
// eps(fl(A^{-1/p})) lies within the factors stated there. Throws pe::Error for p < 1 or kappa < 1.
double root_floor_estimate(DType storage, int p, double kappa);

}  // namespace pe::detail
