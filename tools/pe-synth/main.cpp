// pe-synth: the certified minimax schedule compiler (solve, schedule, generate, verify, diff, baseline).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "pe/detail/format.hpp"
#include "plan/step_planner.hpp"
#include "synth.hpp"
#include "tables.hpp"

namespace {

using pe::synth::ordered_json;
namespace ps = pe::synth;

struct StepArgs {
  int p = 0;
  std::string l;
  int degree = 2;
  int digits = 50;
  bool json = false;
  bool guarded = false;
  bool newton = false;
  double eta = 1.0 / 64;
  double overshoot_cap = 0;  // 0: 1 + eta
};

void add_step_args(CLI::App* app, StepArgs& a) {
  app->add_option("--p", a.p, "root: the step targets A^{-1/p} (1..64)")->required();
  app->add_option("--l", a.l, "lower end of the interval [l, 1], 0 < l < 1 (decimal, any precision)")->required();
  app->add_option("--degree", a.degree, "degree of q: 1..4")->capture_default_str();
  app->add_option("--digits", a.digits, "working precision in decimal digits (30..100; runs at 50 or 100)")
      ->capture_default_str();
  app->add_flag("--json", a.json, "print one JSON object");
  app->add_flag("--guarded", a.guarded, "enforce guards G1..G3 (constrained optimum where the plain one breaks them)");
  app->add_flag("--newton", a.newton, "the unscaled Newton step q = (p + 1 - y) / p instead (for comparison)");
  app->add_option("--eta", a.eta, "rounding margin of the guards")->capture_default_str();
  app->add_option("--overshoot-cap", a.overshoot_cap, "G3 cap on the overshoot (default 1 + eta)");
}

ps::StepKind kind_of(const StepArgs& a) {
  if (a.newton && a.guarded) throw pe::Error("pe-synth: --newton and --guarded exclude each other");
  return a.newton ? ps::StepKind::newton : a.guarded ? ps::StepKind::guarded : ps::StepKind::minimax;
}
ps::GuardSpec guards_of(const StepArgs& a) {
  return {a.eta, a.overshoot_cap == 0 ? 1 + a.eta : a.overshoot_cap};
}

ordered_json step_json(const ps::Step& s) {
  ordered_json j;
  j["p"] = s.p;
  j["l"] = s.l;
  j["degree"] = s.degree;
  j["digits"] = s.digits;
  j["coefficients"] = s.coefficients;
  ordered_json f64 = ordered_json::array(), f32 = ordered_json::array();
  for (int i = 0; i <= s.degree; ++i) {
    f64.push_back(s.coeff_f64[static_cast<std::size_t>(i)]);
    f32.push_back(static_cast<double>(s.coeff_f32[static_cast<std::size_t>(i)]));
  }
  j["coefficients_f64"] = f64;
  j["coefficients_f32"] = f32;
  j["eps"] = s.cert.eps;
  j["image"] = {s.cert.image_lo, s.cert.image_hi};
  j["next_l"] = s.cert.next_l;
  j["eps_f64"] = s.cert_f64.eps_d;
  j["image_f64"] = {s.cert_f64.image_lo_d, s.cert_f64.image_hi_d};
  j["next_l_f64"] = s.cert_f64.next_l_d;
  j["eps_f32"] = s.cert_f32.eps_d;
  j["image_f32"] = {s.cert_f32.image_lo_d, s.cert_f32.image_hi_d};
  if (!s.delta.empty()) {
    j["delta"] = s.delta;
    j["reference"] = s.reference;
    j["remez_iterations"] = s.remez_iterations;
  }
  j["guards_f64"] = {{"g1", s.guards_f64.g1}, {"g2", s.guards_f64.g2}, {"g3", s.guards_f64.g3},
                     {"overshoot", s.guards_f64.overshoot}};
  j["guards_f32"] = {{"g1", s.guards_f32.g1}, {"g2", s.guards_f32.g2}, {"g3", s.guards_f32.g3},
                     {"overshoot", s.guards_f32.overshoot}};
  j["guarded"] = s.guarded;
  j["eps_plain"] = s.eps_plain;
  if (!s.storage_failure.empty()) j["storage_failure"] = s.storage_failure;
  return j;
}

void print_step_text(const ps::Step& s, int index) {
  if (index >= 0) std::printf("step %d: ", index + 1);
  std::printf("p = %d, degree %d, l = %.17g\n  q(y) =", s.p, s.degree, std::stod(s.l));
  for (std::size_t i = 0; i < s.coefficients.size(); ++i)
    std::printf("%s %s%s", i ? " +" : "", s.coefficients[i].c_str(),
                i == 0 ? "" : i == 1 ? " y" : (" y^" + std::to_string(i)).c_str());
  // Text shows the outward-rounded doubles; --json gives the full working-precision strings.
  std::printf("\n  certified eps = %.17g  image = [%.17g, %.17g]  next l = %.17g\n", s.cert.eps_d, s.cert.image_lo_d,
              s.cert.image_hi_d, s.cert.next_l_d);
  std::printf("  f64: eps %.6e  f32: eps %.6e  guards f64 %s f32 %s%s\n", s.cert_f64.eps_d, s.cert_f32.eps_d,
              s.guards_f64.ok() ? "hold" : ("fail (" + s.guards_f64.failure + ")").c_str(),
              s.guards_f32.ok() ? "hold" : ("fail (" + s.guards_f32.failure + ")").c_str(),
              s.guarded ? "  [guarded]" : "");
  if (!s.storage_failure.empty()) std::printf("  note: %s\n", s.storage_failure.c_str());
}

int cmd_solve(const StepArgs& a) {
  ps::StepRequest r;
  r.p = a.p;
  r.degree = a.degree;
  r.l = ps::Value::of(a.l);
  r.digits = a.digits;
  r.kind = kind_of(a);
  r.guards = guards_of(a);
  if (a.newton) r.degree = 1;
  const ps::Step s = ps::solve_step(r);
  if (a.json)
    std::cout << step_json(s).dump(2) << "\n";
  else
    print_step_text(s, -1);
  return 0;
}

int cmd_greedy(const StepArgs& a, int steps, double target) {
  if (steps == 0 && target == 0) throw pe::Error("pe-synth: give --steps T (>= 1), --target EPS (in (0, 1)) or --max-gemms G");
  ps::ScheduleRequest r;
  r.p = a.p;
  r.degree = a.newton ? 1 : a.degree;
  r.digits = a.digits;
  r.l0 = ps::Value::of(a.l);
  r.max_steps = steps;
  r.target = target;
  r.kind = kind_of(a);
  r.guards = guards_of(a);
  if (a.p < 1 || a.p > 64) throw pe::Error("pe-synth: --p = " + std::to_string(a.p) + " is not in [1, 64]");
  const ps::Schedule s = ps::greedy_schedule(r);
  const ps::Step& last = s.steps.back();
  if (a.json) {
    ordered_json j;
    j["p"] = a.p;
    j["l"] = a.l;
    j["degree"] = r.degree;
    j["kind"] = a.newton ? "newton" : a.guarded ? "guarded" : "minimax";
    if (target > 0) j["target"] = target;
    ordered_json arr = ordered_json::array();
    for (const auto& st : s.steps) arr.push_back(step_json(st));
    j["steps"] = arr;
    j["final_eps"] = last.cert.eps_d;
    j["final_eps_exact"] = last.cert.eps;
    j["final_eps_f64"] = last.cert_f64.eps_d;
    j["gemms"] = s.gemms;
    j["gemm_formula"] = "pe::schedule_gemms (include/pe/schedule_types.hpp): the sum of pe::detail::step_gemms "
                        "(include/pe/detail/gemm_cost.hpp) over the steps, materialising X";
    std::cout << j.dump(2) << "\n";
  } else {
    for (std::size_t i = 0; i < s.steps.size(); ++i) print_step_text(s.steps[i], static_cast<int>(i));
    std::printf("%zu steps, final eps %.6e (f64 coefficients: %.6e), %d GEMMs\n", s.steps.size(), last.cert.eps_d,
                last.cert_f64.eps_d, s.gemms);
  }
  return 0;
}

struct PlanArgs {
  int max_gemms = 0;
  std::string tables = "schedules";
  std::vector<int> degrees;
  std::string storage = "f64";
  bool direct = false;
  int max_steps = pe::kDefaultStepLimit;
};

// The budget-optimal plan over certified table entries (the planner the runtime uses).
int cmd_plan(const StepArgs& a, const PlanArgs& pa, double target) {
  ps::check_decimal_argument(ps::Value::of(a.l), "--l", true);
  if (pa.max_gemms < 0) throw pe::Error("pe-synth: --max-gemms = " + std::to_string(pa.max_gemms) + " is not >= 0");
  const ps::TableFile set = ps::load_table_file(pa.tables);
  pe::detail::PlanRequest r;
  r.p = a.p;
  r.storage = pa.storage == "f32" ? pe::DType::f32 : pe::DType::f64;
  r.start = {std::stod(a.l), 1.0};
  r.target = target;
  r.max_gemms = pa.max_gemms;
  r.max_steps = pa.max_steps;
  r.output = pa.direct ? pe::detail::StepOutput::direct : pe::detail::StepOutput::materialize;
  r.degrees = pa.degrees;
  const pe::detail::StepPlan plan = pe::detail::plan_steps(set, r);
  if (a.json) {
    ordered_json j;
    j["p"] = a.p;
    j["l"] = a.l;
    j["tables"] = set.origin;
    j["storage"] = pa.storage;
    j["output"] = pa.direct ? "direct" : "materialize";
    j["degrees"] = r.degrees.empty() ? set.degrees(a.p) : r.degrees;
    if (target > 0) j["target"] = target;
    if (pa.max_gemms > 0) j["max_gemms"] = pa.max_gemms;
    j["max_steps"] = pa.max_steps;
    ordered_json steps = ordered_json::array();
    for (const auto& s : plan.steps) {
      ordered_json sj;
      sj["degree"] = s.degree;
      sj["l_edge"] = s.l_edge;
      sj["interval"] = {s.before.lo, s.before.hi};
      sj["image"] = {s.image.lo, s.image.hi};
      sj["bound"] = s.bound;
      sj["gemms"] = s.gemms;
      sj["cumulative_gemms"] = s.cumulative_gemms;
      steps.push_back(std::move(sj));
    }
    j["steps"] = std::move(steps);
    j["final_eps"] = plan.final_bound;
    j["gemms"] = plan.gemms;
    if (target > 0) j["reached"] = plan.reached;
    j["gemm_formula"] = "pe::detail::step_gemms (include/pe/detail/gemm_cost.hpp) per step";
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("p = %d from [%s, 1], %s storage, %s, tables %s\n", a.p, a.l.c_str(), pa.storage.c_str(),
                pa.direct ? "direct" : "materialise", set.origin.c_str());
    std::printf("  step  degree        l_edge       bound  gemms  total\n");
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
      const auto& s = plan.steps[i];
      std::printf("  %4zu  %6d  %12.6g  %10.4e  %5d  %5d\n", i + 1, s.degree, s.l_edge, s.bound, s.gemms,
                  s.cumulative_gemms);
    }
    std::printf("%zu steps, certified bound %.6e, %d GEMMs%s\n", plan.steps.size(), plan.final_bound, plan.gemms,
                target > 0 ? (plan.reached ? " (target reached)" : " (target not reached)") : "");
  }
  return 0;
}

int cmd_generate(const std::string& config_path, const std::string& out, int threads, int digits) {
  ps::Config config = ps::load_config(config_path);
  if (digits != 0) {
    ps::working_digits(digits);
    config.digits = digits;
  }
  ps::prepare_output_dir(out);
  const auto t0 = std::chrono::steady_clock::now();
  ps::GenerateOptions o;
  o.threads = threads;
  o.progress = true;
  std::vector<ps::TableStats> stats;
  const ps::TableFile file = ps::build_tables(config, o, &stats);
  ps::write_tables(file, out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << ps::summary(file, stats);
  std::printf("wrote %s/pe_schedules.hpp and %s/pe_schedules.json (config %s, %s) in %.1f s\n", out.c_str(),
              out.c_str(), config.name.c_str(), file.config_hash.c_str(), seconds);
  return 0;
}

int cmd_verify(const std::string& dir, int threads, double rel_tol) {
  ps::VerifyOptions o;
  o.threads = threads;
  o.rel_tol = rel_tol;
  o.progress = true;
  const auto failures = ps::verify_tables(dir, o);
  if (failures.empty()) {
    std::printf("verify %s: all entries hold\n", dir.c_str());
    return 0;
  }
  for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  std::printf("verify %s: %zu failing\n", dir.c_str(), failures.size());
  return 1;
}

int cmd_diff(const std::string& older, const std::string& newer) {
  std::size_t compared = 0;
  const auto worse = ps::diff_bounds(ps::load_bounds(older), ps::load_bounds(newer), &compared);
  for (const auto& w : worse) std::printf("worse: %s\n", w.c_str());
  std::printf("diff: %zu bounds compared, %zu worse\n", compared, worse.size());
  return worse.empty() ? 0 : 1;
}

int cmd_baseline(const std::string& tables, const std::string& out) {
  const std::string text = ps::emit_baseline(ps::bounds_of(ps::load_table_file(tables), tables));
  if (out.empty()) {
    std::cout << text;
    return 0;
  }
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file << text;
  file.flush();
  if (!file) throw pe::Error("pe-synth: baseline --out = " + out + " cannot be written");
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pe-synth: certified minimax schedules for matrix inverse p-th roots"};
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::simple);

  StepArgs solve_args;
  CLI::App* solve = app.add_subcommand("solve", "the optimal single step on [l, 1]");
  add_step_args(solve, solve_args);

  StepArgs sched_args;
  PlanArgs plan_args;
  int steps = 0;
  double target = 0;
  CLI::App* schedule = app.add_subcommand(
      "schedule", "the greedy multi-step schedule from [l, 1] (exact solves, one degree), or with --max-gemms / "
                  "--tables the budget-optimal plan over certified table entries (degrees mixed)");
  add_step_args(schedule, sched_args);
  auto* steps_opt = schedule->add_option("--steps", steps, "number of steps (>= 1)");
  auto* target_opt = schedule->add_option("--target", target, "fewest steps (plan: GEMMs) reaching eps <= EPS, 0 < EPS < 1");
  steps_opt->excludes(target_opt);
  auto* gemms_opt = schedule->add_option("--max-gemms", plan_args.max_gemms,
                                         "plan: GEMM budget, never exceeded (the smallest bound within it, or the "
                                         "fewest GEMMs reaching --target)");
  auto* tables_opt = schedule->add_option("--tables", plan_args.tables, "plan: table directory or pe_schedules.json")
                         ->capture_default_str();
  auto* degrees_opt = schedule->add_option("--degrees", plan_args.degrees, "plan: step degrees allowed (default: all)")
                          ->delimiter(',')
                          ->check(CLI::Range(1, pe::kMaxDegree));
  auto* storage_opt = schedule->add_option("--storage", plan_args.storage, "plan: whose certificates count")
                          ->check(CLI::IsMember({"f32", "f64"}))
                          ->capture_default_str();
  auto* direct_opt = schedule->add_flag("--direct", plan_args.direct, "plan: apply to a skinny B instead of materialising X");
  auto* plan_steps_opt = schedule->add_option("--max-steps", plan_args.max_steps, "plan: step budget")
                             ->check(CLI::Range(1, 1000))
                             ->capture_default_str();
  for (auto* o : {degrees_opt, storage_opt, direct_opt, plan_steps_opt}) o->excludes(steps_opt);
  gemms_opt->excludes(steps_opt);
  tables_opt->excludes(steps_opt);

  std::string config_path = "schedules/pe_synth_config.json", out = "schedules";
  int gen_threads = 0, gen_digits = 0;
  CLI::App* generate = app.add_subcommand("generate", "write the whole table set (header + JSON, replaced as a pair)");
  generate->add_option("--config", config_path, "config file")->capture_default_str();
  generate->add_option("--out", out, "output directory")->capture_default_str();
  generate->add_option("--threads", gen_threads, "worker threads (0: all cores)");
  generate->add_option("--digits", gen_digits, "override the config's working precision");

  std::string verify_dir = "schedules";
  int verify_threads = 0;
  double rel_tol = 1e-6;
  CLI::App* verify = app.add_subcommand("verify", "re-solve and re-certify every stored entry");
  verify->add_option("dir", verify_dir, "directory with pe_schedules.hpp and pe_schedules.json")->capture_default_str();
  verify->add_option("--threads", verify_threads, "worker threads (0: all cores)");
  verify->add_option("--rel-tol", rel_tol, "allowed relative excess of a stored bound over a fresh solve (>= 0)")
      ->capture_default_str();

  std::string diff_old, diff_new;
  CLI::App* diff = app.add_subcommand("diff", "print every bound of NEW that is worse than in OLD");
  diff->add_option("old", diff_old, "table directory, pe_schedules.json or baseline file")->required();
  diff->add_option("new", diff_new, "table directory, pe_schedules.json or baseline file")->required();

  std::string baseline_tables, baseline_out;
  CLI::App* baseline = app.add_subcommand("baseline", "write the certified bounds of a table set (the frozen baseline)");
  baseline->add_option("tables", baseline_tables, "table directory or pe_schedules.json")->required();
  baseline->add_option("--out", baseline_out, "baseline file (default: stdout)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*solve) return cmd_solve(solve_args);
    if (*schedule) {
      if (*steps_opt && steps < 1) throw pe::Error("pe-synth: --steps = " + std::to_string(steps) + " is not >= 1");
      if (*target_opt && !(target > 0 && target < 1))
        throw pe::Error("pe-synth: --target = " + pe::detail::format_number(target) + " is not in (0, 1)");
      if (*gemms_opt || *tables_opt) return cmd_plan(sched_args, plan_args, target);
      if (*degrees_opt || *storage_opt || *direct_opt || *plan_steps_opt)
        throw pe::Error("pe-synth: --degrees, --storage, --direct and --max-steps plan over tables: give --max-gemms "
                        "or --tables too");
      return cmd_greedy(sched_args, steps, target);
    }
    if (*generate) return cmd_generate(config_path, out, gen_threads, gen_digits);
    if (*verify) return cmd_verify(verify_dir, verify_threads, rel_tol);
    if (*diff) return cmd_diff(diff_old, diff_new);
    if (*baseline) return cmd_baseline(baseline_tables, baseline_out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
