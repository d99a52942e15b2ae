// Enqueued runs (RootPlan::enqueue / collect, the path a CUDA graph captures) on the CPU backend: the same
// numbers as execute for the same start, checks that come back with collect, and clear refusals of what
// an enqueued run cannot do. tests/cuda/test_graph_capture.cpp captures and replays it on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "pe/pe.hpp"
#include "runtime_test_support.hpp"

namespace {

using pe_test::Spectrum;

constexpr std::int64_t kN = 48;
constexpr double kKappa = 1e3;

// Hints that give execute() the same start as enqueue: pe_test::spd has lambda_max = 1, which every cheap
// norm exceeds, so both divide by the hint 1; Gershgorin fails on these dense matrices, so both start
// from lambda_min_hint.
pe::Options enqueue_options(int p) {
  pe::Options o;
  o.p = p;
  o.target = 1e-4;
  o.verify = false;
  o.fallback = pe::Fallback::never;
  o.lambda_min_hint = 1 / kKappa;
  o.lambda_max_hint = 1;
  return o;
}

std::vector<float> batch_of(std::int64_t batch, std::uint64_t seed) {
  std::vector<float> a;
  for (std::int64_t k = 0; k < batch; ++k) {
    const auto m = pe_test::spd(kN, kKappa, Spectrum::spread, seed + static_cast<std::uint64_t>(k));
    a.insert(a.end(), m.begin(), m.end());
  }
  return a;
}

pe::Matrix view(const std::vector<float>& a, std::int64_t cols, std::int64_t batch) {
  return pe::Matrix{a.data(), kN, cols, kN, pe::DType::f32, pe::Layout::col_major, batch, kN * cols};
}
pe::MutableMatrix out(std::vector<float>& a, std::int64_t cols, std::int64_t batch) {
  return pe::MutableMatrix{a.data(), kN, cols, kN, pe::DType::f32, pe::Layout::col_major, batch, kN * cols};
}

void expect_same_start_and_steps(const pe::Report& executed, const pe::Report& collected) {
  EXPECT_EQ(collected.status, executed.status);
  EXPECT_EQ(collected.steps, executed.steps);
  EXPECT_EQ(collected.gemms, executed.gemms);
  EXPECT_EQ(collected.scale, executed.scale);
  EXPECT_EQ(collected.l0, executed.l0);
  EXPECT_EQ(collected.model_eps, executed.model_eps);
  EXPECT_EQ(collected.estimated_residual, executed.estimated_residual);
  EXPECT_EQ(collected.target_reached, executed.target_reached);
  EXPECT_FALSE(collected.certified);
}

TEST(Enqueue, RootMatchesExecuteBitForBit) {
  PE_REQUIRE_TABLES();
  for (int p : {1, 2, 4}) {
    const std::int64_t batch = 2;
    const auto a = batch_of(batch, 5);
    std::vector<float> x_exec(a.size()), x_enq(a.size());
    pe::RootPlan plan(pe::describe(view(a, kN, batch)), enqueue_options(p));
    const pe::Report executed = plan.execute(view(a, kN, batch), out(x_exec, kN, batch));
    plan.enqueue(view(a, kN, batch), out(x_enq, kN, batch));
    const pe::Report collected = plan.collect();
    EXPECT_EQ(executed.l0_source, "lambda_min_hint");
    expect_same_start_and_steps(executed, collected);
    EXPECT_EQ(x_enq, x_exec) << "p = " << p;
    // And it is the root: within the model's bound plus f32 rounding of a kappa = 1e3 root.
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::vector<double> ak(a.begin() + k * kN * kN, a.begin() + (k + 1) * kN * kN);
      const std::vector<double> xk(x_enq.begin() + k * kN * kN, x_enq.begin() + (k + 1) * kN * kN);
      EXPECT_LE(pe::reference::relative_error(xk, pe::reference::inverse_root(ak, kN, p)),
                pe_test::predicted_relative_error(collected.model_eps, p) +
                    pe_test::rounding_allowance(pe::DType::f32, kN, collected.steps, kKappa, p))
          << "p = " << p << ", member " << k;
    }
  }
}

TEST(Enqueue, AppliesMatchExecuteInBothModes) {
  PE_REQUIRE_TABLES();
  const auto a = batch_of(1, 9);
  const std::int64_t k = 6;
  std::vector<float> b(static_cast<std::size_t>(kN * k));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
  for (pe::ApplyMode mode : {pe::ApplyMode::materialize, pe::ApplyMode::direct}) {
    pe::Options o = enqueue_options(2);
    o.mode = mode;
    std::vector<float> z_exec(b.size()), z_enq(b.size());
    pe::ApplyPlan plan(pe::describe(view(a, kN, 1)), pe::describe(view(b, k, 1)), o);
    EXPECT_EQ(plan.direct(), mode == pe::ApplyMode::direct);
    const pe::Report executed = plan.execute(view(a, kN, 1), view(b, k, 1), out(z_exec, k, 1));
    plan.enqueue(view(a, kN, 1), view(b, k, 1), out(z_enq, k, 1));
    const pe::Report collected = plan.collect();
    expect_same_start_and_steps(executed, collected);
    EXPECT_EQ(collected.mode, executed.mode);
    EXPECT_EQ(z_enq, z_exec) << collected.mode;
  }
}

// collect() reads what the last enqueue posted, as often as asked (a replayed graph posts again), and
// nothing once an execute has replaced the driver's pending checks.
TEST(Enqueue, CollectReadsTheLastEnqueueUntilAnExecute) {
  PE_REQUIRE_TABLES();
  const auto a = batch_of(1, 11);
  std::vector<float> x(a.size());
  pe::RootPlan plan(pe::describe(view(a, kN, 1)), enqueue_options(2));
  EXPECT_THROW(plan.collect(), pe::Error);
  for (int i = 0; i < 3; ++i) plan.enqueue(view(a, kN, 1), out(x, kN, 1));
  const pe::Report first = plan.collect(), second = plan.collect();
  EXPECT_EQ(first.steps, second.steps);
  EXPECT_EQ(first.estimated_residual, second.estimated_residual);
  EXPECT_EQ(first.status, pe::Status::ok);
  plan.execute(view(a, kN, 1), out(x, kN, 1));
  try {
    plan.collect();
    ADD_FAILURE() << "collect after execute should refuse";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing was enqueued"), std::string::npos) << e.what();
  }
}

void expect_refused(pe::Options o, const std::string& named) {
  const auto a = batch_of(1, 13);
  std::vector<float> x(a.size());
  pe::RootPlan plan(pe::describe(view(a, kN, 1)), o);
  try {
    plan.enqueue(view(a, kN, 1), out(x, kN, 1));
    ADD_FAILURE() << "expected enqueue to refuse " << named;
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find(named), std::string::npos) << e.what();
  }
}

TEST(Enqueue, RefusesWhatNeedsAHostDecision) {
  PE_REQUIRE_TABLES();
  pe::Options o = enqueue_options(2);
  o.verify = true;
  expect_refused(o, "options.verify");
  o = enqueue_options(2);
  o.fallback = pe::Fallback::on_failure;
  expect_refused(o, "options.fallback is on_failure");
  o = enqueue_options(2);
  o.lambda_min_hint = 0;
  expect_refused(o, "lambda_min_hint = 0");
  o = enqueue_options(2);
  o.lambda_max_hint = 0;
  expect_refused(o, "lambda_max_hint = 0");
  o = enqueue_options(1);
  o.precond = pe::Precond::jacobi;
  expect_refused(o, "options.precond is jacobi");
  o = enqueue_options(2);
  o.renormalize = true;
  expect_refused(o, "options.renormalize");
  o = enqueue_options(2);
  o.on_step = [](pe::StepEvent&) {};
  expect_refused(o, "options.on_step");
  // f16 storage: a hinted spectrum down to 1e-6 of the top would underflow (smallest normal 6.1e-5).
  o = enqueue_options(2);
  o.storage_from_input = false;
  o.storage = pe::DType::f16;
  o.lambda_min_hint = 1e-6;
  expect_refused(o, "below the smallest normal f16 number");
}

// What the host cannot see at enqueue comes back with collect: an A that is not symmetric (host views are
// checked for finiteness as they are copied in), an iteration that left its interval because a hint was
// wrong.
TEST(Enqueue, CollectReportsWhatTheChecksFound) {
  PE_REQUIRE_TABLES();
  auto a = batch_of(1, 17);
  std::vector<float> x(a.size());
  pe::RootPlan plan(pe::describe(view(a, kN, 1)), enqueue_options(2));
  a[static_cast<std::size_t>(3 + 7 * kN)] += 0.25f;
  plan.enqueue(view(a, kN, 1), out(x, kN, 1));
  try {
    plan.collect();
    ADD_FAILURE() << "collect should find the asymmetry";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not symmetric"), std::string::npos) << e.what();
  }
  a[static_cast<std::size_t>(3 + 7 * kN)] -= 0.25f;
  a[static_cast<std::size_t>(5)] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(plan.enqueue(view(a, kN, 1), out(x, kN, 1)), pe::Error);  // a host view: found on the way in
  a = batch_of(1, 17);

  // lambda_max_hint a quarter of lambda_max: A_n's spectrum reaches 4, where the step polynomials were
  // never meant to go; the checks see the residual leave its interval (or overflow).
  pe::Options wrong = enqueue_options(2);
  wrong.lambda_max_hint = 0.25;
  pe::RootPlan misled(pe::describe(view(a, kN, 1)), wrong);
  misled.enqueue(view(a, kN, 1), out(x, kN, 1));
  try {
    const pe::Report r = misled.collect();
    EXPECT_EQ(r.status, pe::Status::diverged);
    EXPECT_FALSE(r.target_reached);
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
  }
}

}  // namespace
