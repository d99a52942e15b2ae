// Preconditioning of a symmetric positive definite batch: ridge, scaling (scalar or diagonal), upper
// normalisation by a cheap bound so the spectrum is in (0, 1], a lower bound l0, optional floor.
#pragma once

#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/pe.hpp"

namespace pe::detail {

struct PrecondSettings {
  Precond mode = Precond::frobenius;
  int p = 1;
  double ridge = 0;
  double l_target = 0;
  double lambda_min_hint = 0;
  double kappa_hint = 0;
  double lambda_max_hint = 0;
  double l0_floor = 1e-12;  // never start below this (the smallest bucket edge)
};

// Backend memory preconditioning writes into, allocated once by the caller (a plan) for n x n x batch.
struct PrecondWorkspace {
  Mat d;     // n x 1 x batch: the diagonal scaling (diagonal modes)
  Mat diag;  // n x 1 x batch: the diagonal of A_n (kappa_hint)
  // Host scratch of the Cholesky bounds, sized by the first call that needs them and kept (so a plan's
  // later executes allocate no n x n buffer; a plan whose inputs never need them never holds them):
  std::vector<double> stored;  // A_n as stored, in double (n x n x batch)
  std::vector<double> factor;  // one member's Cholesky factor (n x n)
};
PrecondWorkspace allocate_precond_workspace(Backend& backend, std::int64_t n, std::int64_t batch);

struct Preconditioned {
  // A_n = D (A + ridge I) D / scale + shift-related renormalisation, with spectrum in [l0, 1]:
  //   A_n = (D (A + ridge I) D + shift I) / scale   (D = I for scalar modes)
  std::vector<double> scale;  // per member
  std::vector<double> shift;  // per member, in units of D (A + ridge I) D
  bool diagonal = false;
  Mat d;                      // n x 1 x batch when diagonal
  std::vector<double> l0;     // per member
  std::vector<bool> l0_rigorous;
  std::string l0_source;      // of the worst member: gershgorin | lambda_min_hint | kappa_hint | cholesky_estimate
  // Set when the Cholesky factorisation of A_n failed: A is not numerically positive definite.
  bool not_positive_definite = false;
  std::string failure;
  std::vector<std::string> notes;
};

// Rejects diagonal modes for p > 1 (they would change the result).
void check_precond_mode(Precond mode, int p);

// Transforms `a` (the backend copy of A) into A_n in place. `host_a` holds the same matrices in double,
// column-major, n x n per member; only the diagonal modes read it (and may pass an empty vector
// otherwise). The lower end without Gershgorin or hints is an estimate (inverse iteration with a
// Cholesky factor of A_n), not a proof: the verified certificate of the result is what certifies.
Preconditioned precondition_spd(Backend& backend, Mat& a, const std::vector<double>& host_a,
                                const PrecondSettings& settings, PrecondWorkspace& workspace);


}  // namespace pe::detail
