// The public entry points: validate, move the inputs into the backend, precondition, iterate (or fall
// back to the exact root), undo the scaling, write the outputs, report.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "backend_factory.hpp"
#include "interval.hpp"
#include "iteration.hpp"
#include "pe/detail/format.hpp"
#include "pe/pe.hpp"
#include "pe/schedule_types.hpp"
#include "precondition.hpp"
#include "schedules.hpp"
#include "view_checks.hpp"

namespace pe {

namespace {

using detail::Backend;
using detail::check_view;
using detail::format_number;
using detail::HostMat;
using detail::Mat;

void check_options(const Options& o) {
  if (o.p < 1 || o.p > 64) throw Error("options.p = " + std::to_string(o.p) + ": expected an integer in [1, 64]");
  if (!(o.target >= 0) || !std::isfinite(o.target) || o.target >= 1)
    throw Error("options.target = " + format_number(o.target) + ": expected 0 (budget only) or a bound in (0, 1)");
  if (o.max_gemms < 0) throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + ": expected >= 0");
  if (o.max_steps < 0) throw Error("options.max_steps = " + std::to_string(o.max_steps) + ": expected >= 0");
  if (o.target == 0 && o.max_gemms == 0 && o.max_steps == 0)
    throw Error("options.target = 0 (budget only) needs a budget: options.max_gemms or options.max_steps > 0");
  if (o.degree < 0 || o.degree > 2) throw Error("options.degree = " + std::to_string(o.degree) + ": expected 0, 1 or 2");
  if (!(o.ridge >= 0) || !std::isfinite(o.ridge)) throw Error("options.ridge = " + format_number(o.ridge) + ": expected >= 0");
  if (!(o.l_target >= 0 && o.l_target < 1))
    throw Error("options.l_target = " + format_number(o.l_target) + ": expected a value in [0, 1)");
  if (!(o.lambda_min_hint >= 0) || !std::isfinite(o.lambda_min_hint))
    throw Error("options.lambda_min_hint = " + format_number(o.lambda_min_hint) + ": expected >= 0");
  if (!(o.kappa_hint == 0 || o.kappa_hint >= 1) || !std::isfinite(o.kappa_hint))
    throw Error("options.kappa_hint = " + format_number(o.kappa_hint) + ": expected 0 (none) or >= 1");
  if (o.symmetrize_every < 0)
    throw Error("options.symmetrize_every = " + std::to_string(o.symmetrize_every) + ": expected >= 0");
  if (o.reuse_count < 1) throw Error("options.reuse_count = " + std::to_string(o.reuse_count) + ": expected >= 1");
  if (o.schedule_source == ScheduleSource::json_file && o.schedule_file.empty())
    throw Error("options.schedule_file is empty but schedule_source is json_file");
  detail::check_precond_mode(o.precond, o.p);
}

const detail::ScheduleSet& schedules_for(const Options& o, std::optional<detail::ScheduleSet>& storage) {
  if (o.schedule_source == ScheduleSource::compiled) return detail::compiled_schedules();
  storage = detail::load_schedules_json(o.schedule_file);
  return *storage;
}

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
  if (v.layout != Layout::col_major && !symmetric)
    throw Error(std::string(name) + ": device views must be column-major");
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

// Checks symmetry on a double host copy (column-major, n x n per member) of finite values.
void check_symmetric(const std::vector<double>& a, std::int64_t n, std::int64_t batch, double tolerance) {
  for (std::int64_t k = 0; k < batch; ++k) {
    const double* m = a.data() + k * n * n;
    double max_abs = 0;
    for (std::int64_t i = 0; i < n * n; ++i) max_abs = std::max(max_abs, std::abs(m[i]));
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = j + 1; i < n; ++i) {
        const double d = std::abs(m[i + j * n] - m[j + i * n]);
        if (d > tolerance * max_abs)
          throw Error("a: not symmetric: |a(" + std::to_string(i) + "," + std::to_string(j) + ") - a(" +
                      std::to_string(j) + "," + std::to_string(i) + ")| = " + format_number(d) + " exceeds " +
                      format_number(tolerance) + " * max|a| (batch member " + std::to_string(k) + ")");
      }
  }
}

struct Prepared {
  std::unique_ptr<Backend> backend;
  Mat a_n;
  detail::Preconditioned pre;
  std::vector<double> final_factor;
  const detail::ScheduleSet* schedules = nullptr;
  std::optional<detail::ScheduleSet> loaded;
};

void prepare(const Matrix& a, const Options& o, Prepared& out, Report& report) {
  check_options(o);
  check_view("a", a, o.device, detail::Batching::allowed);
  if (a.rows != a.cols)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is not square");
  out.schedules = &schedules_for(o, out.loaded);
  const DType storage = o.storage_from_input ? a.dtype : o.storage;
  out.backend = detail::make_backend(o.device, storage, o.compute, o.stream);
  Backend& be = *out.backend;
  const std::int64_t n = a.rows, batch = a.batch;
  out.a_n = be.allocate(n, n, batch);
  move_in(be, "a", a, out.a_n, true);
  detail::check_input_values(be, "a", a, out.a_n);
  std::vector<double> host(static_cast<std::size_t>(n * n * batch));
  be.download(out.a_n, HostMat{host.data(), DType::f64, n, n, n, batch, n * n, Layout::col_major});
  const double unit = a.dtype == DType::f32 ? std::numeric_limits<float>::epsilon() / 2
                                            : std::numeric_limits<double>::epsilon() / 2;
  check_symmetric(host, n, batch, o.symmetry_tolerance >= 0 ? o.symmetry_tolerance : 100 * unit);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t i = 0; i < n; ++i) {
      const double stored = host[static_cast<std::size_t>(k * n * n + i + i * n)];
      if (stored + o.ridge > 0) continue;
      const std::string entry = "a: diagonal entry (" + std::to_string(i) + ", " + std::to_string(i) +
                                ") of batch member " + std::to_string(k) + " is ";
      // A positive entry of the caller's that the storage dtype rounded to 0 is not the caller's A.
      const double given = a.device == Device::cpu ? detail::host_entry(a, k, i, i) : stored;
      if (given > 0)
        throw Error(entry + format_number(given) + ", which underflows to " + format_number(stored) + " in the " +
                    to_string(storage) + " storage (smallest positive normal " +
                    format_number(detail::storage_range(storage).smallest_normal) +
                    "); expected values the storage can hold: store in f64 (options.storage) or rescale a");
      throw Error(entry + format_number(given) + ", so A is not positive definite");
    }

  detail::PrecondSettings ps;
  ps.mode = o.precond;
  ps.p = o.p;
  ps.ridge = o.ridge;
  ps.l_target = o.l_target;
  ps.lambda_min_hint = o.lambda_min_hint;
  ps.kappa_hint = o.kappa_hint;
  double smallest_edge = 1;
  for (const auto& t : out.schedules->tables)
    if (t.p == o.p) smallest_edge = std::min(smallest_edge, t.entries.front().l_edge);
  ps.l0_floor = smallest_edge;
  out.pre = detail::precondition_spd(be, out.a_n, host, ps);
  out.final_factor.resize(static_cast<std::size_t>(batch));
  for (std::size_t k = 0; k < out.final_factor.size(); ++k) out.final_factor[k] = std::pow(out.pre.scale[k], -1.0 / o.p);

  report.precond = to_string(o.precond);
  report.scale = out.pre.scale;
  report.l0 = out.pre.l0;
  report.l0_source = out.pre.l0_source;
  report.ridge = o.ridge;
  report.shift = out.pre.shift;
  report.matrix_changed = o.ridge != 0 || std::any_of(out.pre.shift.begin(), out.pre.shift.end(), [](double s) { return s != 0; });
  if (o.ridge != 0) report.notes.push_back("ridge: the result is the root of A + ridge I");
  report.notes.insert(report.notes.end(), out.pre.notes.begin(), out.pre.notes.end());
  report.storage = to_string(storage);
  report.backend = be.name();
  report.schedules = out.schedules->origin;
}

detail::IterationResult iterate(Prepared& prep, const Options& o, int extra_gemms, bool direct, Mat& x, Mat& z) {
  detail::IterationSettings s;
  s.p = o.p;
  s.target = o.target;
  s.max_steps = o.max_steps > 0 ? o.max_steps : kDefaultStepLimit;
  s.max_gemms = o.max_gemms > 0 ? o.max_gemms - extra_gemms : INT_MAX;
  if (s.max_gemms < 0)
    throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + " leaves no room for the " +
                std::to_string(extra_gemms) + " GEMM(s) this call needs besides the iteration");
  s.symmetrize_every = o.symmetrize_every;
  s.renormalize = o.renormalize;
  s.direct = direct;
  s.on_step = o.on_step;
  const DType storage = prep.backend->storage();
  const double worst_l0 = *std::min_element(prep.pre.l0.begin(), prep.pre.l0.end());
  const int degree = o.degree > 0 ? o.degree
                                  : detail::choose_degree(*prep.schedules, o.p, storage, worst_l0, o.target,
                                                          s.max_steps, s.max_gemms, direct);
  const detail::OwnedBucketTable* table = prep.schedules->find(o.p, degree);
  if (!table)
    throw Error("the schedule tables (" + prep.schedules->origin + ") have no bucket table for p = " +
                std::to_string(o.p) + ", degree " + std::to_string(degree));
  const int first_step = direct ? detail::direct_gemms(o.p, degree, 1) : detail::materialize_gemms(o.p, degree, 0, 1);
  if (first_step > s.max_gemms)
    throw Error("the budget (max_gemms = " + std::to_string(o.max_gemms) + ") does not allow a single step: degree " +
                std::to_string(degree) + " needs " + std::to_string(first_step + extra_gemms) +
                " GEMM(s) for one step of this call");
  // With the degree chosen automatically, a degree-2 run may end with a cheaper degree-1 step.
  if (o.degree == 0 && degree == 2) s.final_table = prep.schedules->find(o.p, 1);
  return detail::run_coupled(*prep.backend, prep.a_n, *table, prep.pre.l0, prep.pre.l0_rigorous, prep.final_factor, s,
                             x, z);
}

// When preconditioning found A not numerically positive definite, the iteration cannot run: report it
// as a failed iteration so that the caller goes to the eigendecomposition fallback (which decides).
detail::IterationResult iterate_unless_indefinite(Prepared& prep, const Options& o, int extra_gemms, bool direct,
                                                  Mat& x, Mat& z) {
  if (!prep.pre.not_positive_definite) return iterate(prep, o, extra_gemms, direct, x, z);
  detail::IterationResult failed;
  failed.diverged = true;
  failed.reason = prep.pre.failure;
  return failed;
}

void fill_report(Report& r, const detail::IterationResult& it) {
  r.steps = it.steps;
  r.gemms += it.gemms;
  r.degree = it.degree;
  r.intervals = it.records;
  r.final_eps = it.final_eps;
  r.estimated_residual = it.estimated_residual;
  r.certified = it.certified;
  r.target_reached = it.target_reached;
  if (it.at_floor)
    r.notes.push_back("the target is below the smallest bound the tables certify in " + r.storage +
                      " storage (" + format_number(it.final_eps) + "); the iteration stopped where another step "
                      "would not lower it");
}

// Automatic apply mode, by the planned GEMM work in units of one n x n x n product. Direct apply carries
// Z (n x k) instead of X: each step saves the X update but pays q(Y) Z (k/n of a product), and the
// whole iteration is repeated for every reuse of A; materialising pays the iteration once and then one
// X B product (k/n) per reuse.
bool direct_is_cheaper(const Prepared& prep, const Options& o, std::int64_t n, std::int64_t k) {
  if (prep.pre.not_positive_definite) return false;  // nothing to iterate: the fallback materialises
  const DType storage = prep.backend->storage();
  const double worst_l0 = *std::min_element(prep.pre.l0.begin(), prep.pre.l0.end());
  const int max_steps = o.max_steps > 0 ? o.max_steps : kDefaultStepLimit;
  const int degree = o.degree > 0 ? o.degree
                                  : detail::choose_degree(*prep.schedules, o.p, storage, worst_l0, o.target, max_steps,
                                                          INT_MAX, false);
  const detail::OwnedBucketTable* table = prep.schedules->find(o.p, degree);
  if (!table) return false;  // iterate() reports the missing table
  const int steps = detail::steps_to_target(*table, storage, {worst_l0, 1.0}, o.target, max_steps);
  const double ratio = static_cast<double>(k) / static_cast<double>(n);
  const double per_step_square = (degree == 2 ? 1 : 0) + residual_update_gemms(o.p);
  const double direct = o.reuse_count * ((steps - 1) * (per_step_square + ratio) + degree * ratio);
  const double materialize = detail::materialize_gemms(o.p, degree, 0, steps) + o.reuse_count * ratio;
  return direct < materialize;
}

// The exact root of A_n (eigendecomposition in double) with the same final scaling; throws when A is
// not positive definite.
void exact_fallback(Prepared& prep, const Options& o, Mat& x, Report& r, const std::string& why) {
  r.fallback = true;
  r.fallback_reason = why;
  r.certified = false;
  if (!prep.backend->exact_inverse_root(prep.a_n, o.p, x))
    throw Error("A is not positive definite: " + why + ", and the eigendecomposition fallback found a non-positive "
                "eigenvalue");
  prep.backend->scale(prep.final_factor, x);
  r.final_eps = 0;
  r.target_reached = true;
}

constexpr const char* kApplyRemedy = "rescale b or a (Z scales with b, and by c^{-1/p} for c A)";

template <class Clock>
double since(typename Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Report inverse_root(const Matrix& a, MutableMatrix x, const Options& options) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Report report;
  report.mode = "root";
  Prepared prep;
  prepare(a, options, prep, report);
  check_view("x", x, options.device, detail::Batching::allowed);
  if (x.rows != a.rows || x.cols != a.cols || x.batch != a.batch)
    throw Error("x: shape " + std::to_string(x.rows) + " x " + std::to_string(x.cols) + " (batch " +
                std::to_string(x.batch) + ") does not match a's " + std::to_string(a.rows) + " x " +
                std::to_string(a.cols) + " (batch " + std::to_string(a.batch) + ")");
  Backend& be = *prep.backend;
  Mat xm = be.allocate(a.rows, a.rows, a.batch), unused;
  const auto it = iterate_unless_indefinite(prep, options, 0, false, xm, unused);
  fill_report(report, it);
  if (it.diverged) exact_fallback(prep, options, xm, report, it.reason);
  if (prep.pre.diagonal) be.diag_scale(&prep.pre.d, xm, &prep.pre.d);
  move_out(be, xm, x, true);
  detail::check_result_values(be, "x", xm, x, "A^{-1/p}", "rescale a (the root of c A is c^{-1/p} times that of A)");
  report.seconds = since<Clock>(start);
  return report;
}

Report apply_inverse_root(const Matrix& a, const Matrix& b, MutableMatrix z, const Options& options) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Report report;
  Prepared prep;
  prepare(a, options, prep, report);
  check_view("b", b, options.device, detail::Batching::allowed);
  check_view("z", z, options.device, detail::Batching::allowed);
  if (b.rows != a.rows || b.batch != a.batch)
    throw Error("b: shape " + std::to_string(b.rows) + " x " + std::to_string(b.cols) + " (batch " +
                std::to_string(b.batch) + ") does not fit a (" + std::to_string(a.rows) + " rows, batch " +
                std::to_string(a.batch) + ")");
  if (z.rows != b.rows || z.cols != b.cols || z.batch != b.batch)
    throw Error("z: shape " + std::to_string(z.rows) + " x " + std::to_string(z.cols) + " (batch " +
                std::to_string(z.batch) + ") does not match b's " + std::to_string(b.rows) + " x " +
                std::to_string(b.cols) + " (batch " + std::to_string(b.batch) + ")");
  Backend& be = *prep.backend;
  const std::int64_t n = a.rows, k = b.cols;
  bool direct = false;
  switch (options.mode) {
    case ApplyMode::direct: direct = true; break;
    case ApplyMode::materialize: direct = false; break;
    case ApplyMode::automatic: direct = direct_is_cheaper(prep, options, n, k); break;
  }
  report.mode = direct ? "direct" : "materialize";
  Mat bm = be.allocate(n, k, a.batch);
  move_in(be, "b", b, bm, false);
  detail::check_input_values(be, "b", b, bm);
  Mat xm = be.allocate(n, n, a.batch);
  if (direct) {
    if (prep.pre.diagonal) be.diag_scale(&prep.pre.d, bm, nullptr);  // Z_0 = D B
    const auto it = iterate_unless_indefinite(prep, options, 0, true, xm, bm);
    fill_report(report, it);
    if (it.diverged) {
      // bm may hold a diverged iterate: reload B for the exact path.
      exact_fallback(prep, options, xm, report, it.reason);
      move_in(be, "b", b, bm, false);
      if (prep.pre.diagonal) be.diag_scale(&prep.pre.d, bm, nullptr);
      Mat zm = be.allocate(n, k, a.batch);
      be.gemm(detail::Op::N, detail::Op::N, 1.0, xm, bm, 0.0, zm);
      ++report.gemms;
      bm = zm;
    }
    if (prep.pre.diagonal) be.diag_scale(&prep.pre.d, bm, nullptr);  // Z = D Z_n
    move_out(be, bm, z, false);
    detail::check_result_values(be, "z", bm, z, "A^{-1/p} B", kApplyRemedy);
  } else {
    Mat unused;
    const auto it = iterate_unless_indefinite(prep, options, 1, false, xm, unused);
    fill_report(report, it);
    if (it.diverged) exact_fallback(prep, options, xm, report, it.reason);
    if (prep.pre.diagonal) be.diag_scale(&prep.pre.d, xm, &prep.pre.d);
    Mat zm = be.allocate(n, k, a.batch);
    be.gemm(detail::Op::N, detail::Op::N, 1.0, xm, bm, 0.0, zm);
    ++report.gemms;
    move_out(be, zm, z, false);
    detail::check_result_values(be, "z", zm, z, "A^{-1/p} B", kApplyRemedy);
  }
  report.seconds = since<Clock>(start);
  return report;
}

Precond parse_precond(const std::string& name) {
  for (Precond m : {Precond::none, Precond::frobenius, Precond::jacobi, Precond::ruiz, Precond::aol})
    if (name == to_string(m)) return m;
  throw Error("precond mode '" + name + "' is unknown (expected none, frobenius, jacobi, ruiz or aol)");
}

const char* to_string(Precond mode) {
  switch (mode) {
    case Precond::none: return "none";
    case Precond::frobenius: return "frobenius";
    case Precond::jacobi: return "jacobi";
    case Precond::ruiz: return "ruiz";
    case Precond::aol: return "aol";
  }
  return "?";
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
  }
  return "?";
}

const char* to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

namespace detail {
std::unique_ptr<Backend> make_backend(Device device, DType storage, ComputeMode compute, void* stream) {
  if (device == Device::cuda) return make_cuda_backend(storage, compute, stream);
  return make_cpu_backend(storage, compute);
}
}  // namespace detail

}  // namespace pe
