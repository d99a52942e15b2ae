#include "cli_options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "pe/detail/format.hpp"

namespace pe_run {

namespace {

using pe::detail::format_number;

// A validator over the parsed number: `accept` decides, `expected` says what was wanted (the help shows
// it too). Text that is not a number is named as such; "nan" parses and is refused by the range.
CLI::Validator number_validator(std::function<bool(double)> accept, const std::string& expected) {
  return CLI::Validator(
      [accept, expected](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size()) return "got '" + text + "'; expected " + expected;
        if (errno == ERANGE && std::isinf(v)) return "got " + text + ", which overflows a double; expected " + expected;
        return accept(v) ? std::string() : "got " + text + "; expected " + expected;
      },
      expected);
}

}  // namespace

CLI::Validator finite_at_least(double lo) {
  return number_validator([lo](double v) { return std::isfinite(v) && v >= lo; },
                          "a finite value >= " + format_number(lo));
}

CLI::Validator zero_or_at_least(double lo) {
  return number_validator([lo](double v) { return v == 0 || (std::isfinite(v) && v >= lo); },
                          "0 (off) or a finite value >= " + format_number(lo));
}

CLI::Validator zero_or_open_unit_interval() {
  return number_validator([](double v) { return v >= 0 && v < 1; }, "0 or a value in (0, 1)");
}

CLI::Validator in_unit_interval(bool zero_allowed) {
  return number_validator([zero_allowed](double v) { return (zero_allowed ? v >= 0 : v > 0) && v < 1; },
                          zero_allowed ? "a value in [0, 1)" : "a value in (0, 1)");
}

CLI::Validator integer_in(long long lo, long long hi) {
  const std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, expected](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || v < lo || v > hi)
          return "got '" + text + "'; expected " + expected;
        return {};
      },
      expected);
}

void add_p_option(CLI::App* app, int& p) {
  app->add_option("--p", p, "root: A^{-1/p} (Options::p)")->required()->check(integer_in(1, 64));
}

void add_target_option(CLI::App* app, double& target, const std::string& meaning) {
  app->add_option("--target", target, meaning + " to reach; 0: budget only (target)")
      ->capture_default_str()
      ->check(zero_or_open_unit_interval());
}

void add_max_gemms_option(CLI::App* app, int& max_gemms) {
  app->add_option("--max-gemms", max_gemms, "GEMM budget, never exceeded; 0: none (max_gemms)")
      ->check(integer_in(0, 1 << 30));
}

void add_max_steps_option(CLI::App* app, int& max_steps) {
  app->add_option("--max-steps", max_steps,
                  "step budget; 0: at most " + std::to_string(pe::kDefaultStepLimit) + " (Options::max_steps)")
      ->check(integer_in(0, 1 << 20));
}

void add_degree_option(CLI::App* app, int& degree) {
  app->add_option("--degree", degree, "degree of q: 1, 2, or 0 = the cheaper for the target (degree)")
      ->check(integer_in(0, 2));
}

void add_precond_option(CLI::App* app, std::string& precond) {
  app->add_option("--precond", precond,
                  "scaling before the iteration: none | frobenius | jacobi | ruiz | aol; the diagonal ones "
                  "(jacobi, ruiz, aol) are exact for p = 1 only (precond)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "frobenius", "jacobi", "ruiz", "aol"}));
}

void add_hint_options(CLI::App* app, double& lambda_min_hint, double& kappa_hint) {
  app->add_option("--lambda-min-hint", lambda_min_hint,
                  "your lower bound of lambda_min(A), trusted as given; 0: none (lambda_min_hint)")
      ->check(finite_at_least(0));
  app->add_option("--kappa-hint", kappa_hint, "your estimate of cond(A), trusted as given; 0: none (kappa_hint)")
      ->check(zero_or_at_least(1));
}

void add_symmetry_tolerance_option(CLI::App* app, double& symmetry_tolerance) {
  app->add_option("--symmetry-tolerance", symmetry_tolerance,
                  "largest accepted |a_ij - a_ji| / max|a|; default: 100 unit roundoffs of the dtype "
                  "(symmetry_tolerance)")
      ->check(finite_at_least(0));
}

void add_schedules_option(CLI::App* app, pe::ScheduleSource& source, std::string& file) {
  app->add_option("--schedules", file, "schedule tables .json; default: the compiled-in tables (schedule_file)")
      ->each([&source](const std::string&) { source = pe::ScheduleSource::json_file; });
}

void add_dtype_option(CLI::App* app, std::string& dtype) {
  app->add_option("--dtype", dtype, "iteration and output dtype: f32 | f64; default: the input's (storage)")
      ->check(CLI::IsMember({"f32", "f64"}));
}

void add_json_flag(CLI::App* app, bool& json) { app->add_flag("--json", json, "print the report as one JSON object"); }

pe::DType storage_of(const std::string& dtype, pe::DType file) {
  return dtype.empty() ? file : dtype == "f32" ? pe::DType::f32 : pe::DType::f64;
}

}  // namespace pe_run
