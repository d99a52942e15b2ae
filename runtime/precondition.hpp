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

// Backend memory preconditioning writes into, allocated once by the caller (a plan).
struct PrecondWorkspace {
  Mat d;     // n x 1 x batch: the diagonal scaling (diagonal modes)
  Mat diag;  // n x 1 x batch: the diagonal of A_n (kappa_hint)
  // The spectrum's ends by Cholesky factorisations (dense A without hints), in double on `wide`, an f64
  // backend of the same kind (on a GPU: cuSOLVER on the device; the host sees a few scalars per member).
  // Null until ensure_spectrum_workspace; precondition_spd refuses to need it then.
  Backend* wide = nullptr;
  Mat factor;     // n x n x batch in `wide` (a plan may lend a buffer that is free before the iteration)
  Mat v, w;       // n x 1 x batch in `wide`: the power and inverse iterations' vectors
  Mat start;      // n x 1 x batch in `wide`: their start vector, uploaded once
};
PrecondWorkspace allocate_precond_workspace(Backend& backend, std::int64_t n, std::int64_t batch);
// Gives `ws` what the Cholesky bounds need, on `wide` (f64 storage, the kind of backend preconditioning runs
// on): `factor` is lent by the caller (n x n x batch in `wide`, free whenever preconditioning runs) or, when
// null, allocated. Does nothing once done.
void ensure_spectrum_workspace(PrecondWorkspace& ws, Backend& wide, std::int64_t n, std::int64_t batch,
                               const Mat* factor);

struct Preconditioned {
  // A_n = D (A + ridge I) D / scale + shift-related renormalisation, with spectrum in [l0, 1]:
  //   A_n = (D (A + ridge I) D + shift I) / scale   (D = I for scalar modes)
  std::vector<double> scale;  // per member
  std::vector<double> shift;  // per member, in units of D (A + ridge I) D
  bool diagonal = false;
  Mat d;                      // n x 1 x batch when diagonal
  std::vector<double> l0;     // per member
  std::vector<bool> l0_rigorous;
  std::vector<bool> upper_proven;  // per member: a Cholesky factorisation proved lambda_max(A_n) near its estimate
  std::string l0_source;      // of the worst member: gershgorin | lambda_min_hint | kappa_hint | cholesky_estimate
  // Set when the Cholesky factorisation of A_n failed: A is not numerically positive definite.
  bool not_positive_definite = false;
  std::string failure;
  std::vector<std::string> notes;
};

// The same from the hints alone, reading nothing from the backend (enqueued runs, CUDA graph capture):
// A_n = (A + ridge I) / (lambda_max_hint + ridge), l0 = (lambda_min_hint + ridge) / (lambda_max_hint + ridge)
// (raised to the floor), then the l_target floor. Scalar modes only; both hints must be positive. Trusts
// the hints as precondition_spd does (it too takes them over its own norms and Gershgorin bound).
Preconditioned precondition_from_hints(Backend& backend, Mat& a, const PrecondSettings& settings);

// Rejects diagonal modes for p > 1 (they would change the result).
void check_precond_mode(Precond mode, int p);

// Transforms `a` (the backend copy of A) into A_n in place. `diagonal`: the diagonals of A as stored, in double
// (n per member, before the ridge). `host_a`: the same matrices in double on the host, column-major, n x n per
// member; only the diagonal modes read it (others may pass an empty vector). The lower end without Gershgorin
// or hints is an estimate (inverse iteration with a Cholesky factor of A_n, on ws.wide), not a proof: the
// verified certificate of the result is what certifies.
Preconditioned precondition_spd(Backend& backend, Mat& a, const std::vector<double>& diagonal,
                                const std::vector<double>& host_a, const PrecondSettings& settings,
                                PrecondWorkspace& workspace);

}  // namespace pe::detail
