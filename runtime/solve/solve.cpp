// pe::solve: SPD A through the p = 1 approximate inverse plus refinement; general A through a polar
// factor (A = U H), the SPD inverse of H and refinement against A; an LU fallback, reported.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>
#include <optional>


#include "backend_factory.hpp"
#include "formats.hpp"
#include "common.hpp"
#include "engine/root_engine.hpp"
#include "pe/solve.hpp"
#include "polar.hpp"
#include "schedules.hpp"
#include "view_checks.hpp"

namespace pe {

namespace {

using detail::Backend;
using detail::Mat;
using detail::Op;
using detail::format_number;

// A correction must at least halve the residual: with ||I - A M|| <= eps <= 1/2 it contracts by eps,
// so a slower step means the approximate inverse is not what its bound says (or rounding has taken
// over) and further corrections would waste GEMMs.
constexpr double kStallFactor = 0.5;

// Inner targets tighter than these are below what the storage's rounding lets the iteration deliver.
double inner_target_floor(DType storage) { return storage == DType::f64 ? 1e-8 : storage == DType::f32 ? 1e-3 : 1e-1; }
constexpr double kInnerTargetCeiling = 0.25;

struct Refinement {
  int gemms = 0;
  int corrections = 0;
  std::vector<double> residuals;
  bool stalled = false;
  std::string reason;
};

void check_solve_options(const SolveOptions& o) {
  if (!(o.target >= 0 && o.target < 1))
    throw Error("options.target = " + format_number(o.target) + ": expected 0 (budget only) or a relative residual in (0, 1)");
  if (o.max_gemms < 0) throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + ": expected >= 0");
  if (o.target == 0 && o.max_gemms == 0) throw Error("options: give a target or a GEMM budget (max_gemms)");
  if (o.max_corrections < 0 || o.max_corrections > 10)
    throw Error("options.max_corrections = " + std::to_string(o.max_corrections) + ": expected 0..10");
  if (!(o.inner_target == 0 || (o.inner_target > 0 && o.inner_target < 1)))
    throw Error("options.inner_target = " + format_number(o.inner_target) + ": expected 0 (automatic) or a bound in (0, 1)");
  if (!(o.polar_target > 0 && o.polar_target < 1))
    throw Error("options.polar_target = " + format_number(o.polar_target) + ": expected a bound in (0, 1)");
  if (!(o.kappa_hint == 0 || o.kappa_hint >= 1) || !std::isfinite(o.kappa_hint))
    throw Error("options.kappa_hint = " + format_number(o.kappa_hint) + ": expected 0 (none) or >= 1");
  if (!(o.lambda_min_hint >= 0) || !std::isfinite(o.lambda_min_hint))
    throw Error("options.lambda_min_hint = " + format_number(o.lambda_min_hint) + ": expected >= 0");
}

// Symmetric within the tolerance and a positive diagonal: worth trying the SPD path.
bool looks_spd(const std::vector<double>& a, std::int64_t n, double tolerance) {
  double max_abs = 0;
  for (double v : a) max_abs = std::max(max_abs, std::abs(v));
  for (std::int64_t i = 0; i < n; ++i)
    if (!(a[static_cast<std::size_t>(i + i * n)] > 0)) return false;
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i)
      if (std::abs(a[static_cast<std::size_t>(i + j * n)] - a[static_cast<std::size_t>(j + i * n)]) > tolerance * max_abs)
        return false;
  return true;
}

// M <- 2^e M in steps that the storage dtype can represent (f32 holds 2^+-100, f64 more), so the scaling
// is exact unless an entry leaves the normal range.
void scale_by_power_of_two(Backend& be, Mat& m, int e) {
  constexpr int kStep = 100;
  for (; e != 0; e -= std::clamp(e, -kStep, kStep))
    be.scale(std::vector<double>{std::ldexp(1.0, std::clamp(e, -kStep, kStep))}, m);
}

// The exponent e with ||M / 2^e||_inf in [1, 2), or 0 for M = 0. Entries are finite, but rows near the
// top of the range can sum past it: those are measured after an exact scaling by 2^-64.
int norm_exponent(Backend& be, Mat& m) {
  be.max_abs_row_sum(m, 0);
  double norm = be.fetch_scalars()[0][0];
  int prescaled = 0;
  if (std::isinf(norm)) {
    prescaled = -64;
    scale_by_power_of_two(be, m, prescaled);
    be.max_abs_row_sum(m, 0);
    norm = be.fetch_scalars()[0][0];
    scale_by_power_of_two(be, m, -prescaled);
  }
  return norm > 0 ? std::ilogb(norm) - prescaled : 0;
}

Options inner_options(const SolveOptions& o) {
  Options io;
  io.p = 1;
  io.target = 0.5;  // replaced per run (inner_target)
  io.precond = o.precond;
  io.symmetry_tolerance = o.symmetry_tolerance;
  io.schedule_source = o.schedule_source;
  io.schedule_file = o.schedule_file;
  io.device = o.device;
  io.stream = o.stream;
  io.compute = o.compute;
  io.verify = false;  // the solve is judged by its own residual (verified_residual)
  io.fallback = Fallback::on_failure;
  return io;
}

// A proven upper bound of ||B - A X||_F / ||B||_F from the residual R the backend formed (one level above
// the storage, unit roundoff u_acc, then rounded to the storage, unit u_s) and the computed norms:
//   R_acc = fl(B - A X):  |R_acc - (B - A X)| <= gamma_{n+1}(u_acc) (|B| + |A| |X|)   (Higham, Thm 3.5)
//   R = fl_s(R_acc):      ||R_acc||_F <= ||R||_F / (1 - u_s)
//   || |A| |X| ||_F <= ||A||_F ||X||_F,  and every norm computed in double by a sum of m squares is within
//   a relative (m + 2) u_d of the true one (inflated here, deflated for the denominator).
double verified_relative_residual(double r_norm, double a_norm, double x_norm, double b_norm, std::int64_t n,
                                  std::int64_t k, DType storage) {
  const double ud = std::numeric_limits<double>::epsilon() / 2;
  const double u_acc = (storage == DType::bf16 || storage == DType::f16) ? std::numeric_limits<float>::epsilon() / 2 : ud;
  const double u_s = detail::unit_roundoff(storage);
  auto gamma = [](double m, double u) { return m * u / (1 - m * u); };
  auto up = [&](double norm, double entries) { return norm * (1 + gamma(entries + 2, ud)); };
  const double nd = static_cast<double>(n), kd = static_cast<double>(k);
  const double r = up(r_norm, nd * kd) / (1 - u_s);
  const double rounding = gamma(nd + 1, u_acc) * (up(b_norm, nd * kd) + up(a_norm, nd * nd) * up(x_norm, nd * kd));
  const double denominator = b_norm * (1 - gamma(nd * kd + 2, ud));
  return (r + rounding) * (1 + 4 * ud) / denominator;
}

}  // namespace


namespace detail {

class SolveEngine {
 public:
  SolveEngine(const MatrixDesc& a, const MatrixDesc& b, const SolveOptions& o);
  SolveReport execute(const Matrix& a, const Matrix& b, MutableMatrix x);
  const SolveOptions& options() const { return o_; }

 private:
  SolveOptions o_;
  std::int64_t n_ = 0, k_ = 0;
  const ScheduleSet* tables_ = nullptr;
  std::optional<ScheduleSet> loaded_;
  std::unique_ptr<Backend> be_;
  Mat am_, bm_, xm_, r_, x_prev_, x_fast_, um_, hm_, pm_;
  std::unique_ptr<RootEngine> inverse_;  // p = 1 on A (SPD) or on H (general)
  std::unique_ptr<solve::PolarFactor> polar_;

  Refinement refine(const Mat& m, double b_norm, double target, int budget);
  double certified_residual(double b_norm);
};

SolveEngine::SolveEngine(const MatrixDesc& a, const MatrixDesc& b, const SolveOptions& o) : o_(o) {
  check_solve_options(o);
  if (a.rows < 1 || a.cols < 1)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " must be at least 1 x 1");
  if (b.rows < 1 || b.cols < 1)
    throw Error("b: shape " + std::to_string(b.rows) + " x " + std::to_string(b.cols) + " must be at least 1 x 1");
  if (a.rows != a.cols)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is not square");
  if (b.rows != a.rows)
    throw Error("b: has " + std::to_string(b.rows) + " rows, expected " + std::to_string(a.rows) + " (a's size)");
  if (a.batch != 1 || b.batch != 1)
    throw Error("a, b: batch counts " + std::to_string(a.batch) + ", " + std::to_string(b.batch) +
                ": solves and Gram applies take one matrix (batch 1)");
  if (o.max_gemms > 0 && o.max_gemms < 4)
    throw Error("options.max_gemms = " + std::to_string(o.max_gemms) +
                ": a solve needs at least 4 GEMMs (one iteration GEMM, X0 = M B, one residual, and room to build M)");
  n_ = a.rows;
  k_ = b.cols;
  // SolveOptions carries no embedded set: ScheduleSource::embedded is reported as such.
  tables_ = &schedule_set_for(o.schedule_source, o.schedule_file, nullptr, loaded_);
  const DType storage = o.storage_from_input ? a.dtype : o.storage;
  be_ = make_backend(o.device, storage, o.compute, o.stream);
  am_ = be_->allocate(n_, n_, 1);
  bm_ = be_->allocate(n_, k_, 1);
  xm_ = be_->allocate(n_, k_, 1);
  r_ = be_->allocate(n_, k_, 1);
  x_prev_ = be_->allocate(n_, k_, 1);
  x_fast_ = be_->allocate(n_, k_, 1);
  const MatrixDesc square{n_, n_, 1, storage, o.device};
  inverse_ = std::make_unique<RootEngine>(square, nullptr, inner_options(o), tables_, *be_);
  if (o.structure != Structure::spd) {
    um_ = be_->allocate(n_, n_, 1);
    hm_ = be_->allocate(n_, n_, 1);
    pm_ = be_->allocate(n_, n_, 1);
    polar_ = std::make_unique<solve::PolarFactor>(*be_, n_, *tables_);
  }
}

// X0 = M B, R = B - A X, then X <- X + M R while above the target, within max_corrections and budget.
// Every residual is accumulated one level above the storage (Backend::residual).
Refinement SolveEngine::refine(const Mat& m, double b_norm, double target, int budget) {
  Backend& be = *be_;
  Refinement out;
  be.gemm(Op::N, Op::N, 1.0, m, bm_, 0.0, xm_);
  be.residual(am_, xm_, bm_, r_);
  out.gemms = 2;
  auto rel = [&] { return detail::solve::frobenius(be, r_) / b_norm; };
  out.residuals.push_back(rel());
  if (!std::isfinite(out.residuals.back())) {
    out.stalled = true;
    out.reason = "non-finite residual of X0";
    return out;
  }
  while (out.residuals.back() > target && out.corrections < o_.max_corrections && out.gemms + 2 <= budget) {
    be.copy(xm_, x_prev_);
    be.gemm(Op::N, Op::N, 1.0, m, r_, 1.0, xm_);
    be.residual(am_, xm_, bm_, r_);
    out.gemms += 2;
    ++out.corrections;
    const double prev = out.residuals.back(), now = rel();
    out.residuals.push_back(now);
    if (!std::isfinite(now) || now > kStallFactor * prev) {
      out.stalled = true;
      out.reason = "correction " + std::to_string(out.corrections) + " moved the relative residual from " +
                   format_number(prev) + " to " + format_number(now) + " (expected at least a halving)";
      if (!(now <= prev)) {
        be.copy(x_prev_, xm_);  // keep the better iterate
        be.residual(am_, xm_, bm_, r_);
        out.residuals.back() = prev;
      }
      break;
    }
  }
  return out;
}

// The proven bound for the X in xm_ (r_ holds its residual). Near the ends of the double range (A ~ 2^1000)
// the sums of squares of A and X would overflow or underflow: there ||A||_F ||X||_F is taken as
// ||2^e A||_F ||2^-e X||_F, both scalings exact (A is not needed after this; X is scaled in a copy).
double SolveEngine::certified_residual(double b_norm) {
  be_->max_abs_row_sum(am_, 0);
  const double a_inf = be_->fetch_scalars()[0][0];
  const Mat* x = &xm_;
  if (a_inf > 0 && std::isfinite(a_inf) && (a_inf < kFrobeniusSafeLo || a_inf > kFrobeniusSafeHi)) {
    const int e = -std::ilogb(a_inf);
    be_->scale(std::vector<double>{std::ldexp(1.0, e)}, am_);
    be_->copy(xm_, x_prev_);
    be_->scale(std::vector<double>{std::ldexp(1.0, -e)}, x_prev_);
    x = &x_prev_;
  }
  be_->frobenius_norm(r_, 0);
  be_->frobenius_norm(am_, 1);
  be_->frobenius_norm(*x, 2);
  const auto s = be_->fetch_scalars();
  return verified_relative_residual(s[0][0], s[1][0], s[2][0], b_norm, n_, k_, be_->storage());
}

SolveReport SolveEngine::execute(const Matrix& a, const Matrix& b, MutableMatrix x) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const SolveOptions& o = o_;
  detail::check_view("a", a, o.device, detail::Batching::single_matrix);
  detail::check_view("b", b, o.device, detail::Batching::single_matrix);
  detail::check_view("x", x, o.device, detail::Batching::single_matrix);
  if (a.rows != n_ || a.cols != n_)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " does not match the plan's " +
                std::to_string(n_) + " x " + std::to_string(n_));
  if (b.rows != n_ || b.cols != k_)
    throw Error("b: shape " + std::to_string(b.rows) + " x " + std::to_string(b.cols) + " does not match the plan's " +
                std::to_string(n_) + " x " + std::to_string(k_));
  if (x.rows != b.rows || x.cols != b.cols)
    throw Error("x: shape " + std::to_string(x.rows) + " x " + std::to_string(x.cols) + " does not match b's " +
                std::to_string(b.rows) + " x " + std::to_string(b.cols));
  const int budget = o.max_gemms > 0 ? o.max_gemms : INT_MAX;

  SolveReport report;
  Backend& be = *be_;
  const DType storage = be.storage();
  report.storage = to_string(storage);
  report.backend = be.name();
  const std::int64_t n = n_;
  detail::solve::move_in(be, "a", a, am_);
  detail::solve::move_in(be, "b", b, bm_);
  detail::check_input_values(be, "a", a, am_);
  detail::check_input_values(be, "b", b, bm_);
  // The relative residuals need ||B||_F and ||B - A X||_F, which frobenius_norm gives only within its
  // range: solve for B / 2^e with ||B / 2^e||_inf in [1, 2) (exact) and scale X back at the end. (A B of
  // 1e-300 once read as zero and returned X = 0; one of 1e300 overflowed the norms into the LU fallback.)
  const int b_exponent = norm_exponent(be, bm_);
  scale_by_power_of_two(be, bm_, -b_exponent);
  const double b_norm = detail::solve::frobenius(be, bm_);

  if (b_norm == 0) {  // X = 0 exactly; nothing to iterate on
    be.scale(std::vector<double>{0.0}, xm_);
    detail::solve::move_out(be, xm_, x);
    report.method = "none";
    report.structure = "not examined";
    report.target_reached = true;
    report.verified_residual = 0.0;
    report.certified = true;
    report.notes.push_back("b is zero, so x = 0");
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return report;
  }

  const double unit = unit_roundoff(storage);
  const double sym_tol = o.symmetry_tolerance >= 0 ? o.symmetry_tolerance : 100 * unit;
  bool spd = o.structure == Structure::spd ||
             (o.structure == Structure::automatic && looks_spd(detail::solve::host_copy(be, am_), n, sym_tol));
  report.structure = spd ? "symmetric" : "general";
  if (!spd && !polar_)
    throw Error("internal: general structure on a plan made for structure spd");

  const double inner_target =
      o.inner_target > 0 ? o.inner_target
                         : std::clamp(std::sqrt(o.target > 0 ? o.target : 1e-6), inner_target_floor(storage),
                                      kInnerTargetCeiling);
  // Budget split: the refinement keeps room for X0, R0 and one correction (6 GEMMs: 2 + 2 + slack of 2 for
  // a second one); the approximate inverse takes the rest. The general path first gives the polar
  // iteration up to half of what the inverse would get.
  const int refine_reserve = budget == INT_MAX ? 0 : std::min(6, budget - 2);
  std::string fallback_reason;
  bool have_inverse = false;
  double contraction = 0;  // predicted per-correction factor
  Mat* m_inverse = nullptr;
  RootEngine::RunOverrides ov;
  ov.not_positive_definite_is_status = true;
  RootEngine& inv = *inverse_;
  ov.target = inner_target;

  if (spd) {
    report.method = "spd";
    ov.max_gemms = budget == INT_MAX ? 0 : budget - refine_reserve;
    ov.lambda_min_hint = o.lambda_min_hint;
    ov.kappa_hint = o.kappa_hint;
    report.inverse = inv.run(am_, nullptr, ov);
    if (report.inverse.status == Status::not_positive_definite) {
      if (o.structure == Structure::spd)
        throw Error("a: not positive definite (" + report.inverse.fallback_reason +
                    ") and options.structure is spd");
      report.notes.push_back("A is symmetric but not positive definite (" + report.inverse.fallback_reason +
                             "); solved as a general matrix");
      spd = false;
      report.structure = "general";
      if (!polar_) throw Error("internal: no polar factor in this plan");
    } else {
      report.inverse_gemms = report.inverse.gemms;
      have_inverse = true;
      m_inverse = &inv.result();
      contraction = report.inverse.fallback ? 0 : report.inverse.model_eps;
      if (report.inverse.fallback)
        report.notes.push_back("the SPD iteration fell back to the eigendecomposition: " + report.inverse.fallback_reason);
    }
  }

  if (!spd) {
    report.method = "polar";
    // U from a Lanczos-estimated start first. When that start was too optimistic, H = U^T A can come out
    // not numerically positive definite (small singular values of U unresolved): the polar iteration then
    // continues from U, which has the same polar factor as A, from the table's floor.
    const int after_reserve = budget == INT_MAX ? INT_MAX : budget - refine_reserve - 2;  // H and P
    const int polar_budget = after_reserve == INT_MAX ? INT_MAX : after_reserve / 2;
    be.copy(am_, um_);
    for (int attempt = 0; attempt < 2 && !have_inverse; ++attempt) {
      detail::solve::PolarSettings ps;
      ps.target = o.polar_target;
      ps.kappa_hint = attempt == 0 ? o.kappa_hint : 0;
      ps.estimate_start = attempt == 0;
      ps.max_gemms = polar_budget == INT_MAX ? INT_MAX : polar_budget - report.polar_gemms;
      be.copy(um_, pm_);  // the start (pm_ is free until P below)
      const detail::solve::PolarResult pr = polar_->run(pm_, ps, um_);
      report.polar_steps += pr.steps;
      report.polar_bound = pr.bound;
      report.polar_certified = pr.certified;
      report.polar_gemms += pr.gemms;
      if (!pr.converged) {
        fallback_reason = "polar iteration: " + pr.reason;
        break;
      }
      be.gemm(Op::T, Op::N, 1.0, um_, am_, 0.0, hm_);  // H = U^T A, symmetric positive definite in exact arithmetic
      be.symmetrize(hm_);
      report.polar_gemms += 1;
      const int used = report.polar_gemms + 1;  // P below
      // cond(H) = cond(A) * (the spread of sigma(U)): sqrt((1 + bound) / (1 - bound)).
      const double spread = std::sqrt((1 + pr.bound) / (1 - pr.bound));
      RootEngine::RunOverrides hov;
      hov.not_positive_definite_is_status = true;
      hov.target = inner_target;
      hov.kappa_hint = o.kappa_hint > 1 ? o.kappa_hint * spread : 0.0;
      hov.lambda_min_hint = 0.0;
      hov.max_gemms = budget == INT_MAX ? 0 : budget - refine_reserve - used;
      if (budget != INT_MAX && *hov.max_gemms <= 0) {
        fallback_reason = "H = U^T A: options.max_gemms = " + std::to_string(o.max_gemms) +
                          " leaves no GEMMs for the inverse of H";
        break;
      }
      Report hr;
      try {
        hr = inv.run(hm_, nullptr, hov);
      } catch (const Error& e) {
        // Only a budget that cannot fit one step lands here (inputs were validated above).
        fallback_reason = std::string("H = U^T A: ") + e.what();
        break;
      }
      if (hr.status == Status::not_positive_definite) {
        fallback_reason = "H = U^T A: not positive definite (" + hr.fallback_reason + ")";
        if (attempt == 0 && pr.l0_source == "lanczos_estimate") {
          report.notes.push_back("H from the estimated polar start was not positive definite; the polar iteration "
                                 "continued from the table floor");
          fallback_reason.clear();
        }
        continue;
      }
      report.inverse = hr;
      report.inverse_gemms += hr.gemms;
      be.gemm(Op::N, Op::T, 1.0, inv.result(), um_, 0.0, pm_);  // P = H^{-1} U^T ~ A^{-1}
      report.polar_gemms += 1;
      have_inverse = true;
      m_inverse = &pm_;
      // A P - I is similar (through U) to M_H H - I: its spectral radius is eps, its norm eps * cond(U).
      contraction = hr.fallback ? 0 : hr.model_eps * spread;
      if (hr.fallback)
        report.notes.push_back("the SPD iteration on H fell back to the eigendecomposition: " + hr.fallback_reason);
    }
  }
  report.gemms = report.inverse_gemms + report.polar_gemms;

  if (have_inverse) {
    const Refinement rf = refine(*m_inverse, b_norm, o.target, budget - report.gemms);
    report.gemms += rf.gemms;
    report.corrections = rf.corrections;
    report.residuals = rf.residuals;
    for (std::size_t i = 0; i < rf.residuals.size(); ++i)
      report.predicted.push_back(std::pow(contraction, static_cast<double>(i + 1)));
    report.residual = rf.residuals.back();
    if (!(report.residual <= o.target) && rf.stalled) fallback_reason = "refinement: " + rf.reason;
    if (!(report.residual <= o.target) && !rf.stalled && o.target > 0)
      report.notes.push_back("target not reached within the " +
                             (rf.corrections == o.max_corrections ? std::to_string(o.max_corrections) + " corrections"
                                                                  : std::string("GEMM budget")));
  }

  if (!fallback_reason.empty()) {
    if (!o.allow_fallback) {
      report.notes.push_back("no convergence (" + fallback_reason + "); the fallback is disabled");
      if (!have_inverse) throw Error("solve did not converge (" + fallback_reason + ") and options.allow_fallback is false");
    } else {
      report.fallback = true;
      report.fallback_reason = fallback_reason;
      // Near the storage's rounding floor the fast path may already be as good as LU: keep the better X.
      if (have_inverse) be.copy(xm_, x_fast_);
      const double fast_residual = have_inverse ? report.residual : INFINITY;
      if (!be.exact_solve(am_, bm_, xm_))
        throw Error("a: singular to working precision (LU found a zero pivot) after " + fallback_reason);
      be.residual(am_, xm_, bm_, r_);  // verification of the fallback; outside the GEMM budget by design
      const double lu_residual = detail::solve::frobenius(be, r_) / b_norm;
      if (fast_residual <= lu_residual) {
        be.copy(x_fast_, xm_);
        be.residual(am_, xm_, bm_, r_);
        report.notes.push_back("the LU fallback did not improve on the fast path (relative residual " +
                               format_number(lu_residual) + " vs " + format_number(fast_residual) + "): kept the fast path's X");
      } else {
        report.residual = lu_residual;
        report.method = "lu";
        report.status = Status::fallback;
      }
      if (!std::isfinite(report.residual)) {
        // Distinguish an unrepresentable solution (B huge) from a singular A.
        throw Error("a: the LU fallback produced non-finite values for b scaled to norm 1, so A is singular or too "
                    "ill-conditioned for " + std::string(to_string(storage)) + " (b is not the cause)");
      }
    }
  }
  if (std::isfinite(report.residual)) {
    report.verified_residual = certified_residual(b_norm);
    report.certified = true;
  }
  report.target_reached = o.target > 0 && report.verified_residual && *report.verified_residual <= o.target;
  if (o.target > 0 && report.residual <= o.target && !report.target_reached)
    report.notes.push_back("the computed residual " + format_number(report.residual) + " meets the target but its "
                           "proven bound " + format_number(report.verified_residual.value_or(INFINITY)) +
                           " (rounding of forming it included) does not");
  scale_by_power_of_two(be, xm_, b_exponent);
  detail::solve::move_out(be, xm_, x);
  detail::check_result_values(be, "x", xm_, x, "A^{-1} B", "rescale b (x scales with it)");
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace detail

SolvePlan::SolvePlan(const MatrixDesc& a, const MatrixDesc& b, const SolveOptions& options)
    : engine_(std::make_unique<detail::SolveEngine>(a, b, options)) {}
SolvePlan::~SolvePlan() = default;
SolvePlan::SolvePlan(SolvePlan&&) noexcept = default;
SolvePlan& SolvePlan::operator=(SolvePlan&&) noexcept = default;
SolveReport SolvePlan::execute(const Matrix& a, const Matrix& b, MutableMatrix x) { return engine_->execute(a, b, x); }
const SolveOptions& SolvePlan::options() const { return engine_->options(); }

SolveReport solve(const Matrix& a, const Matrix& b, MutableMatrix x, const SolveOptions& o) {
  detail::check_view("a", a, o.device, detail::Batching::single_matrix);
  detail::check_view("b", b, o.device, detail::Batching::single_matrix);
  detail::check_view("x", x, o.device, detail::Batching::single_matrix);
  return SolvePlan(describe(a), describe(b), o).execute(a, b, x);
}

Structure parse_structure(const std::string& name) {
  for (Structure s : {Structure::automatic, Structure::spd, Structure::general})
    if (name == to_string(s)) return s;
  throw Error("structure '" + name + "' is unknown (expected automatic, spd or general)");
}

const char* to_string(Structure s) {
  switch (s) {
    case Structure::automatic: return "automatic";
    case Structure::spd: return "spd";
    case Structure::general: return "general";
  }
  return "?";
}



}  // namespace pe
