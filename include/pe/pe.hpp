// The public API: inverse p-th roots X ~ A^{-1/p} and applies Z ~ A^{-1/p} B of symmetric positive
// definite A, by interval-tracked coupled polynomial steps driven by certified schedule tables.
//
//   pe::Options opt;  opt.p = 4;  opt.target = 1e-3;
//   pe::Report r = pe::inverse_root(pe::Matrix{a, n, n, n}, pe::MutableMatrix{x, n, n, n}, opt);
//
// Views never own memory. A host view (Device::cpu) of dtype f32 or f64 is converted to the iteration's
// storage dtype (Options::storage, default: the dtype of A) and works with either Options::device (a CUDA
// run copies it in and out); views with Device::cuda hold device pointers and need Options::device cuda.
// Inputs must be finite and representable in the storage dtype; a result that is not finite (not
// representable in the output's dtype) is a pe::Error, never returned. After an error the contents of
// the output views are unspecified.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pe/types.hpp"

namespace pe {

// A read-only view of `batch` equally shaped matrices, `stride` elements apart.
struct Matrix {
  const void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;  // leading dimension: >= rows (col_major) or >= cols (row_major)
  DType dtype = DType::f64;
  Layout layout = Layout::col_major;
  std::int64_t batch = 1;
  std::int64_t stride = 0;  // elements between batch members (ignored when batch == 1)
  Device device = Device::cpu;
};

// The same view over writable memory (outputs).
struct MutableMatrix {
  void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;
  DType dtype = DType::f64;
  Layout layout = Layout::col_major;
  std::int64_t batch = 1;
  std::int64_t stride = 0;
  Device device = Device::cpu;
};

// Scaling applied before the iteration. Scalar modes (none, frobenius) are exact for every p; the
// diagonal modes (S = D A D) are exact only for p = 1 and are rejected for p > 1.
//   none:      A / ||A||_inf
//   frobenius: A / min(||A||_F, ||A||_inf)
//   jacobi:    D = diag(A)^{-1/2}
//   ruiz:      D from symmetric Ruiz equilibration of the row maxima
//   aol:       D_i = (sum_j |a_ij|)^{-1/2}, which gives ||D A D||_2 <= 1
enum class Precond { none, frobenius, jacobi, ruiz, aol };

// For apply_inverse_root: materialise X and multiply once, or carry the skinny Z through the steps.
enum class ApplyMode { automatic, materialize, direct };

enum class ScheduleSource { compiled, json_file };

struct StepEvent;  // see below

struct Options {
  int p = 2;                       // root: X ~ A^{-1/p}; p >= 1
  double target = 1e-3;            // stop when the tracked bound of ||X^p A - I|| reaches this (0: budget only)
  int max_gemms = 0;               // budget in GEMM calls, never exceeded (0: no GEMM budget)
  int max_steps = 0;               // budget in steps (0: at most kDefaultStepLimit)
  int degree = 0;                  // polynomial degree of q: 1, 2, or 0 = the cheaper one for this target
  Precond precond = Precond::frobenius;
  double ridge = 0;                // iterate on A + ridge I (changes the result by design)
  double l_target = 0;             // floor for the normalised lower bound, by a diagonal shift (changes A)
  // Where to start: a Gershgorin bound when A is diagonally dominant enough; else these hints; else the
  // runtime certifies both ends of the spectrum by Cholesky factorisations (LAPACK, double, on a host
  // copy: about three n^3/3 factorisations, so GPU callers who know their spectrum should pass a hint).
  double lambda_min_hint = 0;      // caller's lower bound of lambda_min(A) (> 0 to use)
  double kappa_hint = 0;           // caller's estimate of cond(A) (> 1 to use)
  ApplyMode mode = ApplyMode::automatic;
  int reuse_count = 1;             // how many times the caller will apply the same A (biases toward materialize)
  int symmetrize_every = 1;        // symmetrise the residual every k steps (0: never)
  bool renormalize = false;        // re-centre the residual on its trace when the tables' guard G3 allows
  double symmetry_tolerance = -1;  // max |a_ij - a_ji| / max|a|; < 0: 100 unit roundoffs of A's dtype
  ScheduleSource schedule_source = ScheduleSource::compiled;
  std::string schedule_file;       // JSON tables when schedule_source == json_file
  Device device = Device::cpu;     // must match the views' device
  void* stream = nullptr;          // cudaStream_t for Device::cuda
  ComputeMode compute = ComputeMode::native;
  DType storage = DType::f32;      // iteration dtype; used only when storage_from_input is false
  bool storage_from_input = true;  // iterate in A's dtype
  // Test and diagnostics hook, called after every step with host copies (slow; leave empty normally).
  std::function<void(StepEvent&)> on_step;
};

inline constexpr int kDefaultStepLimit = 60;

struct Interval {
  double lo = 0;
  double hi = 0;
};

// What one step did (per batch member where it says so).
struct StepRecord {
  int step = 0;
  int gemms = 0;                          // cumulative GEMM calls after this step
  std::vector<Interval> interval;         // tracked interval of the normalised residual after the step
  std::vector<double> bucket_l_edge;      // bucket used
  std::vector<Interval> rigorous;         // Gershgorin enclosure of the residual (empty after the last step)
};

struct Report {
  int steps = 0;
  int gemms = 0;
  int degree = 0;
  std::vector<StepRecord> intervals;      // one record per step
  double final_eps = 0;                   // tracked bound of ||X^p A - I||_2 (max over members)
  double estimated_residual = 0;          // ||Y - I||_inf of the last residual formed (before the final step)
  bool certified = false;                 // tracked interval backed by rigorous bounds for every member
  std::string precond;                    // mode used
  std::vector<double> scale;              // u: upper bound the (scaled) matrix was divided by, per member
  std::vector<double> l0;                 // starting lower bound, per member
  std::string l0_source;                  // gershgorin | lambda_min_hint | kappa_hint | cholesky (worst member)
  double ridge = 0;
  std::vector<double> shift;              // l_target diagonal shift (in units of A), per member
  bool matrix_changed = false;            // ridge or shift made the root that of a modified A
  std::string mode;                       // root | materialize | direct
  std::string storage;                    // f32 | f64
  std::string backend;                    // cpu | cuda
  std::string schedules;                  // compiled | file path
  bool fallback = false;
  std::string fallback_reason;
  bool target_reached = false;
  double seconds = 0;
  std::vector<std::string> notes;
};

// Host copies handed to Options::on_step (all column-major, batch members one after another).
struct StepEvent {
  int step = 0;
  int n = 0;
  int batch = 1;
  int p = 1;
  std::vector<Interval> interval;         // tracked interval of X^p A_n, A_n the normalised matrix
  std::vector<double> a_normalized;       // A_n
  std::vector<double> x;                  // current iterate, scaled so that X^p A_n has that interval (materialize)
  std::vector<double> y;                  // residual Y ~ X^p A_n as the iteration holds it (empty after the last step)
  bool write_back_y = false;              // set to true after editing y to feed it back (fault injection)
};

// X <- A^{-1/p} for symmetric positive definite A (every batch member).
Report inverse_root(const Matrix& a, MutableMatrix x, const Options& options);

// Z <- A^{-1/p} B for symmetric positive definite A (n x n) and B (n x k).
Report apply_inverse_root(const Matrix& a, const Matrix& b, MutableMatrix z, const Options& options);

// The Report as one JSON object.
std::string to_json(const Report& report);

// Parses a precondition mode name (none, frobenius, jacobi, ruiz, aol); throws pe::Error otherwise.
Precond parse_precond(const std::string& name);
const char* to_string(Precond mode);

}  // namespace pe
