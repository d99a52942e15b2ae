// pe::solve: SPD A through the p = 1 approximate inverse plus refinement; general A through a polar
// factor (A = U H), the SPD inverse of H and refinement against A; an LU fallback, reported.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "backend_factory.hpp"
#include "common.hpp"
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
double inner_target_floor(DType storage) { return storage == DType::f64 ? 1e-8 : 1e-3; }
constexpr double kInnerTargetCeiling = 0.25;

struct Refinement {
  int gemms = 0;
  int corrections = 0;
  std::vector<double> residuals;
  bool stalled = false;
  std::string reason;
};

// X0 = M B, R = B - A X, then X <- X + M R while above the target, within max_corrections and budget.
// Every residual is accumulated one level above the storage (Backend::residual).
Refinement refine(Backend& be, const Mat& a, const Mat& b, const Mat& m, Mat& x, double b_norm, double target,
                  int max_corrections, int budget) {
  Refinement out;
  Mat r = be.allocate(b.rows, b.cols, 1), x_prev = be.allocate(b.rows, b.cols, 1);
  be.gemm(Op::N, Op::N, 1.0, m, b, 0.0, x);
  be.residual(a, x, b, r);
  out.gemms = 2;
  auto rel = [&] { return detail::solve::frobenius(be, r) / b_norm; };
  out.residuals.push_back(rel());
  if (!std::isfinite(out.residuals.back())) {
    out.stalled = true;
    out.reason = "non-finite residual of X0";
    return out;
  }
  while (out.residuals.back() > target && out.corrections < max_corrections && out.gemms + 2 <= budget) {
    be.copy(x, x_prev);
    be.gemm(Op::N, Op::N, 1.0, m, r, 1.0, x);
    be.residual(a, x, b, r);
    out.gemms += 2;
    ++out.corrections;
    const double prev = out.residuals.back(), now = rel();
    out.residuals.push_back(now);
    if (!std::isfinite(now) || now > kStallFactor * prev) {
      out.stalled = true;
      out.reason = "correction " + std::to_string(out.corrections) + " moved the relative residual from " + format_number(prev) +
                   " to " + format_number(now) + " (expected at least a halving)";
      if (!(now <= prev)) {
        be.copy(x_prev, x);  // keep the better iterate
        out.residuals.back() = prev;
      }
      break;
    }
  }
  return out;
}

void check_options(const SolveOptions& o) {
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

// The runtime reports a matrix that is not positive definite as a pe::Error whose message says so;
// every other error from it (budget, tables) is the caller's to see.
bool is_not_positive_definite(const Error& e) {
  return std::string(e.what()).find("not positive definite") != std::string::npos;
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

Options inner_options(const SolveOptions& o, double target, int budget) {
  Options io;
  io.p = 1;
  io.target = target;
  io.max_gemms = budget == INT_MAX ? 0 : budget;
  io.precond = o.precond;
  io.symmetry_tolerance = o.symmetry_tolerance;
  io.schedule_source = o.schedule_source;
  io.schedule_file = o.schedule_file;
  io.device = o.device;
  io.stream = o.stream;
  io.compute = o.compute;
  io.storage_from_input = true;  // the views handed over are already in the storage dtype
  return io;
}

}  // namespace

SolveReport solve(const Matrix& a, const Matrix& b, MutableMatrix x, const SolveOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  check_options(o);
  detail::check_view("a", a, o.device, detail::Batching::single_matrix);
  detail::check_view("b", b, o.device, detail::Batching::single_matrix);
  detail::check_view("x", x, o.device, detail::Batching::single_matrix);
  if (a.rows != a.cols)
    throw Error("a: shape " + std::to_string(a.rows) + " x " + std::to_string(a.cols) + " is not square");
  if (b.rows != a.rows)
    throw Error("b: has " + std::to_string(b.rows) + " rows, expected " + std::to_string(a.rows) + " (a's size)");
  if (x.rows != b.rows || x.cols != b.cols)
    throw Error("x: shape " + std::to_string(x.rows) + " x " + std::to_string(x.cols) + " does not match b's " +
                std::to_string(b.rows) + " x " + std::to_string(b.cols));
  const int budget = o.max_gemms > 0 ? o.max_gemms : INT_MAX;
  if (budget < 4)
    throw Error("options.max_gemms = " + std::to_string(o.max_gemms) +
                ": a solve needs at least 4 GEMMs (one iteration GEMM, X0 = M B, one residual, and room to build M)");

  SolveReport report;
  const DType storage = o.storage_from_input ? a.dtype : o.storage;
  std::unique_ptr<Backend> backend = detail::make_backend(o.device, storage, o.compute, o.stream);
  Backend& be = *backend;
  report.storage = to_string(storage);
  report.backend = be.name();
  const std::int64_t n = a.rows, k = b.cols;
  Mat am = be.allocate(n, n, 1), bm = be.allocate(n, k, 1), xm = be.allocate(n, k, 1), mm = be.allocate(n, n, 1);
  detail::solve::move_in(be, "a", a, am);
  detail::solve::move_in(be, "b", b, bm);
  detail::check_input_values(be, "a", a, am);
  detail::check_input_values(be, "b", b, bm);
  // The relative residuals need ||B||_F and ||B - A X||_F, which frobenius_norm gives only within its
  // range: solve for B / 2^e with ||B / 2^e||_inf in [1, 2) (exact) and scale X back at the end. (A B of
  // 1e-300 once read as zero and returned X = 0; one of 1e300 overflowed the norms into the LU fallback.)
  const int b_exponent = norm_exponent(be, bm);
  scale_by_power_of_two(be, bm, -b_exponent);
  const double b_norm = detail::solve::frobenius(be, bm);

  if (b_norm == 0) {  // X = 0 exactly; nothing to iterate on
    be.scale(std::vector<double>{0.0}, xm);
    detail::solve::move_out(be, xm, x);
    report.method = "none";
    report.structure = "not examined";
    report.target_reached = true;
    report.notes.push_back("b is zero, so x = 0");
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return report;
  }

  const double unit = storage == DType::f32 ? std::numeric_limits<float>::epsilon() / 2
                                            : std::numeric_limits<double>::epsilon() / 2;
  const double sym_tol = o.symmetry_tolerance >= 0 ? o.symmetry_tolerance : 100 * unit;
  bool spd = o.structure == Structure::spd ||
             (o.structure == Structure::automatic && looks_spd(detail::solve::host_copy(be, am), n, sym_tol));
  report.structure = spd ? "symmetric" : "general";

  const double inner_target =
      o.inner_target > 0 ? o.inner_target
                         : std::clamp(std::sqrt(o.target > 0 ? o.target : 1e-6), inner_target_floor(storage),
                                      kInnerTargetCeiling);
  // Budget split: the refinement keeps room for X0, R0 and one correction (6 GEMMs: 2 + 2 + slack of 2 for
  // a second one); the approximate inverse takes the rest. The general path first gives the polar
  // iteration up to half of what the inverse would get.
  const int refine_reserve = budget == INT_MAX ? 0 : std::min(6, budget - 2);
  std::optional<detail::ScheduleSet> loaded;
  const detail::ScheduleSet& schedules = o.schedule_source == ScheduleSource::compiled
                                             ? detail::compiled_schedules()
                                             : *(loaded = detail::load_schedules_json(o.schedule_file));

  std::string fallback_reason;
  bool have_inverse = false;
  double contraction = 0;  // predicted per-correction factor

  if (spd) {
    report.method = "spd";
    Options io = inner_options(o, inner_target, budget == INT_MAX ? INT_MAX : budget - refine_reserve);
    io.lambda_min_hint = o.lambda_min_hint;
    io.kappa_hint = o.kappa_hint;
    try {
      report.inverse = inverse_root(detail::solve::view_of(be, am, o.device),
                                    detail::solve::mutable_view_of(be, mm, o.device), io);
      report.inverse_gemms = report.inverse.gemms;
      have_inverse = true;
      contraction = report.inverse.fallback ? 0 : report.inverse.final_eps;
      if (report.inverse.fallback)
        report.notes.push_back("the SPD iteration fell back to the eigendecomposition: " +
                               report.inverse.fallback_reason);
    } catch (const Error& e) {
      if (!is_not_positive_definite(e) || o.structure == Structure::spd) throw;
      report.notes.push_back(std::string("A is symmetric but not positive definite (") + e.what() +
                             "); solved as a general matrix");
      spd = false;
      report.structure = "general";
    }
  }

  if (!spd) {
    report.method = "polar";
    // U from a Lanczos-estimated start first. When that start was too optimistic, H = U^T A can come out
    // not numerically positive definite (small singular values of U unresolved): the polar iteration then
    // continues from U, which has the same polar factor as A, from the table's floor.
    const int after_reserve = budget == INT_MAX ? INT_MAX : budget - refine_reserve - 2;  // H and P
    const int polar_budget = after_reserve == INT_MAX ? INT_MAX : after_reserve / 2;
    Mat um = be.allocate(n, n, 1), hm = be.allocate(n, n, 1), mh = be.allocate(n, n, 1);
    be.copy(am, um);
    for (int attempt = 0; attempt < 2 && !have_inverse; ++attempt) {
      detail::solve::PolarSettings ps;
      ps.target = o.polar_target;
      ps.kappa_hint = attempt == 0 ? o.kappa_hint : 0;
      ps.estimate_start = attempt == 0;
      ps.max_gemms = polar_budget == INT_MAX ? INT_MAX : polar_budget - report.polar_gemms;
      Mat start_from = be.allocate(n, n, 1);
      be.copy(um, start_from);
      const detail::solve::PolarResult pr = detail::solve::polar_factor(be, start_from, schedules, ps, um);
      report.polar_steps += pr.steps;
      report.polar_bound = pr.bound;
      report.polar_certified = pr.certified;
      report.polar_gemms += pr.gemms;
      if (!pr.converged) {
        fallback_reason = "polar iteration: " + pr.reason;
        break;
      }
      be.gemm(Op::T, Op::N, 1.0, um, am, 0.0, hm);  // H = U^T A, symmetric positive definite in exact arithmetic
      be.symmetrize(hm);
      report.polar_gemms += 1;
      const int used = report.polar_gemms + 1;  // P below
      Options io = inner_options(o, inner_target, budget == INT_MAX ? INT_MAX : budget - refine_reserve - used);
      // cond(H) = cond(A) * (the spread of sigma(U)): sqrt((1 + bound) / (1 - bound)).
      const double spread = std::sqrt((1 + pr.bound) / (1 - pr.bound));
      if (o.kappa_hint > 1) io.kappa_hint = o.kappa_hint * spread;
      io.symmetry_tolerance = -1;
      try {
        if (budget != INT_MAX && io.max_gemms <= 0)
          throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + " leaves no GEMMs for the inverse of H");
        report.inverse = inverse_root(detail::solve::view_of(be, hm, o.device),
                                      detail::solve::mutable_view_of(be, mh, o.device), io);
        report.inverse_gemms += report.inverse.gemms;
        be.gemm(Op::N, Op::T, 1.0, mh, um, 0.0, mm);  // P = H^{-1} U^T ~ A^{-1}
        report.polar_gemms += 1;
        have_inverse = true;
        // A P - I is similar (through U) to M_H H - I: its spectral radius is eps, its norm eps * cond(U).
        contraction = report.inverse.fallback ? 0 : report.inverse.final_eps * spread;
        if (report.inverse.fallback)
          report.notes.push_back("the SPD iteration on H fell back to the eigendecomposition: " +
                                 report.inverse.fallback_reason);
      } catch (const Error& e) {
        if (!is_not_positive_definite(e) && std::string(e.what()).find("max_gemms") == std::string::npos) throw;
        fallback_reason = std::string("H = U^T A: ") + e.what();
        if (attempt == 0 && pr.l0_source == "lanczos_estimate" && is_not_positive_definite(e)) {
          report.notes.push_back("H from the estimated polar start was not positive definite; the polar iteration "
                                 "continued from the table floor");
          fallback_reason.clear();
        }
      }
    }
  }
  report.gemms = report.inverse_gemms + report.polar_gemms;

  if (have_inverse) {
    const Refinement rf = refine(be, am, bm, mm, xm, b_norm, o.target, o.max_corrections, budget - report.gemms);
    report.gemms += rf.gemms;
    report.corrections = rf.corrections;
    report.residuals = rf.residuals;
    for (std::size_t i = 0; i < rf.residuals.size(); ++i)
      report.predicted.push_back(std::pow(contraction, static_cast<double>(i + 1)));
    report.residual = rf.residuals.back();
    report.target_reached = o.target > 0 && report.residual <= o.target;
    if (!report.target_reached && rf.stalled) fallback_reason = "refinement: " + rf.reason;
    if (!report.target_reached && !rf.stalled && o.target > 0)
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
      Mat x_fast = be.allocate(n, k, 1);
      if (have_inverse) be.copy(xm, x_fast);
      const double fast_residual = have_inverse ? report.residual : INFINITY;
      if (!be.exact_solve(am, bm, xm))
        throw Error("a: singular to working precision (LU found a zero pivot) after " + fallback_reason);
      Mat r = be.allocate(n, k, 1);
      be.residual(am, xm, bm, r);  // verification of the fallback; outside the GEMM budget by design
      const double lu_residual = detail::solve::frobenius(be, r) / b_norm;
      if (fast_residual <= lu_residual) {
        be.copy(x_fast, xm);
        report.notes.push_back("the LU fallback did not improve on the fast path (relative residual " +
                               format_number(lu_residual) + " vs " + format_number(fast_residual) + "): kept the fast path's X");
      } else {
        report.residual = lu_residual;
        report.method = "lu";
      }
      report.target_reached = o.target > 0 && report.residual <= o.target;
      if (!std::isfinite(report.residual))
        throw Error("a: the LU fallback produced non-finite values for b scaled to norm 1, so A is singular or too "
                    "ill-conditioned for " + std::string(to_string(storage)) + " (b is not the cause)");
    }
  }
  scale_by_power_of_two(be, xm, b_exponent);
  detail::solve::move_out(be, xm, x);
  detail::check_result_values(be, "x", xm, x, "A^{-1} B", "rescale b (x scales with it)");
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
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

std::string to_json(const SolveReport& r) {
  using nlohmann::json;
  json j = {{"method", r.method},
            {"structure", r.structure},
            {"gemms", r.gemms},
            {"inverse_gemms", r.inverse_gemms},
            {"polar_gemms", r.polar_gemms},
            {"corrections", r.corrections},
            {"residuals", r.residuals},
            {"predicted", r.predicted},
            {"residual", r.residual},
            {"target_reached", r.target_reached},
            {"polar_steps", r.polar_steps},
            {"polar_bound", r.polar_bound},
            {"polar_certified", r.polar_certified},
            {"inverse", json::parse(to_json(r.inverse))},
            {"fallback", r.fallback},
            {"fallback_reason", r.fallback_reason},
            {"storage", r.storage},
            {"backend", r.backend},
            {"seconds", r.seconds},
            {"notes", r.notes}};
  return j.dump();
}

}  // namespace pe
