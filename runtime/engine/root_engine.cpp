#include "root_engine.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>

#include "backend_factory.hpp"
#include "formats.hpp"
#include "interval.hpp"
#include "pe/detail/format.hpp"
#include "drift.hpp"
#include "plan/step_planner.hpp"
#include "verify/rounding.hpp"
#include "view_checks.hpp"

namespace pe::detail {

namespace {

using Clock = std::chrono::steady_clock;

// Plans are also tried to this fraction of the target (and its square): a few more steps leave room for
// the iteration's rounding, which the drift model predicts.
constexpr double kDriftShare = 0.5;
// The share of the room left by the model and the floor that the drift prediction may use (it predicts
// the measured eps within a factor of about 3 on the corpus: docs/precision.md).
constexpr double kDriftSafety = 0.5;
// The time of a product one precision level up, in products of the storage (f64 vs f32 BLAS on a CPU).
constexpr double kElevatedCost = 2;
// The plan cache: l0 is rounded down to a grid of 2^(1/kPlanGridSteps); a plan keeps this many choices.
constexpr double kPlanGridSteps = 16;
constexpr std::size_t kPlanCacheEntries = 16;
// The ||A_n^2||_F^{1/2} upper end is used where it is below this (a smaller gain saves no step).
constexpr double kUpperEndWorthwhile = 0.98;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class View>
HostMat host_view(const View& v) {
  return HostMat{const_cast<void*>(static_cast<const void*>(v.data)), v.dtype, v.rows, v.cols, v.ld, v.batch,
                 v.stride, v.layout};
}

// A backend matrix over caller memory (device views): it must already be in the storage dtype and
// column-major (a symmetric matrix may be row-major: its transpose is itself).
template <class View>
Mat wrap_device(const char* name, const View& v, DType storage, bool symmetric) {
  if (v.dtype != storage)
    throw Error(std::string(name) + ": device views must be in the storage dtype " + to_string(storage) + ", got " +
                to_string(v.dtype));
  if (v.layout != Layout::col_major && !symmetric) throw Error(std::string(name) + ": device views must be column-major");
  return Mat{const_cast<void*>(static_cast<const void*>(v.data)), v.rows, v.cols, v.ld, v.batch,
             v.batch > 1 ? v.stride : v.ld * v.cols};
}

template <class View>
void move_in(Backend& backend, const char* name, const View& v, Mat& dst, bool symmetric) {
  if (v.device == Device::cpu)
    backend.upload(host_view(v), dst);
  else
    backend.copy(wrap_device(name, v, backend.storage(), symmetric), dst);
}

void move_out(Backend& backend, const Mat& src, const MutableMatrix& v, bool symmetric) {
  if (v.device == Device::cpu) {
    backend.download(src, host_view(v));
  } else {
    Mat dst = wrap_device("output", v, backend.storage(), symmetric);
    backend.copy(src, dst);
  }
}

std::string shape_text(std::int64_t rows, std::int64_t cols, std::int64_t batch) {
  return std::to_string(rows) + " x " + std::to_string(cols) + " (batch " + std::to_string(batch) + ")";
}

// Checks finiteness, symmetry and a positive diagonal on a double host copy (column-major, n x n per
// member). `ridge` is added to the diagonal first.
void check_symmetric_finite(const std::vector<double>& a, std::int64_t n, std::int64_t batch, double tolerance,
                            double ridge, DType storage, const Matrix* caller) {
  for (std::int64_t k = 0; k < batch; ++k) {
    const double* m = a.data() + k * n * n;
    double max_abs = 0;
    for (std::int64_t i = 0; i < n * n; ++i) {
      if (!std::isfinite(m[i]))
        throw Error("a: entry (" + std::to_string(i % n) + ", " + std::to_string(i / n) + ") of batch member " +
                    std::to_string(k) + " is " + format_number(m[i]) + " in the " + to_string(storage) +
                    " storage; expected finite values");
      max_abs = std::max(max_abs, std::abs(m[i]));
    }
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = j + 1; i < n; ++i) {
        const double d = std::abs(m[i + j * n] - m[j + i * n]);
        if (d > tolerance * max_abs)
          throw Error("a: not symmetric: |a(" + std::to_string(i) + "," + std::to_string(j) + ") - a(" +
                      std::to_string(j) + "," + std::to_string(i) + ")| = " + format_number(d) + " exceeds " +
                      format_number(tolerance) + " * max|a| (batch member " + std::to_string(k) + ")");
      }
    for (std::int64_t i = 0; i < n; ++i) {
      const double stored = m[i + i * n];
      if (stored + ridge > 0) continue;
      const std::string entry = "a: diagonal entry (" + std::to_string(i) + ", " + std::to_string(i) +
                                ") of batch member " + std::to_string(k) + " is ";
      // A positive entry of the caller's that the storage dtype rounded to 0 is not the caller's A.
      const double given = caller && caller->device == Device::cpu ? host_entry(*caller, k, i, i) : stored;
      if (given > 0)
        throw Error(entry + format_number(given) + ", which underflows to " + format_number(stored) + " in the " +
                    to_string(storage) + " storage (smallest positive normal " +
                    format_number(storage_range(storage).smallest_normal) +
                    "); expected values the storage can hold: store in f64 (options.storage) or rescale a");
      throw Error(entry + format_number(given) + ", so A is not positive definite");
    }
  }
}

}  // namespace

void check_options(const Options& o) {
  if (o.p < 1 || o.p > 64) throw Error("options.p = " + std::to_string(o.p) + ": expected an integer in [1, 64]");
  if (!(o.target >= 0) || !std::isfinite(o.target) || o.target >= 1)
    throw Error("options.target = " + format_number(o.target) + ": expected 0 (budget only) or a bound in (0, 1)");
  if (o.max_gemms < 0) throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + ": expected >= 0");
  if (o.max_steps < 0) throw Error("options.max_steps = " + std::to_string(o.max_steps) + ": expected >= 0");
  if (o.target == 0 && o.max_gemms == 0 && o.max_steps == 0)
    throw Error("options.target = 0 (budget only) needs a budget: options.max_gemms or options.max_steps > 0");
  if (o.degree < 0 || o.degree > 4)
    throw Error("options.degree = " + std::to_string(o.degree) + ": expected 0 (automatic) or 1..4");
  if (!(o.ridge >= 0) || !std::isfinite(o.ridge)) throw Error("options.ridge = " + format_number(o.ridge) + ": expected >= 0");
  if (!(o.l_target >= 0 && o.l_target < 1))
    throw Error("options.l_target = " + format_number(o.l_target) + ": expected a value in [0, 1)");
  if (!(o.lambda_min_hint >= 0) || !std::isfinite(o.lambda_min_hint))
    throw Error("options.lambda_min_hint = " + format_number(o.lambda_min_hint) + ": expected >= 0");
  if (!(o.lambda_max_hint >= 0) || !std::isfinite(o.lambda_max_hint))
    throw Error("options.lambda_max_hint = " + format_number(o.lambda_max_hint) + ": expected >= 0");
  if (o.lambda_max_hint > 0 && o.lambda_min_hint > o.lambda_max_hint)
    throw Error("options.lambda_min_hint = " + format_number(o.lambda_min_hint) + " exceeds options.lambda_max_hint = " +
                format_number(o.lambda_max_hint));
  if (!(o.kappa_hint == 0 || o.kappa_hint >= 1) || !std::isfinite(o.kappa_hint))
    throw Error("options.kappa_hint = " + format_number(o.kappa_hint) + ": expected 0 (none) or >= 1");
  if (o.symmetrize_every < 0)
    throw Error("options.symmetrize_every = " + std::to_string(o.symmetrize_every) + ": expected >= 0");
  if (o.reuse_count < 1) throw Error("options.reuse_count = " + std::to_string(o.reuse_count) + ": expected >= 1");
  if (!(o.fallback_factor >= 1) || !std::isfinite(o.fallback_factor))
    throw Error("options.fallback_factor = " + format_number(o.fallback_factor) + ": expected a finite value >= 1");
  if (o.elevated_steps < -1 || o.elevated_steps > kDefaultStepLimit)
    throw Error("options.elevated_steps = " + std::to_string(o.elevated_steps) + ": expected -1 (automatic), 0 or a step count up to " +
                std::to_string(kDefaultStepLimit));
  if (o.newton_steps < 0 || o.newton_steps > 4)
    throw Error("options.newton_steps = " + std::to_string(o.newton_steps) + ": expected 0..4");
  if (o.fallback == Fallback::on_unverified && !o.verify)
    throw Error("options.fallback = on_unverified needs options.verify = true (it acts on the verified bound)");
  if (o.schedule_source == ScheduleSource::json_file && o.schedule_file.empty())
    throw Error("options.schedule_file is empty but schedule_source is json_file");
  if (o.schedule_source == ScheduleSource::embedded && o.embedded_schedules == nullptr)
    throw Error("options.embedded_schedules is null but schedule_source is embedded");
  check_precond_mode(o.precond, o.p);
}

RootEngine::RootEngine(const MatrixDesc& a, const MatrixDesc* b, const Options& options, const ScheduleSet* tables)
    : o_(options), a_desc_(a) {
  init(b, tables, nullptr);
}

RootEngine::RootEngine(const MatrixDesc& a, const MatrixDesc* b, const Options& options, const ScheduleSet* tables,
                       Backend& shared)
    : o_(options), a_desc_(a) {
  init(b, tables, &shared);
}

void RootEngine::init(const MatrixDesc* b, const ScheduleSet* tables, Backend* shared) {
  const MatrixDesc& a = a_desc_;
  check_options(o_);
  if (a.rows < 1 || a.cols < 1) throw Error("a: shape " + shape_text(a.rows, a.cols, a.batch) + " must be at least 1 x 1");
  if (a.rows != a.cols)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is not square");
  if (a.batch < 1) throw Error("a: batch count " + std::to_string(a.batch) + " must be >= 1");
  if (!shared && a.dtype != DType::f32 && a.dtype != DType::f64)
    throw Error(std::string("a: dtype ") + to_string(a.dtype) + " is not supported (expected f32 or f64)");
  if (a.device != Device::cpu && a.device != o_.device)
    throw Error(std::string("a: view is on device ") + to_string(a.device) + " but options.device is " +
                to_string(o_.device));
  n_ = a.rows;
  batch_ = a.batch;
  if (b) {
    if (b->rows != n_ || b->batch != batch_ || b->cols < 1)
      throw Error("b: shape " + shape_text(b->rows, b->cols, b->batch) + " does not fit a (" + std::to_string(n_) +
                  " rows, batch " + std::to_string(batch_) + ")");
    b_desc_ = *b;
    k_ = b->cols;
  }
  tables_ = tables ? tables : &schedule_set_for(o_.schedule_source, o_.schedule_file, o_.embedded_schedules, loaded_);
  bool have_p = false;
  for (const auto& t : tables_->tables)
    if (t.p == o_.p) {
      have_p = true;
      smallest_edge_ = std::min(smallest_edge_, t.entries.front().l_edge);
    }
  if (!have_p) throw Error("the schedule tables (" + tables_->origin + ") have no bucket table for p = " + std::to_string(o_.p));
  if (o_.degree > 0 && !tables_->find(o_.p, o_.degree))
    throw Error("options.degree = " + std::to_string(o_.degree) + ": the schedule tables (" + tables_->origin +
                ") have no bucket table for p = " + std::to_string(o_.p) + " of that degree");

  const DType storage = shared ? shared->storage() : o_.storage_from_input ? a.dtype : o_.storage;
  if (shared) {
    be_ = shared;
  } else {
    be_owned_ = make_backend(o_.device, storage, o_.compute, o_.stream);
    be_ = be_owned_.get();
  }
  direct_ = b && decide_direct();
  int max_degree = 1;
  for (const auto& t : tables_->tables)
    if (t.p == o_.p) max_degree = std::max(max_degree, t.degree);
  a_in_ = be_->allocate(n_, n_, batch_);
  a_n_ = be_->allocate(n_, n_, batch_);
  if (b) {
    b_in_ = be_->allocate(n_, k_, batch_);
    z_ = be_->allocate(n_, k_, batch_);
  }
  pws_ = allocate_precond_workspace(*be_, n_, batch_);
  // The companion in double (verification, Newton correction, elevated steps of f32 storage).
  const bool elevate_f32 = o_.elevated_steps != 0 && storage == DType::f32 && o_.compute == ComputeMode::native;
  if ((o_.verify || o_.newton_steps > 0 || elevate_f32) && !(direct_ && !elevate_f32)) {
    if (storage == DType::f64) {
      wide_ = be_;
    } else {
      wide_owned_ = make_backend(o_.device, DType::f64, ComputeMode::native, o_.stream);
      wide_ = wide_owned_.get();
    }
  }
  if (o_.elevated_steps != 0 && storage != DType::f64) {
    if (elevate_f32) {
      elevated_ = wide_;
    } else {
      elevated_owned_ = make_backend(o_.device, DType::f32, ComputeMode::native, o_.stream);
      elevated_ = elevated_owned_.get();
    }
  }
  DriverShape shape{n_, batch_, o_.p, max_degree, direct_ ? StepOutput::direct : StepOutput::materialize, k_,
                    ResidualForm::coupled};
  driver_ = std::make_unique<Driver>(*be_, shape, elevated_);
  // Direct applies keep a root buffer for the fallback's exact root only.
  x_ = direct_ ? be_->allocate(n_, n_, batch_) : driver_->x();
  diagonal_.resize(static_cast<std::size_t>(n_ * batch_));
  // The diagonal modes compute their scaling on the host from A in double; nothing else copies A there.
  if (o_.precond == Precond::jacobi || o_.precond == Precond::ruiz || o_.precond == Precond::aol)
    host_a_.resize(static_cast<std::size_t>(n_ * n_ * batch_));
  if ((o_.verify || o_.newton_steps > 0) && !direct_) {
    a64_ = wide_->allocate(n_, n_, batch_);
    x64_ = wide_->allocate(n_, n_, batch_);
    if (o_.verify)
      certifier_ = std::make_unique<RootVerifier>(*wide_, n_, batch_, o_.p, verify_arithmetic_for(storage));
    if (o_.newton_steps > 0) newton_ = std::make_unique<NewtonCorrection>(*wide_, n_, batch_, o_.p);
  }
  // Without a hint that settles the lower end, a dense A needs the Cholesky bounds: their workspace is made
  // with the plan, so that executes allocate nothing.
  if (may_need_cholesky_bounds(o_.lambda_min_hint, o_.kappa_hint)) ensure_spectrum_workspace();
}

bool RootEngine::may_need_cholesky_bounds(double lambda_min_hint, double kappa_hint) const {
  const bool diagonal_mode = o_.precond == Precond::jacobi || o_.precond == Precond::ruiz || o_.precond == Precond::aol;
  return !(lambda_min_hint > 0 && !diagonal_mode) && !(kappa_hint > 1);
}

void RootEngine::ensure_spectrum_workspace() {
  if (pws_.wide) return;
  if (!wide_) {
    wide_owned_ = make_backend(o_.device, DType::f64, ComputeMode::native, o_.stream);
    wide_ = wide_owned_.get();
  }
  // The verifier's copy of X is free until the iteration has finished: the factor borrows it.
  detail::ensure_spectrum_workspace(pws_, *wide_, n_, batch_, x64_.data ? &x64_ : nullptr);
}

RootEngine::~RootEngine() = default;

// Materialise or carry Z, by the planned GEMM work in units of one n x n x n product. Direct apply carries
// Z (n x k) instead of X: each step saves the X update but pays q(Y) Z (k/n of a product), and the whole
// iteration is repeated for every reuse of A; materialising pays the iteration once and then one X B
// product (k/n) per reuse. Decided when the plan is made, from the hints when there are any (else for
// kappa = 1e4): the step counts rarely change the answer, which the shapes decide.
PlanRequest RootEngine::plan_request(DType storage, double l0, double target, int max_gemms, StepOutput output) const {
  PlanRequest req;
  req.p = o_.p;
  req.storage = storage;
  req.start = {l0, 1.0};
  req.target = target;
  req.max_gemms = max_gemms;
  req.max_steps = o_.max_steps > 0 ? o_.max_steps : kDefaultStepLimit;
  req.output = output;
  if (o_.degree > 0) req.degrees = {o_.degree};
  return req;
}

bool RootEngine::decide_direct() const {
  if (o_.mode == ApplyMode::direct) return true;
  if (o_.mode == ApplyMode::materialize) return false;
  const DType storage = be_ ? be_->storage() : o_.storage_from_input ? a_desc_.dtype : o_.storage;
  double l0 = 1e-4;
  if (o_.kappa_hint > 1) l0 = 1 / o_.kappa_hint;
  if (o_.lambda_min_hint > 0 && o_.lambda_max_hint > 0) l0 = o_.lambda_min_hint / o_.lambda_max_hint;
  PlanRequest req = plan_request(storage, std::max(l0, smallest_edge_), o_.target, 0, StepOutput::materialize);
  const StepPlan m = plan_steps(*tables_, req);
  req.output = StepOutput::direct;
  const StepPlan d = plan_steps(*tables_, req);
  const double ratio = static_cast<double>(k_) / static_cast<double>(n_);
  // Skinny products count k/n of a square one.
  double direct_work = 0;
  for (std::size_t t = 0; t < d.steps.size(); ++t) {
    const int degree = d.steps[t].degree;
    direct_work += t + 1 == d.steps.size() ? terminal_direct_gemms(degree) * ratio
                                           : q_form_gemms(degree) + residual_update_gemms(o_.p) + ratio;
  }
  const double materialize_work = m.gemms + o_.reuse_count * ratio;
  return o_.reuse_count * direct_work < materialize_work;
}

void RootEngine::check_a(const Matrix& a) const {
  check_view("a", a, o_.device, Batching::allowed);
  if (a.rows != a_desc_.rows || a.cols != a_desc_.cols || a.batch != a_desc_.batch || a.dtype != a_desc_.dtype ||
      a.device != a_desc_.device)
    throw Error("a: " + shape_text(a.rows, a.cols, a.batch) + " " + to_string(a.dtype) + " on " + to_string(a.device) +
                " does not match the plan's " + shape_text(a_desc_.rows, a_desc_.cols, a_desc_.batch) + " " +
                to_string(a_desc_.dtype) + " on " + to_string(a_desc_.device));
}

void RootEngine::move_in_a(const Matrix& a) {
  move_in(*be_, "a", a, a_in_, true);
  if (!a64_.data) return;
  // The verification copy holds the caller's values exactly (f32 and f64 are exact in double).
  if (a.device == Device::cpu)
    wide_->upload(host_view(a), a64_);
  else
    wide_->import_from(*be_, wrap_device("a", a, be_->storage(), true), a64_);
}

// Did storing A round it (an f64 A in f32 storage)? Then the root is that of the rounded matrix.
void RootEngine::note_input_rounding(const Matrix* caller) {
  input_rounded_ = false;
  if (!(unit_roundoff(be_->storage()) > unit_roundoff(a_desc_.dtype))) return;
  input_rounded_ = !(caller && caller->device == Device::cpu);  // device views: assume so
  if (input_rounded_) return;
  const Format format = storage_format(be_->storage());
  for (std::int64_t k = 0; k < batch_; ++k)
    for (std::int64_t j = 0; j < n_; ++j)
      for (std::int64_t i = 0; i < n_; ++i) {
        const double v = host_entry(*caller, k, i, j);
        if (round_to(format, v) != v) {
          input_rounded_ = true;
          return;
        }
      }
}

double RootEngine::symmetry_tolerance() const {
  // Checked on A as stored: a storage narrower than the input (bf16, f16) may round two entries that agree
  // within the input's tolerance to neighbouring values, 2 u_storage |a_ij| apart.
  const double input_unit = unit_roundoff(a_desc_.dtype), storage_unit = unit_roundoff(be_->storage());
  const double rounding_asymmetry = storage_unit > input_unit ? 2 * storage_unit : 0;
  return o_.symmetry_tolerance >= 0 ? o_.symmetry_tolerance : 100 * input_unit + rounding_asymmetry;
}

// Finite, symmetric within the tolerance, a positive diagonal: checked on the backend (one pass, a few
// scalars and the diagonal come to the host); only a matrix that fails is copied to the host, to name the
// entry that fails.
void RootEngine::validate_input(const Mat& a, const Matrix* caller) {
  const double tolerance = symmetry_tolerance();
  note_input_rounding(caller);
  enum { kNonfinite = 0, kAsymmetry = 1, kMagnitude = 2 };
  // An execute has just checked the caller's values (check_input_values: every host entry, or the stored
  // copy of a device view), so only internal runs (no caller view) count non-finite entries here.
  if (!caller) be_->count_nonfinite(a, kNonfinite);
  be_->max_asymmetry(a, kAsymmetry, kMagnitude);
  be_->extract_diagonal(a, pws_.diag);
  const auto slots = be_->fetch_scalars();
  be_->download(pws_.diag, HostMat{diagonal_.data(), DType::f64, n_, 1, n_, batch_, n_, Layout::col_major});
  bool passes = true;
  for (std::size_t k = 0; k < static_cast<std::size_t>(batch_) && passes; ++k) {
    passes = (caller || slots[kNonfinite][k] == 0) && slots[kAsymmetry][k] <= tolerance * slots[kMagnitude][k];
    for (std::int64_t i = 0; i < n_ && passes; ++i) passes = diagonal_[k * static_cast<std::size_t>(n_) + static_cast<std::size_t>(i)] + o_.ridge > 0;
  }
  if (!host_a_.empty() || !passes) {
    // The diagonal modes read A on the host anyway; a failing A is read there to name what fails.
    host_a_.resize(static_cast<std::size_t>(n_ * n_ * batch_));
    be_->download(a, HostMat{host_a_.data(), DType::f64, n_, n_, n_, batch_, n_ * n_, Layout::col_major});
  }
  if (passes) return;
  check_symmetric_finite(host_a_, n_, batch_, tolerance, o_.ridge, be_->storage(), caller);
  throw Error("a: failed the input checks on the " + std::string(be_->name()) +
              " backend (non-finite entries, asymmetry beyond options.symmetry_tolerance or a diagonal entry <= 0), "
              "but not on the host copy: expected a finite symmetric matrix with a positive diagonal");
}

// Steps and precision together, for a start interval [l0, 1]: the planner minimises GEMMs on the
// exact-arithmetic model, the drift model predicts what rounding adds (and how many leading steps to run
// one level up). Degrees 3 and 4 have large alternating coefficients whose rounding can dominate in low
// precision, so with the degree left open the plan restricted to degrees 1 and 2 competes on the predicted
// bound. l0 is first rounded down to a grid of ratio 2^(1/16): a plan for a wider interval covers the
// narrower one (the driver still follows the actual interval bucket by bucket), and the choice is cached
// per (l0 on the grid, target, budget, input rounding), so repeated executes skip the planner.
const RootEngine::PlanChoice& RootEngine::choose_plan(double l0, double target, int max_gemms) {
  double key_l0 = std::exp2(std::floor(std::log2(l0) * kPlanGridSteps) / kPlanGridSteps);
  key_l0 = std::min(l0, std::max(key_l0, smallest_edge_));
  for (const PlanChoice& c : plan_cache_)
    if (c.request.start.lo == key_l0 && c.request.target == target && c.request.max_gemms == max_gemms &&
        c.input_rounded == input_rounded_)
      return c;
  const PlanRequest req = plan_request(be_->storage(), key_l0, target, max_gemms,
                                       direct_ ? StepOutput::direct : StepOutput::materialize);
  // The floor for this grid point (the report's floor_eps is for the actual l0; this one is no smaller).
  double floor_eps = root_floor_estimate(be_->storage(), o_.p, 1 / key_l0);
  if (input_rounded_) floor_eps += unit_roundoff(be_->storage()) / key_l0;
  const double u_s = unit_roundoff(product_input_format(be_->storage(), be_->compute()));
  const double u_e = elevated_ ? unit_roundoff(elevated_->storage()) : u_s;
  auto evaluate = [&](const PlanRequest& r) {
    PlanChoice c;
    c.plan = plan_steps(*tables_, r);
    const DriftModel drift = drift_model(*tables_, c.plan, o_.p, be_->storage(), n_);
    const int steps = static_cast<int>(c.plan.steps.size());
    // What the target leaves to the iteration's rounding once the model's bound and the result's own
    // rounding to the storage (the floor) are spent. The drift model is good to a factor of a few across
    // matrices: it gets half of that room.
    const double room = kDriftSafety * std::max(target - c.plan.final_bound - floor_eps, 0.0);
    c.elevated = !elevated_ ? 0
                 : o_.elevated_steps >= 0 ? std::min(o_.elevated_steps, steps)
                 : target > 0 ? elevated_steps_for(drift, room, 1.0, u_s, u_e)
                              : 0;
    c.drift = drift.predicted(c.elevated, u_s, u_e);
    c.predicted = c.plan.final_bound + c.drift + floor_eps;
    // Cost in storage-precision GEMMs: an elevated step's products cost about kElevatedCost of them.
    c.cost = c.plan.gemms;
    for (int t = 0; t < c.elevated; ++t) c.cost += (kElevatedCost - 1) * c.plan.steps[static_cast<std::size_t>(t)].gemms;
    return c;
  };
  // Candidates: the plan to the target, and plans to a fraction of it (more steps leave more room for
  // rounding), with every degree and (degree left open) with degrees 1 and 2 only. The cheapest among those
  // predicted to meet the target wins (GEMMs, elevated ones weighted by kElevatedCost); else the best
  // prediction.
  std::vector<PlanChoice> candidates;
  for (double fraction : {1.0, kDriftShare, kDriftShare * kDriftShare}) {
    if (target <= 0 && fraction < 1) break;
    PlanRequest r = req;
    r.target = target * fraction;
    candidates.push_back(evaluate(r));
    if (o_.degree == 0 && target > 0) {
      r.degrees = {1, 2};
      candidates.push_back(evaluate(r));
    }
  }
  auto better = [&](const PlanChoice& x, const PlanChoice& y) {
    const bool xo = target > 0 && x.predicted <= target, yo = target > 0 && y.predicted <= target;
    if (xo != yo) return xo;
    if (xo) return std::make_tuple(x.cost, x.predicted) < std::make_tuple(y.cost, y.predicted);
    if (target <= 0) return std::make_tuple(x.plan.final_bound, x.plan.gemms) < std::make_tuple(y.plan.final_bound, y.plan.gemms);
    return x.predicted < y.predicted;
  };
  PlanChoice chosen = candidates.front();
  for (const PlanChoice& c : candidates)
    if (better(c, chosen)) chosen = c;
  chosen.request = req;
  chosen.input_rounded = input_rounded_;
  if (plan_cache_.size() >= kPlanCacheEntries) plan_cache_.erase(plan_cache_.begin());
  plan_cache_.push_back(std::move(chosen));
  return plan_cache_.back();
}

RootEngine::UpperEnd RootEngine::tighten_upper_end(const Preconditioned& pre, std::vector<double>& l0, double target,
                                                   int max_gemms, std::vector<std::string>& notes) {
  UpperEnd out;
  out.plan_l0 = *std::min_element(l0.begin(), l0.end());
  const DType storage = be_->storage();
  // The bound below needs products rounded as the storage's (or the level up's) own arithmetic: no
  // reduced-precision GEMM inputs (tf32/bf16/f16 compute or storage).
  if (be_->compute() != ComputeMode::native || (storage != DType::f32 && storage != DType::f64)) return out;
  if (std::all_of(pre.upper_proven.begin(), pre.upper_proven.end(), [](bool proven) { return proven; })) return out;
  // The level the first step runs on, and whether it forms Y^2 at all (degree >= 2, not a direct apply's
  // only, terminal step).
  auto level_using_square = [&](const PlanChoice& c) {
    const bool uses = !c.plan.steps.empty() && c.plan.steps.front().degree >= 2 && !(direct_ && c.plan.steps.size() == 1);
    return uses ? (c.elevated > 0 ? 1 : 0) : -1;
  };
  const int level = level_using_square(choose_plan(out.plan_l0, target, max_gemms));
  if (level < 0) return out;
  enum { kFrobeniusY = 0, kFrobeniusSquare = 1, kAsymmetry = 2, kMagnitude = 3 };
  Backend& lb = driver_->form_first_square(level, a_n_, kFrobeniusY, kFrobeniusSquare, kAsymmetry, kMagnitude);
  out.square_level = level;
  const auto slots = lb.fetch_scalars();
  // lambda_max(S) <= ||S||_2 <= ||S^2||_F^{1/2} for the symmetric part S = (Y + Y^T)/2 = Y - K of Y = A_n as
  // stored, and ||S^2||_F <= ||Y^2||_F + 2 ||Y||_F ||K||_F + ||K||_F^2, ||K||_F <= n max|y_ij - y_ji| / 2.
  // The computed C = fl(Y Y) has |C - Y Y| <= gamma_n |Y| |Y| + n eta entrywise (any summation order,
  // eta: the smallest subnormal), so ||Y Y||_F <= ||C||_F + gamma_n ||Y||_F^2 + n^2 eta (taken as 2 n^3 eta).
  // The norms are sums of squares in double (every backend), of relative error below gamma_{n^2 + 2}
  // (u of double).
  const double n = static_cast<double>(n_);
  const double nu = n * unit_roundoff(lb.storage());
  if (!(nu < 0.25)) return out;
  const double gamma_n = verify::up(nu / (1 - nu) * (1 + 4 * verify::kUnitRoundoff));
  const double norm_factor = verify::relative_error_factor((n * n + 2) * verify::kUnitRoundoff);
  const double eta = lb.storage() == DType::f64 ? verify::kSmallestSubnormal : 0x1p-149;
  const double underflow = verify::up(n * n * n * eta * 2);
  out.t.assign(l0.size(), 1.0);
  bool gains = false;
  for (std::size_t k = 0; k < l0.size(); ++k) {
    if (pre.upper_proven[k]) continue;
    const double frobenius_y = verify::up(slots[kFrobeniusY][k] * norm_factor);
    const double frobenius_square = verify::up(slots[kFrobeniusSquare][k] * norm_factor);
    const double k_frobenius = verify::up(n * slots[kAsymmetry][k] / 2 * (1 + 2 * verify::kUnitRoundoff));
    const double yy = verify::up(frobenius_square + verify::up(gamma_n * frobenius_y * frobenius_y) + underflow);
    const double s2 = verify::up(yy + verify::up(2 * frobenius_y * k_frobenius) + verify::up(k_frobenius * k_frobenius));
    const double t = verify::up(std::sqrt(s2) * (1 + 2 * verify::kUnitRoundoff));
    // Not finite (overflow, a NaN the input checks let through) or no real gain: keep the upper end 1.
    if (!(t < kUpperEndWorthwhile)) continue;
    out.t[k] = std::max(t, l0[k]);  // (a lambda_min_hint above the bound: keep the interval non-empty)
    gains = true;
  }
  if (!gains) {
    out.t.clear();
    return out;  // (the first step still uses the prepared square)
  }
  double worst_t = 1;
  for (std::size_t k = 0; k < l0.size(); ++k) {
    l0[k] = std::min(1.0, l0[k] / out.t[k]);
    worst_t = std::min(worst_t, out.t[k]);
  }
  const double tightened_l0 = *std::min_element(l0.begin(), l0.end());
  // The plan for the tightened l0, unless its first step would not use the square (another level, or
  // no Y^2): the plan for the wider interval then covers the narrower one.
  if (level_using_square(choose_plan(tightened_l0, target, max_gemms)) == level) out.plan_l0 = tightened_l0;
  notes.push_back("the upper end of the normalised spectrum A_n came from the first step's product: lambda_max(A_n) <= t = "
                  "||A_n^2||_F^{1/2} (rounding included), down to t = " + format_number(worst_t) +
                  " over the members; the iteration ran on A_n / t from l0 = " + format_number(tightened_l0) +
                  " (worst member)");
  return out;
}

Report RootEngine::run(const Mat& a, const Mat* a_exact, const RunOverrides& overrides) {
  enqueued_.pending = false;
  if (a64_.data && !a_exact) wide_->import_from(*be_, a, a64_);
  if (a64_.data && a_exact) wide_->copy(*a_exact, a64_);
  return run_checked(a, nullptr, overrides);
}

Report RootEngine::run_checked(const Mat& a, const Matrix* caller, const RunOverrides& ov) {
  const auto start = Clock::now();
  const int max_gemms = ov.max_gemms.value_or(o_.max_gemms);
  const double target = ov.target.value_or(o_.target);
  Mat* z = direct_ ? &z_ : nullptr;
  if (z) be_->copy(b_in_, *z);
  const auto nb = static_cast<std::size_t>(batch_);

  validate_input(a, caller);
  be_->copy(a, a_n_);
  const PrecondSettings ps = precond_settings(ov);
  if (may_need_cholesky_bounds(ps.lambda_min_hint, ps.kappa_hint)) ensure_spectrum_workspace();  // (made with the plan
                                                                                                 // unless a run drops a hint)
  Preconditioned pre = precondition_spd(*be_, a_n_, diagonal_, host_a_, ps, pws_);
  if (pre.not_positive_definite && unit_roundoff(be_->storage()) > unit_roundoff(a_desc_.dtype))
    pre.failure += " in " + std::string(to_string(be_->storage())) + " storage: rounding A to " +
                   to_string(be_->storage()) + " (unit roundoff " + format_number(unit_roundoff(be_->storage())) +
                   " per entry) moves its eigenvalues by up to that times || |A| ||_2, more than the smallest of them; " +
                   to_string(a_desc_.dtype) + " storage keeps A as given";
  std::vector<double> final_factor(nb);
  for (std::size_t k = 0; k < nb; ++k) final_factor[k] = std::pow(pre.scale[k], -1.0 / o_.p);
  Report report = started_report(pre);
  // GEMMs this call needs besides the iteration: the materialised apply's X B.
  const int extra = (b_desc_ && !z) ? 1 : 0;
  const int budget = max_gemms > 0 ? max_gemms - extra : 0;
  std::vector<double> l0 = pre.l0;
  UpperEnd upper;
  upper.plan_l0 = *std::min_element(l0.begin(), l0.end());
  if (!pre.not_positive_definite && !(max_gemms > 0 && budget <= 0)) {
    upper = tighten_upper_end(pre, l0, target, budget, report.notes);
    for (std::size_t k = 0; k < upper.t.size(); ++k) report.scale[k] *= upper.t[k];
    report.l0 = l0;
  }
  const double worst_l0 = *std::min_element(l0.begin(), l0.end());
  report.floor_eps = root_floor_estimate(be_->storage(), o_.p, 1 / worst_l0);
  // A wider input than the storage (f64 A iterated in f32) is rounded once when stored: the root is that
  // of the rounded matrix, which moves eps against the caller's A by about u_storage kappa.
  if (input_rounded_) {
    report.floor_eps += unit_roundoff(be_->storage()) / worst_l0;
    report.notes.push_back("A was rounded to " + report.storage + " when stored: the root is that of the rounded "
                           "matrix, about " + format_number(unit_roundoff(be_->storage()) / worst_l0) +
                           " of eps against the A given (in floor_eps)");
  }
  if (target > 0 && target < report.floor_eps)
    report.notes.push_back("the target " + format_number(target) + " is below the floor " +
                           format_number(report.floor_eps) + " that " + report.storage +
                           " storage can reach for this A (estimated from its condition number): it is unreachable");

  const bool direct = z != nullptr;
  bool diverged = pre.not_positive_definite;
  bool nonfinite = false;
  std::string reason = pre.failure;
  if (!diverged) {
    if (max_gemms > 0 && budget <= 0)
      throw Error("the GEMM budget (options.max_gemms = " + std::to_string(max_gemms) + ") leaves no room for the " +
                  std::to_string(extra) + " GEMM(s) this call needs besides the iteration");
    // The plan for this l0 (cached per plan: an optimiser's calls see the same few spectra).
    const PlanChoice& chosen = choose_plan(upper.plan_l0, target, budget);
    const PlanRequest& req = chosen.request;
    const StepPlan& plan = chosen.plan;
    DriverSettings ds;
    ds.elevated_steps = chosen.elevated;
    ds.upper = upper.t;
    ds.first_square_level = upper.square_level;
    report.drift_eps = chosen.drift;
    if (ds.elevated_steps > 0)
      report.notes.push_back("the first " + std::to_string(ds.elevated_steps) + " step(s) ran in " +
                             to_string(elevated_->storage()) + " (drift model: about " + format_number(chosen.drift) +
                             " from rounding)");
    if (o_.target > 0 && chosen.predicted > target)
      report.notes.push_back("the drift model predicts about " + format_number(chosen.predicted) +
                             " for this run (interval model " + format_number(plan.final_bound) + ", rounding " +
                             format_number(chosen.drift) + "): more than the target");
    ds.symmetrize_every = o_.symmetrize_every;
    ds.renormalize = o_.renormalize;
    ds.on_step = o_.on_step;
    if (direct && pre.diagonal) be_->diag_scale(&pre.d, *z, nullptr);  // Z_0 = D B
    const DriverResult it = driver_->run(*tables_, plan, a_n_, l0, final_factor, ds, z);
    report.steps = it.steps;
    report.gemms = it.gemms;
    for (const PlannedStep& st : plan.steps) report.degree = std::max(report.degree, st.degree);
    report.intervals = it.records;
    report.model_eps = report.final_eps = it.model_eps;
    report.estimated_residual = it.estimated_residual;
    // Not reached although the budget had room: the tables' floor (another step would not lower the bound).
    if (target > 0 && !plan.reached && !(req.max_gemms > 0 && plan.gemms + 1 > req.max_gemms) &&
        static_cast<int>(plan.steps.size()) < req.max_steps)
      report.notes.push_back("the target is below the smallest bound the tables certify in " + report.storage +
                             " storage (" + format_number(plan.final_bound) +
                             "); the iteration stopped where another step would not lower it");
    diverged = it.diverged;
    nonfinite = it.nonfinite;
    reason = it.reason;
    if (!diverged && direct && pre.diagonal) be_->diag_scale(&pre.d, *z, nullptr);  // Z = D Z_n
  }

  if (diverged) {
    const bool allowed = o_.fallback != Fallback::never;
    if (!allowed && pre.not_positive_definite && ov.not_positive_definite_is_status) {
      report.status = Status::not_positive_definite;
      report.fallback_reason = reason;
      report.seconds = seconds_since(start);
      return report;
    }
    if (!allowed && pre.not_positive_definite)
      throw Error("a: not numerically positive definite in " + report.storage + " storage (" + reason +
                  ") and options.fallback is never");
    if (!allowed) {
      report.status = Status::diverged;
      report.notes.push_back("the iteration diverged (" + reason + ") and options.fallback is never");
      if (nonfinite)
        throw Error("the iteration diverged with non-finite values (" + reason + ") and options.fallback is never");
    } else {
      // The exact root of A_n in double with the same final scaling.
      report.fallback = true;
      report.fallback_reason = reason;
      report.status = Status::fallback;
      if (!be_->exact_inverse_root(a_n_, o_.p, x_)) {
        report.status = Status::not_positive_definite;
        if (ov.not_positive_definite_is_status) {
          report.seconds = seconds_since(start);
          return report;
        }
        throw Error("a: not positive definite: " + reason +
                    ", and the eigendecomposition fallback found a non-positive eigenvalue");
      }
      be_->scale(final_factor, x_);
      if (direct) {
        // Z from the exact root: reload B (z holds a diverged iterate).
        be_->copy(b_in_, *z);
        if (pre.diagonal) be_->diag_scale(&pre.d, *z, nullptr);
      }
    }
  }
  const bool have_x = !direct || report.fallback;
  if (have_x && !report.fallback) {
    // The driver's X is the result (x_ aliases it for materialised runs).
    x_ = driver_->x();
  }
  if (have_x && pre.diagonal) be_->diag_scale(&pre.d, x_, &pre.d);
  if (a64_.data && have_x && report.matrix_changed) {
    // The matrix the root is for (certificate, correction): A + ridge I (+ the l_target shift), in double.
    std::vector<double> shift(nb);
    for (std::size_t k = 0; k < nb; ++k) shift[k] = o_.ridge + pre.shift[k];
    wide_->add_diagonal(shift, a64_);
  }
  if (newton_ && have_x && !report.fallback) {
    // On the iterate as it is (its antisymmetric part carries information for even p; the correction
    // symmetrises): docs/newton-correction.md.
    if (newton_->prepare(a64_)) {
      for (int i = 0; i < o_.newton_steps; ++i) newton_->correct(*be_, x_);
      report.newton_steps = o_.newton_steps;
      report.newton_gemms = o_.newton_steps * newton_->gemms_per_correction();
      report.notes.push_back("Newton correction: " + std::to_string(o_.newton_steps) + " step(s) through A's "
                             "eigendecomposition in double (" + std::to_string(report.newton_gemms) +
                             " f64 products besides it, not counted in gemms)");
    } else {
      report.notes.push_back("Newton correction not applied: " + newton_->failure());
    }
  }
  if (have_x) be_->symmetrize(x_);  // the certificate's theory needs X exactly symmetric
  if (direct && report.fallback) {
    Mat zn = b_in_;  // B is not needed any more: it takes the product
    be_->gemm(Op::N, Op::N, 1.0, x_, *z, 0.0, zn);
    be_->copy(zn, *z);
    ++report.gemms;
  } else if (b_desc_ && !direct) {
    be_->gemm(Op::N, Op::N, 1.0, x_, b_in_, 0.0, z_);
    ++report.gemms;
  }

  // The certificate of the returned X.
  if (certifier_ && have_x) {
    const auto t0 = Clock::now();
    // The theory needs A exactly symmetric: one within the tolerance but not exactly is certified as
    // (A + A^T) / 2 (formed in double), what the iteration treats it as.
    wide_->max_asymmetry(a64_, 0, -1);
    if (wide_->fetch_scalars()[0][0] > 0) {
      wide_->symmetrize(a64_);
      report.notes.push_back("A is symmetric within the tolerance but not exactly: the certificate is for (A + A^T) / 2");
    }
    wide_->import_from(*be_, x_, x64_);
    const auto certs = certifier_->certify(a64_, x64_);
    double worst = 0;
    bool all = true;
    for (std::size_t k = 0; k < certs.size(); ++k) {
      if (!certs[k].proven) {
        all = false;
        report.notes.push_back("verification (batch member " + std::to_string(k) + "): " + certs[k].failure);
      } else {
        worst = std::max(worst, certs[k].eps_bound);
      }
    }
    if (all) report.verified_eps = worst;
    if (report.matrix_changed)
      report.notes.push_back("the certificate is for the modified matrix (ridge / l_target shift added in double)");
    report.verify_seconds = seconds_since(t0);
  } else if (direct) {
    report.notes.push_back("direct apply: Z is never compared with A^{-1/p} B, so there is no verified bound; "
                           "model_eps is the interval model's (use mode materialize for a certified root)");
  }
  if (report.fallback) report.model_eps = report.final_eps = 0;
  set_claims(report, target, certifier_ && have_x);
  if (b_desc_ && !direct && report.certified)
    report.notes.push_back("verified_eps certifies the materialised X; Z = X B adds the rounding of one product");

  // On an unverified or missed target the caller may ask for the exact root instead.
  if (o_.fallback == Fallback::on_unverified && !report.fallback && have_x && target > 0 &&
      !(report.verified_eps && *report.verified_eps <= o_.fallback_factor * target)) {
    const std::string why = report.verified_eps
                                ? "the verified bound " + format_number(*report.verified_eps) + " misses the target " +
                                      format_number(target) + " by more than fallback_factor " +
                                      format_number(o_.fallback_factor)
                                : std::string("no bound could be proven for the iteration's root");
    if (be_->exact_inverse_root(a_n_, o_.p, x_)) {
      be_->scale(final_factor, x_);
      if (pre.diagonal) be_->diag_scale(&pre.d, x_, &pre.d);
      be_->symmetrize(x_);
      report.fallback = true;
      report.fallback_reason = why;
      report.status = Status::fallback;
      report.verified_eps.reset();
      const auto t0 = Clock::now();
      wide_->import_from(*be_, x_, x64_);
      const auto certs = certifier_->certify(a64_, x64_);
      double worst = 0;
      bool all = true;
      for (const auto& c : certs) {
        all = all && c.proven;
        worst = std::max(worst, c.eps_bound);
      }
      if (all) report.verified_eps = worst;
      report.certified = report.verified_eps.has_value();
      report.target_reached = report.verified_eps && *report.verified_eps <= target;
      report.verify_seconds += seconds_since(t0);
    }
  }
  report.seconds = seconds_since(start);
  return report;
}

PrecondSettings RootEngine::precond_settings(const RunOverrides& ov) const {
  PrecondSettings ps;
  ps.mode = o_.precond;
  ps.p = o_.p;
  ps.ridge = o_.ridge;
  ps.l_target = o_.l_target;
  ps.lambda_min_hint = ov.lambda_min_hint.value_or(o_.lambda_min_hint);
  ps.kappa_hint = ov.kappa_hint.value_or(o_.kappa_hint);
  ps.lambda_max_hint = o_.lambda_max_hint;
  ps.l0_floor = smallest_edge_;
  return ps;
}

// What a Report says of every run before the iteration: the run's kind and the start preconditioning chose.
Report RootEngine::started_report(const Preconditioned& pre) const {
  Report report;
  report.mode = direct_ ? "direct" : (b_desc_ ? "materialize" : "root");
  report.storage = to_string(be_->storage());
  report.backend = be_->name();
  report.schedules = tables_->origin;
  report.precond = to_string(o_.precond);
  report.ridge = o_.ridge;
  report.scale = pre.scale;
  report.l0 = pre.l0;
  report.l0_source = pre.l0_source;
  report.shift = pre.shift;
  report.matrix_changed = o_.ridge != 0 || std::any_of(pre.shift.begin(), pre.shift.end(), [](double s) { return s != 0; });
  if (o_.ridge != 0) report.notes.push_back("ridge: the result is the root of A + ridge I");
  report.notes.insert(report.notes.end(), pre.notes.begin(), pre.notes.end());
  return report;
}

void RootEngine::check_root_views(const Matrix& a, const MutableMatrix& x) const {
  if (b_desc_) throw Error("internal: a root on an apply plan");
  check_a(a);
  check_view("x", x, o_.device, Batching::allowed);
  if (x.rows != n_ || x.cols != n_ || x.batch != batch_)
    throw Error("x: shape " + shape_text(x.rows, x.cols, x.batch) + " does not match a's " + shape_text(n_, n_, batch_));
}

void RootEngine::check_apply_views(const Matrix& a, const Matrix& b, const MutableMatrix& z) const {
  if (!b_desc_) throw Error("internal: an apply on a root plan");
  check_a(a);
  check_view("b", b, o_.device, Batching::allowed);
  check_view("z", z, o_.device, Batching::allowed);
  if (b.rows != n_ || b.cols != k_ || b.batch != batch_)
    throw Error("b: shape " + shape_text(b.rows, b.cols, b.batch) + " does not match the plan's " +
                shape_text(n_, k_, batch_));
  if (z.rows != b.rows || z.cols != b.cols || z.batch != b.batch)
    throw Error("z: shape " + shape_text(z.rows, z.cols, z.batch) + " does not match b's " +
                shape_text(b.rows, b.cols, b.batch));
}

// certified and target_reached. Verified: the proven bound decides. Not verified (direct applies, verify
// off, enqueued runs): the model's bound, with certified false; a verification that ran and proved nothing
// reaches nothing.
void RootEngine::set_claims(Report& report, double target, bool verification_ran) const {
  report.certified = report.verified_eps.has_value();
  if (report.verified_eps)
    report.target_reached = target > 0 && *report.verified_eps <= target;
  else
    report.target_reached = !verification_ran && target > 0 && report.model_eps <= target;
  // Without a verified bound, formats below f32 claim nothing: their rounding (unit roundoff 2^-8 to 2^-11,
  // amplified by about kappa in the first steps) dominates the model's exact-arithmetic bound (measured at
  // n = 256, p = 2, kappa = 1e4: model 4e-4 against a true eps of 0.68 in tf32 and 0.99 in f16).
  const Format products = product_input_format(be_->storage(), be_->compute());
  if (!report.verified_eps && unit_roundoff(products) > unit_roundoff(Format::f32)) {
    report.target_reached = false;
    report.notes.push_back(std::string("no bound is claimed for ") +
                           (be_->compute() == ComputeMode::tf32 ? "tf32 products" : report.storage + " storage") +
                           " without verification: its rounding (unit roundoff " +
                           format_number(unit_roundoff(products)) + ", amplified by up to about kappa) dominates the "
                           "model bound " + format_number(report.model_eps) + ", which holds in exact arithmetic only");
  }
}

// ---- Enqueued runs: nothing read back until collect() (CUDA graph capture) ------------------------------

namespace {

// Slots of an enqueued run's input and output checks on the storage backend, above the driver's.
enum EnqueuedSlot { kEnqueuedNonfiniteA = 256, kEnqueuedAsymmetryA, kEnqueuedMagnitudeA, kEnqueuedNonfiniteZ };

}  // namespace

void RootEngine::check_enqueue(const char* out_name, const Matrix& a, const Matrix* b, const MutableMatrix& out) const {
  auto refuse = [](const std::string& what) {
    throw Error("enqueue: " + what + " (an enqueued run reads nothing back before collect(); use execute otherwise)");
  };
  if (o_.verify) refuse("options.verify is true, expected false: the certificate decides on the host between its passes");
  if (o_.fallback != Fallback::never)
    refuse(std::string("options.fallback is ") + to_string(o_.fallback) + ", expected never: the exact fallback is a host decision");
  if (!(o_.lambda_min_hint > 0) || !(o_.lambda_max_hint > 0))
    refuse("options.lambda_min_hint = " + format_number(o_.lambda_min_hint) + " and lambda_max_hint = " +
           format_number(o_.lambda_max_hint) + ", expected both > 0: the scale and l0 come from them alone");
  if (o_.precond != Precond::none && o_.precond != Precond::frobenius)
    refuse(std::string("options.precond is ") + to_string(o_.precond) + ", expected none or frobenius");
  if (o_.newton_steps != 0) refuse("options.newton_steps = " + std::to_string(o_.newton_steps) + ", expected 0");
  if (o_.renormalize) refuse("options.renormalize is true, expected false (it reads the trace every step)");
  if (o_.on_step) refuse("options.on_step is set, expected none (it copies every step to the host)");
  if (o_.device == Device::cuda) {
    const auto device_view = [&](const char* name, Device d) {
      if (d != Device::cuda)
        refuse(std::string(name) + " is a host view, expected a device view on a CUDA plan (host views need "
                                   "synchronising copies)");
    };
    device_view("a", a.device);
    if (b) device_view("b", b->device);
    device_view(out_name, out.device);
  }
}

void RootEngine::enqueue_root(const Matrix& a, MutableMatrix x) {
  check_root_views(a, x);
  check_enqueue("x", a, nullptr, x);
  enqueue_run(a, nullptr, x);
}

void RootEngine::enqueue_apply(const Matrix& a, const Matrix& b, MutableMatrix z) {
  check_apply_views(a, b, z);
  check_enqueue("z", a, &b, z);
  enqueue_run(a, &b, z);
}

void RootEngine::enqueue_run(const Matrix& a, const Matrix* b, MutableMatrix out) {
  const auto start = Clock::now();
  enqueued_ = {};
  move_in(*be_, "a", a, a_in_, true);
  // Host views (CPU plans) are checked here, on the host; device views by the slots collect() reads.
  if (a.device == Device::cpu) check_input_values(*be_, "a", a, a_in_);
  if (b) {
    move_in(*be_, "b", *b, b_in_, false);
    if (b->device == Device::cpu) check_input_values(*be_, "b", *b, b_in_);
  }
  note_input_rounding(&a);
  be_->count_nonfinite(a_in_, kEnqueuedNonfiniteA);
  be_->max_asymmetry(a_in_, kEnqueuedAsymmetryA, kEnqueuedMagnitudeA);
  Mat* z = direct_ ? &z_ : nullptr;
  if (z) be_->copy(b_in_, *z);
  be_->copy(a_in_, a_n_);
  const Preconditioned pre = precondition_from_hints(*be_, a_n_, precond_settings({}));
  const auto nb = static_cast<std::size_t>(batch_);
  std::vector<double> final_factor(nb);
  for (std::size_t k = 0; k < nb; ++k) final_factor[k] = std::pow(pre.scale[k], -1.0 / o_.p);

  enqueued_.report = started_report(pre);
  Report& report = enqueued_.report;
  report.notes.push_back("enqueued: the scale and l0 come from lambda_max_hint and lambda_min_hint, which are trusted; "
                         "no certificate (verification needs host decisions)");
  const double l0 = pre.l0[0];
  report.floor_eps = root_floor_estimate(be_->storage(), o_.p, 1 / l0);
  if (input_rounded_) report.floor_eps += unit_roundoff(be_->storage()) / l0;

  const int extra = (b_desc_ && !z) ? 1 : 0;
  if (o_.max_gemms > 0 && o_.max_gemms - extra <= 0)
    throw Error("the GEMM budget (options.max_gemms = " + std::to_string(o_.max_gemms) + ") leaves no room for the " +
                std::to_string(extra) + " GEMM(s) this call needs besides the iteration");
  const PlanChoice& chosen = choose_plan(l0, o_.target, o_.max_gemms > 0 ? o_.max_gemms - extra : 0);
  DriverSettings ds;
  ds.elevated_steps = chosen.elevated;
  ds.symmetrize_every = o_.symmetrize_every;
  ds.deferred = true;
  report.drift_eps = chosen.drift;
  if (ds.elevated_steps > 0)
    report.notes.push_back("the first " + std::to_string(ds.elevated_steps) + " step(s) ran in " +
                           to_string(elevated_->storage()));
  enqueued_.run = driver_->run(*tables_, chosen.plan, a_n_, pre.l0, final_factor, ds, z);
  const DriverResult& it = enqueued_.run;
  report.steps = it.steps;
  report.gemms = it.gemms;
  for (const PlannedStep& st : chosen.plan.steps) report.degree = std::max(report.degree, st.degree);
  report.intervals = it.records;
  report.model_eps = report.final_eps = it.model_eps;
  if (!z) {
    x_ = driver_->x();
    be_->symmetrize(x_);
  }
  if (b_desc_ && !z) {
    be_->gemm(Op::N, Op::N, 1.0, x_, b_in_, 0.0, z_);
    ++report.gemms;
    be_->count_nonfinite(z_, kEnqueuedNonfiniteZ);
  }
  move_out(*be_, b_desc_ ? z_ : x_, out, !b_desc_);
  // Every level's checks in one posted copy each: nothing waits until collect().
  if (elevated_ && elevated_ != be_) elevated_->post_scalars();
  be_->post_scalars();
  enqueued_.tolerance = symmetry_tolerance();
  enqueued_.out = out;
  enqueued_.pending = true;
  report.seconds = seconds_since(start);
}

Report RootEngine::collect() {
  if (!enqueued_.pending)
    throw Error("collect: nothing was enqueued on this plan since its last execute (call enqueue first)");
  const auto slots = be_->posted_scalars();  // waits for the stream
  DriverResult it = enqueued_.run;
  driver_->complete(it);
  Report report = enqueued_.report;
  const auto slot = [&](int index) -> const std::vector<double>& {
    if (static_cast<std::size_t>(index) >= slots.size() || slots[static_cast<std::size_t>(index)].size() != static_cast<std::size_t>(batch_))
      throw Error("internal: collect found no value in slot " + std::to_string(index));
    return slots[static_cast<std::size_t>(index)];
  };
  for (std::size_t k = 0; k < static_cast<std::size_t>(batch_); ++k) {
    const std::string member = " (batch member " + std::to_string(k) + ")";
    if (slot(kEnqueuedNonfiniteA)[k] > 0)
      throw Error("a" + member + ": " + format_number(slot(kEnqueuedNonfiniteA)[k]) + " entries are not finite in the " +
                  report.storage + " storage; expected finite values (found by collect: the output is unspecified)");
    const double asymmetry = slot(kEnqueuedAsymmetryA)[k], magnitude = slot(kEnqueuedMagnitudeA)[k];
    if (!(asymmetry <= enqueued_.tolerance * magnitude))
      throw Error("a" + member + ": not symmetric: max |a(i,j) - a(j,i)| = " + format_number(asymmetry) + " exceeds " +
                  format_number(enqueued_.tolerance) + " * max|a| = " + format_number(enqueued_.tolerance * magnitude) +
                  " (found by collect: the output is unspecified)");
  }
  if (b_desc_ && !direct_)
    for (std::size_t k = 0; k < static_cast<std::size_t>(batch_); ++k)
      if (slot(kEnqueuedNonfiniteZ)[k] > 0)
        throw Error("z (result, batch member " + std::to_string(k) + ") has non-finite entries; expected finite values: "
                    "A^{-1/p} B is not representable in " + report.storage + " or overflowed on the way; rescale b or a");
  report.estimated_residual = it.estimated_residual;
  if (it.diverged) {
    report.status = Status::diverged;
    if (it.nonfinite)
      throw Error("the iteration diverged (" + it.reason + ") and left non-finite values" +
                  (it.result_nonfinite ? " in the result" : "") +
                  "; an enqueued run has no fallback: check lambda_min_hint and lambda_max_hint");
    report.notes.push_back("the iteration diverged (" + it.reason + "): the output is not usable; check "
                           "lambda_min_hint and lambda_max_hint (an enqueued run has no fallback)");
  }
  if (enqueued_.out.device == Device::cpu) {  // a host view may not hold what the storage does (f64 in f32)
    if (b_desc_)
      check_result_values(*be_, "z", z_, enqueued_.out, "A^{-1/p} B", "rescale b or a");
    else
      check_result_values(*be_, "x", x_, enqueued_.out, "A^{-1/p}", "rescale a (the root of c A is c^{-1/p} times that of A)");
  }
  set_claims(report, o_.target, false);
  if (report.status == Status::diverged) report.target_reached = false;
  return report;
}

Report RootEngine::execute_root(const Matrix& a, MutableMatrix x) {
  enqueued_.pending = false;  // the driver's pending checks are about to be replaced
  const auto start = Clock::now();
  check_root_views(a, x);
  move_in_a(a);
  check_input_values(*be_, "a", a, a_in_);
  Report r = run_checked(a_in_, &a, {});
  move_out(*be_, x_, x, true);
  check_result_values(*be_, "x", x_, x, "A^{-1/p}", "rescale a (the root of c A is c^{-1/p} times that of A)");
  r.seconds = seconds_since(start);
  return r;
}

Report RootEngine::execute_apply(const Matrix& a, const Matrix& b, MutableMatrix z) {
  enqueued_.pending = false;
  const auto start = Clock::now();
  check_apply_views(a, b, z);
  move_in_a(a);
  check_input_values(*be_, "a", a, a_in_);
  move_in(*be_, "b", b, b_in_, false);
  check_input_values(*be_, "b", b, b_in_);
  Report r = run_checked(a_in_, &a, {});
  move_out(*be_, z_, z, false);
  check_result_values(*be_, "z", z_, z, "A^{-1/p} B", "rescale b or a (Z scales with b, and by c^{-1/p} for c A)");
  r.seconds = seconds_since(start);
  return r;
}

}  // namespace pe::detail
