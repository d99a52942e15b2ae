// pe-synth: the certified minimax schedule compiler (solve, schedule, generate, verify, diff).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "pe/detail/format.hpp"
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
  app->add_option("--degree", a.degree, "degree of q: 1 (affine) or 2")->capture_default_str();
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
  j["coefficients_f64"] = s.coeff_f64;
  ordered_json f32 = ordered_json::array();
  for (float v : s.coeff_f32) f32.push_back(static_cast<double>(v));
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
  return j;
}

void print_step_text(const ps::Step& s, int index) {
  if (index >= 0) std::printf("step %d: ", index + 1);
  std::printf("p = %d, degree %d, l = %.17g\n", s.p, s.degree, std::stod(s.l));
  std::printf("  q(y) = %s + %s y + %s y^2\n", s.coefficients[0].c_str(), s.coefficients[1].c_str(),
              s.coefficients[2].c_str());
  // Text shows the outward-rounded doubles; --json gives the full working-precision strings.
  std::printf("  certified eps = %.17g  image = [%.17g, %.17g]  next l = %.17g\n", s.cert.eps_d, s.cert.image_lo_d,
              s.cert.image_hi_d, s.cert.next_l_d);
  std::printf("  f64: eps %.6e  f32: eps %.6e  guards f64 %s f32 %s%s\n", s.cert_f64.eps_d, s.cert_f32.eps_d,
              s.guards_f64.ok() ? "hold" : ("fail (" + s.guards_f64.failure + ")").c_str(),
              s.guards_f32.ok() ? "hold" : ("fail (" + s.guards_f32.failure + ")").c_str(),
              s.guarded ? "  [guarded]" : "");
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

int cmd_schedule(const StepArgs& a, int steps, double target) {
  if (steps == 0 && target == 0) throw pe::Error("pe-synth: give --steps T (>= 1) or --target EPS (in (0, 1))");
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
    j["gemm_formula"] = "pe::schedule_gemms (include/pe/schedule_types.hpp): per step t of T, [degree == 2] + [t > 0] "
                        "+ [t < T-1] * residual_update_gemms(p)";
    std::cout << j.dump(2) << "\n";
  } else {
    for (std::size_t i = 0; i < s.steps.size(); ++i) print_step_text(s.steps[i], static_cast<int>(i));
    std::printf("%zu steps, final eps %.6e (f64 coefficients: %.6e), %d GEMMs\n", s.steps.size(), last.cert.eps_d,
                last.cert_f64.eps_d, s.gemms);
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
  const ps::TableFile file = ps::build_tables(config, o);
  ps::write_tables(file, out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << ps::summary(file);
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
  const auto worse = ps::diff_tables(ps::load_table_file(older), ps::load_table_file(newer), &compared);
  for (const auto& w : worse) std::printf("worse: %s\n", w.c_str());
  std::printf("diff: %zu bounds compared, %zu worse\n", compared, worse.size());
  return worse.empty() ? 0 : 1;
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
  int steps = 0;
  double target = 0;
  CLI::App* schedule = app.add_subcommand("schedule", "the greedy multi-step schedule from [l, 1]");
  add_step_args(schedule, sched_args);
  auto* steps_opt = schedule->add_option("--steps", steps, "number of steps (>= 1)");
  auto* target_opt = schedule->add_option("--target", target, "fewest steps reaching eps <= EPS, 0 < EPS < 1");
  steps_opt->excludes(target_opt);

  std::string config_path = "schedules/pe_synth_config.json", out = "schedules";
  int gen_threads = 0, gen_digits = 0;
  CLI::App* generate = app.add_subcommand("generate", "write the whole table set (header + JSON)");
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
  verify->add_option("--rel-tol", rel_tol, "allowed relative excess of a stored bound over a fresh solve")
      ->capture_default_str();

  std::string diff_old, diff_new;
  CLI::App* diff = app.add_subcommand("diff", "print every bound of NEW that is worse than in OLD");
  diff->add_option("old", diff_old, "directory or pe_schedules.json")->required();
  diff->add_option("new", diff_new, "directory or pe_schedules.json")->required();

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
      return cmd_schedule(sched_args, steps, target);
    }
    if (*generate) return cmd_generate(config_path, out, gen_threads, gen_digits);
    if (*verify) return cmd_verify(verify_dir, verify_threads, rel_tol);
    if (*diff) return cmd_diff(diff_old, diff_new);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
