// Solves and Gram-structured applies on top of the inverse-root runtime (pe.hpp), with the same contract:
// a GEMM budget that is never exceeded, a report of what ran, and a reported fallback instead of garbage.
//
//   pe::SolveOptions so;  so.target = 1e-6;  so.max_gemms = 40;
//   pe::SolveReport r = pe::solve(pe::Matrix{a, n, n, n}, pe::Matrix{b, n, k, n}, pe::MutableMatrix{x, n, k, n}, so);
//
//   pe::GramCache cache;                       // keep it alive across calls that reuse G
//   pe::GramOptions go;  go.p = 2;  go.lambda = 1e-3;  go.cache = &cache;  go.version = step;
//   pe::gram_apply(pe::Matrix{g, m, n, m}, pe::Matrix{b, n, k, n}, pe::MutableMatrix{z, n, k, n}, go);
//
// Batches (batch > 1) are not supported by these entry points.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pe/pe.hpp"

namespace pe {

// ---------------------------------------------------------------------------------------------------
// A X = B
//
// SPD A: M ~ A^{-1} from the GEMM-only p = 1 iteration (inverse_root), X0 = M B, then corrections
//   R = B - A X (accumulated one level above the storage: double for f32 on the CPU), X <- X + M R.
//   With ||I - A M||_2 <= eps (the iteration's tracked bound; M is a polynomial in A, so A M is
//   symmetric with eigenvalues in [1 - eps, 1 + eps]), each correction multiplies the residual by at
//   most eps: after c corrections ||B - A X|| <= eps^(c+1) ||B|| in exact arithmetic.
// General A: polar factor A = U H by the GEMM-only iteration X <- X q(X^T X), whose coefficients are
//   the certified p = 2 bucket tables (on y = sigma^2 the step maps y -> y q(y)^2, the p = 2 map, so
//   |1 - y| <= eps gives |1 - sigma| <= eps), then H = sym(U^T A), M_H ~ H^{-1} as above,
//   P = M_H U^T ~ A^{-1} and the same corrections against the original A. In exact arithmetic
//   P A = I for any U = A s(A^T A), so the polar accuracy only sets cond(H): the iteration stops at a
//   loose bound (polar_target), and the corrections absorb the rest. The polar start (the lower end of
//   sigma^2) is Gershgorin's when positive, else from kappa_hint, else a Lanczos estimate; when that
//   estimate was too optimistic for H to come out positive definite, the iteration continues from U (same
//   polar factor) starting at the tables' floor.
// Non-convergence (non-finite values, a residual that does not at least halve per correction while
// above the target, a polar iteration that leaves its tracked interval, H not positive definite)
// falls back to an LU solve in double (LAPACK getrf/getrs), reported. A singular A is a pe::Error.
// ---------------------------------------------------------------------------------------------------

enum class Structure { automatic, spd, general };

struct SolveOptions {
  double target = 1e-6;        // relative residual ||B - A X||_F / ||B||_F to reach (0: budget only)
  int max_gemms = 0;           // budget for everything (iteration, apply, residuals); 0: none. Never exceeded.
  int max_corrections = 3;     // refinement steps after X0 (0..10)
  Structure structure = Structure::automatic;  // automatic: symmetric with a positive diagonal -> spd
  double inner_target = 0;     // tracked bound of ||I - M A|| for the approximate inverse (0: sqrt(target), clamped)
  double polar_target = 0.5;   // general A: bound of |1 - sigma^2(U)| where the polar iteration stops
  Precond precond = Precond::frobenius;  // for the SPD iteration (p = 1: diagonal modes are exact too)
  double lambda_min_hint = 0;  // SPD A: caller's lower bound of lambda_min(A)
  double kappa_hint = 0;       // caller's estimate of cond(A) (SPD: of A; general: of A, used for the polar start)
  bool allow_fallback = true;  // false: report non-convergence instead of running LU
  double symmetry_tolerance = -1;  // as Options::symmetry_tolerance (also decides automatic structure)
  ScheduleSource schedule_source = ScheduleSource::compiled;
  std::string schedule_file;
  Device device = Device::cpu;
  void* stream = nullptr;
  ComputeMode compute = ComputeMode::native;
  DType storage = DType::f32;
  bool storage_from_input = true;  // iterate in A's dtype
};

struct SolveReport {
  Status status = Status::ok;     // fallback when the LU fallback's X is returned
  std::string method;             // where X comes from: spd | polar | lu (the fallback's X) | none (B = 0)
  std::string structure;          // symmetric | general (what was detected or forced)
  int gemms = 0;                  // every GEMM call, iteration included (the fallback's LU is not a GEMM)
  int inverse_gemms = 0;          // of which: building the approximate inverse (SPD iteration)
  int polar_gemms = 0;            // of which: the polar iteration, H and P (general A)
  int corrections = 0;
  std::vector<double> residuals;  // fast path: relative residual of X0, then after each correction
  std::vector<double> predicted;  // eps^(c+1) for the same points (interval model, exact arithmetic)
  double residual = 0;            // final relative residual (after the fallback if it ran), as computed
  // A proven upper bound of ||B - A X||_F / ||B||_F for the returned X, the rounding of forming the
  // residual included (docs/certificate.md); certified is true exactly when it holds a value.
  std::optional<double> verified_residual;
  bool certified = false;
  bool target_reached = false;    // verified_residual <= target
  int polar_steps = 0;
  double polar_bound = 0;         // tracked bound of |1 - sigma^2(U)|
  bool polar_certified = false;   // polar interval backed by a Gershgorin enclosure
  Report inverse;                 // the SPD iteration's report (for A, or H for general A)
  bool fallback = false;
  std::string fallback_reason;
  std::string storage;
  std::string backend;
  double seconds = 0;
  std::vector<std::string> notes;
};

namespace detail {
class SolveEngine;
class GramEngine;
}

// A plan for A X = B (A: n x n, B: n x k, batch 1): backend, workspace, tables and the inner engines made
// once; execute() allocates nothing. Thread safety as RootPlan.
class SolvePlan {
 public:
  SolvePlan(const MatrixDesc& a, const MatrixDesc& b, const SolveOptions& options);
  ~SolvePlan();
  SolvePlan(SolvePlan&&) noexcept;
  SolvePlan& operator=(SolvePlan&&) noexcept;
  SolvePlan(const SolvePlan&) = delete;
  SolvePlan& operator=(const SolvePlan&) = delete;

  SolveReport execute(const Matrix& a, const Matrix& b, MutableMatrix x);
  const SolveOptions& options() const;

 private:
  std::unique_ptr<detail::SolveEngine> engine_;
};

// X <- A^{-1} B. A: n x n, B and X: n x k (f32 or f64 views; batch 1): plan, execute once.
SolveReport solve(const Matrix& a, const Matrix& b, MutableMatrix x, const SolveOptions& options);

std::string to_json(const SolveReport& report);
Structure parse_structure(const std::string& name);  // automatic | spd | general
const char* to_string(Structure structure);

// ---------------------------------------------------------------------------------------------------
// Gram blocks: A = G^T G + lambda I for G (m x n), without the caller forming A.
//
// rhs = plain:  Z = A^{-1/p} B,      B n x k. Always works on the n x n Gram.
// rhs = range:  Z = A^{-1/p} G^T C,  C m x k. Since f(G^T G) G^T = G^T f(G G^T) for every f, this
//               equals G^T (G G^T + lambda I)^{-1/p} C, which works on the m x m Gram: `side`
//               automatic takes the smaller one. The identity needs the right-hand side in the range
//               of G^T, which is why it is offered only for this form. With lambda = 0 exactly one side
//               is invertible when m != n (the smaller one, for G of full rank), and the result is then
//               the pseudo-inverse root (G^T G)^{+1/p} G^T C: both sides agree wherever both exist.
//
// Scaling. p = 1: Jacobi on the Gram, i.e. the column norms of G (D_jj = (||g_j||^2 + lambda)^{-1/2},
// A^{-1} = D (D A D)^{-1} D, exact). p > 1: (D A D)^{-1/p} != D A^{-1/p} D for a non-scalar D, so only
// a scalar normalisation is used (the runtime's frobenius mode); column scaling is not applied.
//
// With lambda = 0 a singular Gram is a pe::Error that names lambda: by shape (a d x d Gram of a G whose
// other side is smaller than d), or numerically (Lanczos, at most 80 products with a vector, bounds its
// smallest eigenvalue from above; a bound at the storage's rounding level, 10 sqrt(d) u ||A||, proves G
// rank deficient). Nearly singular Grams that Lanczos cannot resolve reach the runtime, whose
// positive-definiteness checks apply.
// ---------------------------------------------------------------------------------------------------

enum class GramRhs { plain, range };
enum class GramSide { automatic, primal, dual };  // primal: G^T G (n x n); dual: G G^T (m x m)

// Reuses the formed Gram and materialised roots across calls with the same G. An entry is keyed by
// everything that determines it: G's pointer, shape, leading dimension, dtype, layout, device and
// stream, the caller's version token, the side, lambda, the storage dtype and compute mode; roots
// inside it additionally by p, target, max_gemms, degree and the schedule source. Bump the version
// whenever G's contents change. As a second line of defence, host views are fingerprinted (a hash of
// every element): changed contents under an old token are rebuilt (and noted), never served.
// Not thread-safe: use one cache per thread.
class GramCache {
 public:
  explicit GramCache(std::size_t max_entries = 4);
  ~GramCache();
  GramCache(GramCache&&) noexcept;
  GramCache& operator=(GramCache&&) noexcept;
  GramCache(const GramCache&) = delete;
  GramCache& operator=(const GramCache&) = delete;

  void clear();
  std::size_t size() const;  // entries (one per G version and side)

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend struct GramCacheAccess;
};

struct GramOptions {
  int p = 2;
  double lambda = 0;           // A = G^T G + lambda I (>= 0)
  double target = 1e-3;        // tracked bound of ||X^p A - I||, as Options::target
  int max_gemms = 0;           // budget of the whole call, Gram formation included (0: none)
  int degree = 0;
  GramRhs rhs = GramRhs::plain;
  GramSide side = GramSide::automatic;
  GramCache* cache = nullptr;  // null: nothing is kept
  std::uint64_t version = 0;   // caller's version token of G's contents (part of the cache key)
  double lambda_min_hint = 0;  // of A (lambda included)
  double kappa_hint = 0;
  bool verify = true;          // certify materialised roots (of the Gram as formed, lambda included)
  ScheduleSource schedule_source = ScheduleSource::compiled;
  std::string schedule_file;
  Device device = Device::cpu;
  void* stream = nullptr;
  ComputeMode compute = ComputeMode::native;
  DType storage = DType::f32;
  bool storage_from_input = true;  // iterate in G's dtype
};

struct GramReport {
  std::string side;        // primal | dual
  std::string cache;       // off | miss | gram (Gram reused, root built) | hit (root reused)
  int gemms = 0;           // this call's GEMMs (Gram formation, iteration, applies)
  Report root;             // the root's report (from the call that built it, on a hit)
  double seconds = 0;
  std::vector<std::string> notes;
};

// A plan for Gram applies of one shape (G: m x n, B: n x k or C: m x k): the backend, the workspace and the
// root engine are made once; a cache (options.cache) keeps formed Grams and roots across executes. With a
// cache hit, execute() allocates nothing. Thread safety as RootPlan (and the cache is per thread).
class GramPlan {
 public:
  GramPlan(const MatrixDesc& g, const MatrixDesc& b, const GramOptions& options);
  ~GramPlan();
  GramPlan(GramPlan&&) noexcept;
  GramPlan& operator=(GramPlan&&) noexcept;
  GramPlan(const GramPlan&) = delete;
  GramPlan& operator=(const GramPlan&) = delete;

  GramReport execute(const Matrix& g, const Matrix& b, MutableMatrix z);
  const GramOptions& options() const;

 private:
  std::unique_ptr<detail::GramEngine> engine_;
};

// See above: Z = (G^T G + lambda I)^{-1/p} B (rhs plain, B n x k, Z n x k) or
// Z = (G^T G + lambda I)^{-1/p} G^T C (rhs range, C m x k, Z n x k). Plan, execute once.
GramReport gram_apply(const Matrix& g, const Matrix& b, MutableMatrix z, const GramOptions& options);

std::string to_json(const GramReport& report);

}  // namespace pe
