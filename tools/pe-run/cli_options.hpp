// The pe-run options that several subcommands share, each defined once: its flag, its validation (with
// messages that name the value and what was expected, numbers through format_number) and its help text,
// which names the library field it sets so that a library message maps back to the flag. Options bind
// straight to the fields of pe::Options, pe::SolveOptions and pe::GramOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "pe/pe.hpp"

namespace pe_run {

// Validators for numbers: a value outside the range is "got V; expected ...".
CLI::Validator finite_at_least(double lo);             // a finite value >= lo
CLI::Validator zero_or_at_least(double lo);            // 0 (off) or a finite value >= lo
CLI::Validator zero_or_open_unit_interval();           // 0 (off) or a value in (0, 1)
CLI::Validator in_unit_interval(bool zero_allowed);    // [0, 1) or (0, 1)
CLI::Validator integer_in(long long lo, long long hi);  // an integer in [lo, hi]

// One definition per option; `meaning` says what the subcommand means by it where that differs.
void add_p_option(CLI::App* app, int& p);
void add_target_option(CLI::App* app, double& target, const std::string& meaning);
void add_max_gemms_option(CLI::App* app, int& max_gemms);
void add_max_steps_option(CLI::App* app, int& max_steps);
void add_degree_option(CLI::App* app, int& degree);
void add_precond_option(CLI::App* app, std::string& precond);
void add_hint_options(CLI::App* app, double& lambda_min_hint, double& kappa_hint);
void add_symmetry_tolerance_option(CLI::App* app, double& symmetry_tolerance);
void add_schedules_option(CLI::App* app, pe::ScheduleSource& source, std::string& file);
void add_dtype_option(CLI::App* app, std::string& dtype);
void add_json_flag(CLI::App* app, bool& json);

// The storage dtype: --dtype when given, else the input file's.
pe::DType storage_of(const std::string& dtype, pe::DType file);

}  // namespace pe_run
