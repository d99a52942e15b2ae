// pe-synth core: the precision-independent interface of the minimax solver, certifier and greedy
// schedules. Multiprecision values cross this interface as decimal strings that round-trip exactly at
// the working precision, so callers never depend on a particular Boost.Multiprecision type.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "pe/schedule_types.hpp"
#include "pe/types.hpp"

namespace pe::synth {

// Bumped with the schedule schema or whenever the generated numbers change on purpose.
inline constexpr const char* kGeneratorVersion = "0.2.0";

// The working precisions compiled in; --digits D runs at the smallest one >= D.
inline constexpr int kMinDigits = 30;
inline constexpr int kMaxDigits = 100;
int working_digits(int requested);  // throws pe::Error outside [kMinDigits, kMaxDigits]

// Thrown by solve_step (kind guarded) when no coefficients can be stored for this l: neither the plain
// nor the constrained optimum nor the fallback has double and float roundings that certify (a bound
// below 1; fails at tiny l and high degree, where q's coefficients cancel beyond float precision) and
// satisfy G1..G3.
// generate leaves such an edge out (the edge below serves it); verify re-checks that it still has none.
class NoTableEntry : public Error {
 public:
  using Error::Error;
};

// What a step is certified against. eta and overshoot_cap define the guards G1..G3 of
// include/pe/schedule_types.hpp.
struct GuardSpec {
  double eta = 1.0 / 64;
  double overshoot_cap = 1.0 + 1.0 / 64;
};

// A proven enclosure of phi([l, 1]) and the bound it implies, max |1 - phi| <= eps. Images always
// contain 1 (widened to it when rounding moved them off), so eps = max(1 - lo, hi - 1).
struct Certificate {
  std::string eps, image_lo, image_hi;  // decimal strings rounded outward (eps up, lo down, hi up)
  double eps_d = 0, image_lo_d = 0, image_hi_d = 0;  // the same, rounded outward to double
  std::string next_l;  // image_lo / image_hi rounded down (the next normalised interval)
  double next_l_d = 0;
};

// Certified guard quantities of one coefficient set; image is that set's certificate.
struct GuardReport {
  bool g1 = false, g2 = false, g3 = false;
  double overshoot = 0;  // certified max over [1, 1+eta] of phi / image_hi (rounded up)
  std::string failure;   // which guard failed and why (empty when all hold)
  bool ok() const { return g1 && g2 && g3; }
};

// One step on [l, 1]: the coefficients (c_0 .. c_degree, lowest power first) at the working precision,
// rounded to double and to float (zero above the degree), and a certificate (plus guards) for each.
struct Step {
  int p = 0, degree = 0, digits = 0;
  std::string l;                         // the interval's lower end, exactly as solved
  std::vector<std::string> coefficients;  // degree + 1 decimal strings
  std::array<double, kMaxCoefficients> coeff_f64{};
  std::array<float, kMaxCoefficients> coeff_f32{};
  Certificate cert, cert_f64, cert_f32;
  GuardReport guards_f64, guards_f32;
  double overshoot = 0;                  // max of the f64 and f32 overshoots (what tables store)
  bool guarded = false;                  // coefficients are the constrained (NLopt) optimum
  double eps_plain = 0;                  // certified eps_f64 of the unguarded optimum
  // Non-empty when the double or float coefficients cannot be certified (tiny l, high degree): that
  // set's certificate then claims nothing (infinite bound). Never set for a guarded step that returns.
  std::string storage_failure;
  std::string delta;                     // the weighted Chebyshev error before rescaling (plain solve)
  std::vector<std::string> reference;    // the equioscillation points of the plain solve
  int remez_iterations = 0;
};

enum class StepKind {
  minimax,  // the plain optimum of max |1 - phi| on [l, 1]
  guarded,  // the plain optimum if it satisfies G1..G3, otherwise the constrained optimum
  newton    // the unscaled Newton step q = (p + 1 - y) / p, for comparison
};

// A multiprecision input: decimal text (is_text), or a double taken exactly.
struct Value {
  bool is_text = false;
  std::string text;
  double number = 0;
  static Value of(std::string t) { return {true, std::move(t), 0}; }
  static Value of(double d) { return {false, std::string(), d}; }
};

struct StepRequest {
  int p = 2;
  int degree = 2;  // 1..kMaxDegree (Newton: 1)
  Value l;  // 0 < l < 1
  int digits = 50;
  StepKind kind = StepKind::minimax;
  GuardSpec guards;
};

// Solves and certifies one step. Throws pe::Error on bad input or when certification fails.
Step solve_step(const StepRequest& request);

// Re-certifies given coefficients on [l, 1]: certificate and guards (against the fresh image), used
// by verify.
struct Recheck {
  Certificate cert;
  GuardReport guards;
  bool q_positive = false;
};
Recheck recertify(int p, const Value& l, const std::vector<Value>& coefficients, int digits,
                  const GuardSpec& guards);  // degree + 1 coefficients, lowest power first

// The greedy schedule from [l0, 1]: each step optimal for its own interval, the next interval the
// certified normalised image. Stops after max_steps, or as soon as a step's bound <= target (> 0).
struct ScheduleRequest {
  int p = 2, degree = 2, digits = 50;
  Value l0;
  int max_steps = 0;     // 0: no limit other than the target (then target must be > 0)
  double target = 0;     // 0: exactly max_steps steps
  StepKind kind = StepKind::minimax;
  GuardSpec guards;
  bool chain_f64 = false;  // next l from the f64 certificate, rounded down to double (runtime tables)
  int step_limit = 64;     // hard cap when only a target is given
  bool allow_unreached = false;  // keep the steps made when the target is not reached (or the bound stalls)
};
struct Schedule {
  std::vector<Step> steps;
  bool reached = false;  // final bound <= target
  int gemms = 0;         // pe::schedule_gemms(p, degree, steps): the runtime's count (gemm_cost.hpp)
};
Schedule greedy_schedule(const ScheduleRequest& request);

// Checks a decimal text argument (name as the command line spells it, e.g. "--l"): a plain decimal
// number (no hexadecimal, inf or nan), finite, and in (0, 1) when unit_open. Throws pe::Error naming
// the argument, the value and the expected form.
void check_decimal_argument(const Value& v, const char* name, bool unit_open);

}  // namespace pe::synth
