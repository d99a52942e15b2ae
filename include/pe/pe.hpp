// The public API: inverse p-th roots X ~ A^{-1/p} and applies Z ~ A^{-1/p} B of symmetric positive
// definite A, by interval-tracked coupled polynomial steps driven by certified schedule tables, with a
// verified certificate of the returned X (docs/certificate.md).
//
//   pe::Options opt;  opt.p = 4;  opt.target = 1e-3;
//   pe::Report r = pe::inverse_root(pe::Matrix{a, n, n, n}, pe::MutableMatrix{x, n, n, n}, opt);
//
// Callers that repeat the same shapes (every optimizer step) make a plan once and execute it many times:
//
//   pe::RootPlan plan(pe::MatrixDesc{n, n, 1, pe::DType::f32}, opt);   // backend, workspace, tables
//   for (...) pe::Report r = plan.execute(a_view, x_view);             // no allocation, no table load
//
// Views never own memory. A host view (Device::cpu) of dtype f32 or f64 is converted to the iteration's
// storage dtype (Options::storage, default: the dtype of A) and works with either Options::device (a CUDA
// run copies it in and out); views with Device::cuda hold device pointers and need Options::device cuda.
// Inputs must be finite and representable in the storage dtype; a result that is not finite (not
// representable in the output's dtype) is a pe::Error, never returned. After an error the contents of
// the output views are unspecified.
//
// Memory (CPU): a plan holds its workspace for its lifetime. Buffers of 64 KiB and more that a plan (or a
// one-shot call) releases stay mapped, up to 1 GiB per process, for the next plan of the same sizes, so that
// repeated one-shot calls do not touch fresh memory every time (runtime/cpu/zeroed_buffer.hpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

// Which schedule tables drive the steps: the set compiled into pe (schedules/), a pe_schedules.json file
// read at run time, or a set the caller compiled into its own binary with the CMake function
// pe_add_schedules (no file at run time; Options::embedded_schedules points at it).
enum class ScheduleSource { compiled, json_file, embedded };

struct CompiledScheduleSet;  // include/pe/schedule_types.hpp

// When the exact root (eigendecomposition in double) replaces the iteration's result:
//   never:        report what happened, return the iteration's X (a diverged iteration is then an error);
//   on_failure:   when the iteration diverges, or A is not positive definite enough to iterate on;
//   on_unverified: also when the verified bound of the returned X misses the target by more than
//                 Options::fallback_factor (or could not be proven at all).
enum class Fallback { never, on_failure, on_unverified };

struct StepEvent;  // see below

struct Options {
  int p = 2;                       // root: X ~ A^{-1/p}; p >= 1
  double target = 1e-3;            // stop when the tracked bound of ||X^p A - I|| reaches this (0: budget only)
  int max_gemms = 0;               // budget in GEMM calls, never exceeded (0: no GEMM budget)
  int max_steps = 0;               // budget in steps (0: at most kDefaultStepLimit)
  int degree = 0;                  // polynomial degree of q: 1..4 (a table of it must exist), or 0 = the cheaper of 1, 2
  Precond precond = Precond::frobenius;
  double ridge = 0;                // iterate on A + ridge I (changes the result by design)
  double l_target = 0;             // floor for the normalised lower bound, by a diagonal shift (changes A)
  // Where to start: a Gershgorin bound when A is diagonally dominant enough; else these hints; else the
  // runtime bounds both ends of the spectrum by Cholesky factorisations in double on the plan's device
  // (LAPACK on the CPU, cuSOLVER on a GPU: the host sees a few numbers per member): about three n^3/3
  // factorisations and four synchronisations, so callers who know their spectrum should pass a hint.
  // Without that factorisation, the upper end is min(||A||_inf, ||A||_F, lambda_max_hint), tightened to
  // ||A^2||_F^{1/2} (rounding included) from the first step's own product Y_0^2 where that step forms one
  // (degree >= 2; f32/f64 storage with native products): no extra GEMM, one more synchronisation.
  double lambda_min_hint = 0;      // caller's lower bound of lambda_min(A) (> 0 to use)
  double kappa_hint = 0;           // caller's estimate of cond(A) (> 1 to use)
  double lambda_max_hint = 0;      // caller's upper bound of lambda_max(A) (> 0 to use; spares a norm pass)
  ApplyMode mode = ApplyMode::automatic;
  int reuse_count = 1;             // how many times the caller will apply the same A (biases toward materialize)
  int symmetrize_every = 1;        // symmetrise the residual every k steps (0: never)
  bool renormalize = false;        // re-centre the residual on its trace when the tables' guard G3 allows
  double symmetry_tolerance = -1;  // max |a_ij - a_ji| / max|a|; < 0: 100 unit roundoffs of A's dtype
  ScheduleSource schedule_source = ScheduleSource::compiled;
  std::string schedule_file;       // JSON tables when schedule_source == json_file
  // Tables when schedule_source == embedded: the `kScheduleSet` of a header pe_add_schedules generated
  // (e.g. &pe::my_tables::kScheduleSet); validated on first use, must outlive every call that uses it.
  const CompiledScheduleSet* embedded_schedules = nullptr;
  Device device = Device::cpu;     // must match the views' device
  void* stream = nullptr;          // cudaStream_t for Device::cuda
  ComputeMode compute = ComputeMode::native;
  DType storage = DType::f32;      // iteration dtype; used only when storage_from_input is false
  bool storage_from_input = true;  // iterate in A's dtype
  // Certify the returned root (roots and materialised applies): a proven upper bound of
  // max_i |lambda_i(X^p A) - 1| for the X actually returned, rounding included (docs/certificate.md).
  // Off: the Report carries only the interval model's bound and certified is false.
  bool verify = true;
  // Precision per step: the first steps of an iteration decide its accuracy (q(Y) is large there, about
  // kappa^{1/2}, and amplifies their rounding, which later steps cannot undo), so they may run one level
  // above the storage (CPU: f64 products for f32 storage; GPU: f32 inside tf32/bf16 runs, f64 for f32)
  // without changing the GEMM count. -1: as many as the drift model says the target needs (automatic);
  // 0: none; k: the first k steps.
  int elevated_steps = -1;
  // Newton steps on the finished root (docs/newton-correction.md), for targets below what the iteration's
  // rounding reaches (floor_eps): each solves the step's Sylvester-type equation through A's
  // eigendecomposition in double (about as costly as the exact root; reported), then verification judges it.
  int newton_steps = 0;            // 0..4; roots and materialised applies
  Fallback fallback = Fallback::on_failure;
  double fallback_factor = 10;     // on_unverified: fall back when verified_eps > fallback_factor * target
  // Test and diagnostics hook, called after every step with host copies (slow; leave empty normally).
  std::function<void(StepEvent&)> on_step;
};

inline constexpr int kDefaultStepLimit = 60;

// How an execution ended, numerically (errors in the input are pe::Error, never a status).
enum class Status {
  ok,                     // the iteration ran its planned steps (see target_reached for the bound)
  fallback,               // the exact root replaced the iteration's result (fallback_reason says why)
  diverged,               // the iteration diverged and no fallback was allowed: X is not usable
  not_positive_definite,  // A is not numerically positive definite in the storage dtype
};
const char* to_string(Status status);

struct Interval {
  double lo = 0;
  double hi = 0;
};

// What one step did (per batch member where it says so).
struct StepRecord {
  int step = 0;
  int degree = 0;                         // of this step's polynomial q
  std::string precision;                  // arithmetic the step ran in (f64, f32, ...)
  int gemms = 0;                          // cumulative GEMM calls after this step
  std::vector<Interval> interval;         // tracked interval of the normalised residual after the step
  std::vector<double> bucket_l_edge;      // bucket used
  std::vector<Interval> rigorous;         // Gershgorin enclosure of the residual (empty when not formed)
};

struct Report {
  Status status = Status::ok;
  int steps = 0;
  int gemms = 0;
  int degree = 0;                         // of the main table (the steps' own degrees are in intervals[])
  std::vector<StepRecord> intervals;      // one record per step
  // The certificate. verified_eps: a proven upper bound of max_i |lambda_i(X^p A) - 1| for the returned X
  // and the matrix it is the root of (A, or A + ridge I / the l_target shift when matrix_changed), worst
  // batch member, rounding included; empty when verification was off, not applicable (direct applies),
  // or failed to prove a bound (notes say why). certified is true exactly when verified_eps holds a value.
  std::optional<double> verified_eps;
  double model_eps = 0;                   // the interval model's bound (exact arithmetic; a planning figure)
  double final_eps = 0;                   // deprecated alias of model_eps (kept for one release)
  double floor_eps = 0;                   // the bound the storage dtype can reach for this A (estimate)
  double drift_eps = 0;                   // the drift model's estimate of what the iteration's rounding adds, for
                                          // the precisions it ran in (a planning figure; docs/precision.md)
  double estimated_residual = 0;          // ||Y - I|| proxy of the last residual formed (before the final step)
  bool certified = false;
  bool target_reached = false;            // verified_eps <= target when verified, else model_eps <= target
  std::string precond;                    // mode used
  std::vector<double> scale;              // u: upper bound the (scaled) matrix was divided by, per member
  std::vector<double> l0;                 // starting lower bound, per member
  std::string l0_source;                  // gershgorin | lambda_min_hint | kappa_hint | cholesky_estimate (worst member)
  double ridge = 0;
  std::vector<double> shift;              // l_target diagonal shift (in units of A), per member
  bool matrix_changed = false;            // ridge or shift made the root that of a modified A
  std::string mode;                       // root | materialize | direct
  std::string storage;                    // f32 | f64 | bf16 | f16
  std::string backend;                    // cpu | cuda
  std::string schedules;                  // compiled | file path
  bool fallback = false;
  std::string fallback_reason;
  double seconds = 0;
  double verify_seconds = 0;              // of which: the verification
  int newton_steps = 0;                   // Newton corrections applied to X
  int newton_gemms = 0;                   // their f64 products (besides one eigendecomposition), not in gemms
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

// What a plan is made for: the shape of A (or of B), its dtype and device. Layout, leading dimension and
// batch stride may differ from one execute to the next; rows, cols, batch, dtype and device may not.
struct MatrixDesc {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t batch = 1;
  DType dtype = DType::f64;
  Device device = Device::cpu;
};
MatrixDesc describe(const Matrix& m);

namespace detail {
class RootEngine;
}

// A plan for X <- A^{-1/p}: made once for (shape, batch, dtype, options, device, stream), it holds the
// backend with its handles and workspace, the schedule tables and the verifier; execute() then allocates
// nothing (on the GPU: no cudaMalloc) and loads no tables. Thread safety: one plan must not execute on two
// threads at once; distinct plans are independent and may run concurrently (they share only the immutable
// compiled tables).
class RootPlan {
 public:
  RootPlan(const MatrixDesc& a, const Options& options);
  ~RootPlan();
  RootPlan(RootPlan&&) noexcept;
  RootPlan& operator=(RootPlan&&) noexcept;
  RootPlan(const RootPlan&) = delete;
  RootPlan& operator=(const RootPlan&) = delete;

  Report execute(const Matrix& a, MutableMatrix x);
  // The same work without waiting for any of it, for CUDA graph capture (cudaStreamBeginCapture on
  // options.stream, docs/graphs.md) and for overlapping host work with the GPU: enqueue issues everything on
  // the plan's stream and reads nothing back; collect() waits for options.stream, reads every check once and
  // returns the Report (a pe::Error where the input was not finite or symmetric, or the result not finite;
  // status diverged where the checks saw the iteration leave its interval). What it gives up to read
  // nothing: the spectrum comes from options.lambda_min_hint and lambda_max_hint alone (both needed, and
  // trusted), and there is no certificate and no fallback, so it needs options.verify = false,
  // options.fallback = never, precond none or frobenius, newton_steps = 0, no renormalize, no on_step, and
  // on a GPU device views. Capture only after one enqueue has run outside the capture (it sizes the
  // workspace and the pinned buffers). A captured enqueue may be replayed any number of times, each replay
  // collected after it completes (launched on another stream: synchronise that first), until the next
  // execute or enqueue on this plan.
  void enqueue(const Matrix& a, MutableMatrix x);
  Report collect();
  const Options& options() const;
  const MatrixDesc& shape() const;

 private:
  std::unique_ptr<detail::RootEngine> engine_;
};

// A plan for Z <- A^{-1/p} B (A: n x n, B: n x k), choosing materialise or direct once at plan time.
class ApplyPlan {
 public:
  ApplyPlan(const MatrixDesc& a, const MatrixDesc& b, const Options& options);
  ~ApplyPlan();
  ApplyPlan(ApplyPlan&&) noexcept;
  ApplyPlan& operator=(ApplyPlan&&) noexcept;
  ApplyPlan(const ApplyPlan&) = delete;
  ApplyPlan& operator=(const ApplyPlan&) = delete;

  Report execute(const Matrix& a, const Matrix& b, MutableMatrix z);
  // As RootPlan::enqueue / collect.
  void enqueue(const Matrix& a, const Matrix& b, MutableMatrix z);
  Report collect();
  const Options& options() const;
  bool direct() const;  // the mode chosen at plan time

 private:
  std::unique_ptr<detail::RootEngine> engine_;
};

// X <- A^{-1/p} for symmetric positive definite A (every batch member): plan, execute once.
Report inverse_root(const Matrix& a, MutableMatrix x, const Options& options);

// Z <- A^{-1/p} B for symmetric positive definite A (n x n) and B (n x k).
Report apply_inverse_root(const Matrix& a, const Matrix& b, MutableMatrix z, const Options& options);

// The Report as one JSON object.
std::string to_json(const Report& report);

// Parses a precondition mode name (none, frobenius, jacobi, ruiz, aol); throws pe::Error otherwise.
Precond parse_precond(const std::string& name);
const char* to_string(Precond mode);
Fallback parse_fallback(const std::string& name);  // never | on_failure | on_unverified
const char* to_string(Fallback fallback);

}  // namespace pe
