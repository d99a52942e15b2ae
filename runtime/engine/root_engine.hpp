// The engine of roots and applies: everything a RootPlan/ApplyPlan holds (backend, workspace, tables,
// driver, verifier) and the one execution sequence below every entry point that needs A^{-1/p}:
//   validate -> precondition -> plan the steps -> drive -> fall back if needed -> verify -> report.
// Solves and Gram applies use it on matrices already in its backend (run()), never through the public API.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend.hpp"
#include "correction/newton.hpp"
#include "driver.hpp"
#include "plan/step_planner.hpp"
#include "pe/pe.hpp"
#include "precondition.hpp"
#include "schedules.hpp"
#include "verify/root_verifier.hpp"

namespace pe::detail {

// Validates every Options field; throws pe::Error naming the field, its value and what was expected.
void check_options(const Options& options);

class RootEngine {
 public:
  // a: the shape of A (n x n, batch). b: the shape of B for an apply (null for a root). tables: when
  // non-null, used instead of options.schedule_source (it must outlive the engine).
  RootEngine(const MatrixDesc& a, const MatrixDesc* b, const Options& options, const ScheduleSet* tables = nullptr);
  // The same on a backend the caller owns (it must outlive the engine and match options' device, storage
  // and compute): solves and Gram applies share one backend between their engines.
  RootEngine(const MatrixDesc& a, const MatrixDesc* b, const Options& options, const ScheduleSet* tables,
             Backend& shared_backend);
  ~RootEngine();

  Report execute_root(const Matrix& a, MutableMatrix x);
  Report execute_apply(const Matrix& a, const Matrix& b, MutableMatrix z);
  // Enqueued runs (RootPlan::enqueue): the same sequence with the spectrum from the hints, no certificate
  // and no fallback, reading nothing back; collect() waits, reads every check once and builds the Report.
  void enqueue_root(const Matrix& a, MutableMatrix x);
  void enqueue_apply(const Matrix& a, const Matrix& b, MutableMatrix z);
  Report collect();

  // For engines built on top (solves, Gram applies): A already in backend() in the storage dtype, left
  // untouched; a_exact: the same matrix in the f64 companion (companion()) when the caller has it there
  // exactly, else null (A as stored is what gets certified). An apply reads B from rhs() (write it there
  // first) and leaves Z in z(); a root (and a materialised apply) leaves X in result().
  // Per-run changes of a few options (the budget and spectrum hints of an inner solve change from run to
  // run), and whether "not positive definite" is a Status (for engines built on top) or a pe::Error.
  struct RunOverrides {
    std::optional<int> max_gemms;
    std::optional<double> target;
    std::optional<double> kappa_hint;
    std::optional<double> lambda_min_hint;
    bool not_positive_definite_is_status = false;
  };
  Report run(const Mat& a, const Mat* a_exact, const RunOverrides& overrides);
  Mat& result() { return x_; }
  Mat& rhs() { return b_in_; }
  Mat& z() { return z_; }
  Backend* companion() { return wide_; }

  Backend& backend() { return *be_; }
  const Options& options() const { return o_; }
  const MatrixDesc& shape() const { return a_desc_; }
  bool direct() const { return direct_; }
  const ScheduleSet& tables() const { return *tables_; }

 private:
  void init(const MatrixDesc* b, const ScheduleSet* tables, Backend* shared);
  void check_a(const Matrix& a) const;
  void move_in_a(const Matrix& a);
  Report run_checked(const Mat& a, const Matrix* caller_view, const RunOverrides& overrides);
  void validate_input(const Mat& a, const Matrix* caller_view);
  void note_input_rounding(const Matrix* caller_view);
  double symmetry_tolerance() const;
  void set_claims(Report& report, double target, bool verification_ran) const;
  Report started_report(const Preconditioned& pre) const;
  PrecondSettings precond_settings(const RunOverrides& overrides) const;
  void check_root_views(const Matrix& a, const MutableMatrix& x) const;
  void check_apply_views(const Matrix& a, const Matrix& b, const MutableMatrix& z) const;
  void check_enqueue(const char* out_name, const Matrix& a, const Matrix* b, const MutableMatrix& out) const;
  void enqueue_run(const Matrix& a, const Matrix* b, MutableMatrix out);
  // What collect() needs of the last enqueue: the Report as far as the host knows it, the driver's result
  // with its checks pending, the symmetry tolerance. pending: an enqueue since the last execute.
  struct Enqueued {
    bool pending = false;
    Report report;
    DriverResult run;
    double tolerance = 0;
    MutableMatrix out;
  };
  Enqueued enqueued_;
  bool decide_direct() const;
  // Whether preconditioning may need the Cholesky bounds of the spectrum for these hints (a dense A without
  // a lower-end hint), and the workspace they need (made once).
  bool may_need_cholesky_bounds(double lambda_min_hint, double kappa_hint) const;
  void ensure_spectrum_workspace();
  PlanRequest plan_request(DType storage, double l0, double target, int max_gemms, StepOutput output) const;
  // A planned step sequence with the steps to run one level up, and what the drift model predicts for it.
  // Cached under its request (l0 on the planning grid, target, budget) and the input rounding.
  struct PlanChoice {
    StepPlan plan;
    int elevated = 0;
    double drift = 0, predicted = 0, cost = 0;
    PlanRequest request;         // the base request the candidates were derived from
    bool input_rounded = false;
  };
  const PlanChoice& choose_plan(double l0, double target, int max_gemms);
  // The upper end from the first step's own product: where no Cholesky factorisation proved lambda_max(A_n),
  // forms Y_0^2 = A_n^2 where the first step will read it and takes t = ||A_n^2||_F^{1/2} (rounding
  // included) as a bound of lambda_max(A_n). Returns t per member (empty where no member gains), having
  // divided l0 by it; plan_l0 is the l0 to plan from, such that the plan's first step uses the prepared square.
  struct UpperEnd {
    std::vector<double> t;
    double plan_l0 = 0;
    int square_level = -1;  // where Y_0^2 was formed (DriverSettings::first_square_level)
  };
  UpperEnd tighten_upper_end(const Preconditioned& pre, std::vector<double>& l0, double target, int max_gemms,
                             std::vector<std::string>& notes);

  Options o_;
  MatrixDesc a_desc_;
  std::optional<MatrixDesc> b_desc_;
  bool direct_ = false;
  const ScheduleSet* tables_ = nullptr;
  std::optional<ScheduleSet> loaded_;
  std::unique_ptr<Backend> be_owned_;
  Backend* be_ = nullptr;
  std::unique_ptr<Backend> wide_owned_;  // the f64 companion when the storage is not f64
  Backend* wide_ = nullptr;
  std::unique_ptr<Backend> elevated_owned_;  // one precision level up, for the first steps (f32 for tf32/bf16/f16)
  Backend* elevated_ = nullptr;
  std::int64_t n_ = 0, batch_ = 1, k_ = 0;
  Mat a_in_, a_n_, b_in_, z_, x_;        // x_: the materialised result (driver's X or the fallback's)
  Mat a64_, x64_;                        // verification copies in the companion
  PrecondWorkspace pws_;
  std::unique_ptr<Driver> driver_;
  std::unique_ptr<RootVerifier> certifier_;
  std::unique_ptr<NewtonCorrection> newton_;
  std::vector<double> host_a_;           // diagonal modes (and a failing A's diagnosis): A in double on the host
  std::vector<double> diagonal_;         // the diagonal of A as stored, in double (n per member)
  double smallest_edge_ = 1;
  bool input_rounded_ = false;           // this execute's A lost digits when stored
  std::vector<PlanChoice> plan_cache_;   // the last few choose_plan results (allocated once they fill)
};

}  // namespace pe::detail
