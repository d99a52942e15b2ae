// Dispatch on the working precision, input validation and the greedy schedule.
#include "synth.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "pe/detail/format.hpp"
#include "pe/schedule_types.hpp"
#include "pe/types.hpp"

namespace pe::synth {

using pe::detail::format_number;
namespace detail {
Step solve_50(const StepRequest& request);
Step solve_100(const StepRequest& request);
Recheck recheck_50(int p, const Value& l, const std::vector<Value>& c, const GuardSpec& g);
Recheck recheck_100(int p, const Value& l, const std::vector<Value>& c, const GuardSpec& g);
}  // namespace detail

namespace {

void check_common(int p, int degree) {
  if (p < 1 || p > 64) throw Error("pe-synth: --p = " + std::to_string(p) + " is not in [1, 64]");
  if (degree < 1 || degree > kMaxDegree)
    throw Error("pe-synth: --degree = " + std::to_string(degree) + " is not in [1, " + std::to_string(kMaxDegree) + "]");
}

void check_guards(const GuardSpec& g) {
  if (!(g.eta >= 0 && g.eta <= 0.5)) throw Error("pe-synth: eta = " + format_number(g.eta) + " is not in [0, 0.5]");
  if (!(g.overshoot_cap >= 1 && std::isfinite(g.overshoot_cap)))
    throw Error("pe-synth: overshoot_cap = " + std::to_string(g.overshoot_cap) + " is not a finite number >= 1");
}

}  // namespace

void check_decimal_argument(const Value& v, const char* name, bool unit_open) {
  const std::string shown = v.is_text ? "'" + v.text + "'" : format_number(v.number);
  double d = v.number;
  if (v.is_text) {
    if (!pe::detail::is_decimal_number(v.text))
      throw Error(std::string("pe-synth: ") + name + " = " + shown + " is not a decimal number (expected e.g. " +
                  (unit_open ? "1e-4 or 0.001, in (0, 1)" : "-7.5 or 1.25e3") + ")");
    d = std::strtod(v.text.c_str(), nullptr);
  }
  if (!std::isfinite(d)) throw Error(std::string("pe-synth: ") + name + " = " + shown + " is not a finite number");
  // A decimal string may lie closer to 1 than any double below it; the exact check happens at working
  // precision.
  if (unit_open && !(d > 0 && d <= 1))
    throw Error(std::string("pe-synth: ") + name + " = " + (v.is_text ? v.text : shown) + " is not in (0, 1)");
}

int working_digits(int requested) {
  if (requested < kMinDigits || requested > kMaxDigits)
    throw Error("pe-synth: --digits = " + std::to_string(requested) + " is not in [" + std::to_string(kMinDigits) +
                ", " + std::to_string(kMaxDigits) + "]");
  return requested <= 50 ? 50 : 100;
}

Step solve_step(const StepRequest& request) {
  check_common(request.p, request.degree);
  check_decimal_argument(request.l, "--l", true);
  check_guards(request.guards);
  const int digits = working_digits(request.digits);
  return digits == 50 ? detail::solve_50(request) : detail::solve_100(request);
}

Recheck recertify(int p, const Value& l, const std::vector<Value>& coefficients, int digits,
                  const GuardSpec& guards) {
  if (coefficients.empty()) throw Error("pe-synth: recertify needs at least one coefficient");
  check_common(p, std::max(1, static_cast<int>(coefficients.size()) - 1));
  check_decimal_argument(l, "l", true);
  for (const Value& c : coefficients) check_decimal_argument(c, "coefficient", false);
  check_guards(guards);
  return working_digits(digits) == 50 ? detail::recheck_50(p, l, coefficients, guards)
                                      : detail::recheck_100(p, l, coefficients, guards);
}

Schedule greedy_schedule(const ScheduleRequest& request) {
  if (request.max_steps < 0) throw Error("pe-synth: --steps = " + std::to_string(request.max_steps) + " is not >= 1");
  if (!(request.target >= 0 && request.target < 1))
    throw Error("pe-synth: --target = " + format_number(request.target) + " is not in (0, 1)");
  if (request.max_steps == 0 && request.target == 0)
    throw Error("pe-synth: give --steps T (>= 1) or --target EPS (in (0, 1))");
  Schedule out;
  StepRequest step{request.p, request.degree, request.l0, request.digits, request.kind, request.guards};
  const int limit = request.max_steps > 0 ? request.max_steps : request.step_limit;
  double previous = 2;
  for (int k = 0; k < limit; ++k) {
    Step s;
    try {
      s = solve_step(step);
    } catch (const Error& e) {
      if (k == 0) throw;
      // Later intervals come from earlier steps: a failure there means the interval has become too
      // narrow for the working precision, which the user can fix.
      throw Error("pe-synth: after " + std::to_string(k) + " steps (bound " + format_number(previous) + ") step " +
                  std::to_string(k + 1) + " is beyond " + std::to_string(working_digits(request.digits)) +
                  "-digit arithmetic; use a larger --target or more --digits (" + e.what() + ")");
    }
    const double bound = request.chain_f64 ? s.cert_f64.eps_d : s.cert.eps_d;
    out.steps.push_back(s);
    if (request.target > 0 && bound <= request.target) {
      out.reached = true;
      break;
    }
    if (!(bound < previous)) {
      if (request.allow_unreached) break;
      throw Error("pe-synth: the bound stalls at " + format_number(bound) + " after " + std::to_string(k + 1) +
                  " steps; the target " + format_number(request.target) + " is below what " +
                  (request.chain_f64 ? std::string("double coefficients") :
                                       std::to_string(s.digits) + "-digit arithmetic") + " can certify");
    }
    previous = bound;
    step.l = request.chain_f64 ? Value::of(s.cert_f64.next_l_d) : Value::of(s.cert.next_l);
  }
  if (request.max_steps == 0 && !out.reached && !request.allow_unreached)
    throw Error("pe-synth: --target " + format_number(request.target) + " not reached within " +
                std::to_string(limit) + " steps");
  out.gemms = pe::schedule_gemms(request.p, request.kind == StepKind::newton ? 1 : request.degree,
                                 static_cast<int>(out.steps.size()));
  return out;
}

}  // namespace pe::synth
