// The step planner against exhaustive search over every degree sequence (small budgets, p = 1..8,
// several starting intervals, both storage certificates, materialise and direct), on the checked-in
// tables; budgets are never exceeded and every planned bound is the chain of certified table images.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "pe/detail/gemm_cost.hpp"
#include "pe/schedule_types.hpp"
#include "plan/step_planner.hpp"

namespace {

namespace pd = pe::detail;

const pd::ScheduleSet& tables() {
  static const pd::ScheduleSet set = pd::load_schedules_json(PE_SCHEDULES_JSON);
  return set;
}

// The interval model written out independently of the planner: the entry with the largest edge <= lo
// (the smallest edge below all, with guard G1 keeping lo), its certified image for the dtype, the bound
// max(1 - lo, hi - 1), the next interval [lo / hi, 1].
struct ModelStep {
  double bound, next_lo;
};
ModelStep model_step(const pd::OwnedBucketTable& t, pe::DType storage, double lo) {
  const pe::BucketEntry* e = &t.entries.front();
  for (const auto& x : t.entries)
    if (x.l_edge <= lo) e = &x;
  const bool f32 = storage == pe::DType::f32;
  double ilo = f32 ? e->image_lo_f32 : e->image_lo_f64;
  const double ihi = f32 ? e->image_hi_f32 : e->image_hi_f64;
  if (lo < e->l_edge) ilo = std::min(ilo, lo);
  return {std::max(1 - ilo, ihi - 1), ilo / ihi};
}

struct Best {
  double bound = 2;
  int gemms = 0;
  bool found = false;
};

struct Case {
  int p;
  double l0;
  pe::DType storage;
  pd::StepOutput output;
};

// Every degree sequence whose GEMMs fit in `horizon`: best bound per budget, and per target the fewest
// GEMMs reaching it (ties: smaller bound).
struct Exhaustive {
  std::vector<Best> by_budget;       // index: budget g, plans with gemms <= g
  std::vector<Best> by_target;       // index: target
  long sequences = 0;
};
Exhaustive exhaustive(const Case& c, int horizon, int max_steps, const std::vector<double>& targets) {
  Exhaustive out;
  out.by_budget.resize(static_cast<std::size_t>(horizon) + 1);
  out.by_target.resize(targets.size());
  const std::vector<int> degrees = tables().degrees(c.p);
  auto cost = [&](int d, bool first, bool last) { return pd::step_gemms(c.p, pd::StepDesc{d, first, last, c.output}); };
  std::function<void(double, int, int)> walk = [&](double lo, int gemms, int steps) {
    for (int d : degrees) {
      const pd::OwnedBucketTable& t = *tables().find(c.p, d);
      const ModelStep m = model_step(t, c.storage, lo);
      const int last = gemms + cost(d, steps == 0, true);
      if (last <= horizon) {
        ++out.sequences;
        for (int g = last; g <= horizon; ++g) {
          Best& b = out.by_budget[static_cast<std::size_t>(g)];
          if (!b.found || m.bound < b.bound || (m.bound == b.bound && last < b.gemms)) b = {m.bound, last, true};
        }
        for (std::size_t i = 0; i < targets.size(); ++i) {
          Best& b = out.by_target[i];
          if (m.bound <= targets[i] && (!b.found || last < b.gemms || (last == b.gemms && m.bound < b.bound)))
            b = {m.bound, last, true};
        }
      }
      const int next = gemms + cost(d, steps == 0, false);
      if (steps + 1 < max_steps && next < horizon) walk(m.next_lo, next, steps + 1);
    }
  };
  walk(c.l0, 0, 0);
  return out;
}

// Each planned step uses the table's certified image of the entry serving its interval, and the plan's
// GEMMs are the sum of step_gemms.
void expect_certified_chain(const pd::StepPlan& plan, const Case& c) {
  double lo = c.l0;
  int gemms = 0;
  for (std::size_t k = 0; k < plan.steps.size(); ++k) {
    const pd::PlannedStep& s = plan.steps[k];
    const ModelStep m = model_step(*tables().find(c.p, s.degree), c.storage, lo);
    EXPECT_EQ(s.bound, m.bound) << "step " << k;
    EXPECT_EQ(s.before.lo, lo) << "step " << k;
    gemms += pd::step_gemms(c.p, pd::StepDesc{s.degree, k == 0, k + 1 == plan.steps.size(), c.output});
    EXPECT_EQ(s.cumulative_gemms, gemms) << "step " << k;
    lo = m.next_lo;
  }
  EXPECT_EQ(plan.gemms, gemms);
  EXPECT_EQ(plan.final_bound, plan.steps.back().bound);
}

TEST(StepPlanner, StoredTablesAreMonotoneSoTheDynamicProgrammingIsExact) {
  for (const auto& t : tables().tables) {
    std::size_t index = 0;
    const char* field = nullptr;
    EXPECT_EQ(pe::table_violation(t.view(), &index, &field), nullptr) << "p " << t.p << " degree " << t.degree;
    for (pe::DType storage : {pe::DType::f32, pe::DType::f64}) {
      // A larger lower end never gives a worse bound or a worse next interval (checked on a fine grid of
      // l, with the independent model, not only at the edges).
      ModelStep previous{2, 0};
      for (int i = 0; i <= 2000; ++i) {
        const double l = std::pow(10.0, -13 + 13.0 * i / 2000) * (1 - 1e-12);
        const ModelStep m = model_step(t, storage, l);
        EXPECT_LE(m.bound, previous.bound) << "p " << t.p << " degree " << t.degree << " l " << l;
        EXPECT_GE(m.next_lo, previous.next_lo) << "p " << t.p << " degree " << t.degree << " l " << l;
        previous = m;
      }
    }
  }
}

TEST(StepPlanner, MatchesExhaustiveSearchOverAllDegreeSequences) {
  ASSERT_FALSE(tables().tables.empty());
  const std::vector<double> targets{1e-1, 1e-2, 1e-3, 1e-6};
  long total = 0;
  for (int p = 1; p <= 8; ++p)
    for (double l0 : {1e-1, 1e-4, 1e-8, 1e-12})
      for (pe::DType storage : {pe::DType::f64, pe::DType::f32})
        for (pd::StepOutput output : {pd::StepOutput::materialize, pd::StepOutput::direct}) {
          const Case c{p, l0, storage, output};
          // About seven middle degree-2 steps: every sequence of that cost is enumerated.
          const int horizon = std::min(32, 7 * pd::step_gemms(p, pd::StepDesc{2, false, false, output}));
          const int max_steps = 14;
          const Exhaustive ex = exhaustive(c, horizon, max_steps, targets);
          total += ex.sequences;
          const std::string where = "p " + std::to_string(p) + " l0 " + std::to_string(l0) +
                                    (storage == pe::DType::f32 ? " f32" : " f64") +
                                    (output == pd::StepOutput::direct ? " direct" : " materialize");
          pd::PlanRequest r;
          r.p = p;
          r.storage = storage;
          r.start = {l0, 1.0};
          r.max_steps = max_steps;
          r.output = output;
          for (int g = 0; g <= horizon; ++g) {
            const Best& best = ex.by_budget[static_cast<std::size_t>(g)];
            r.max_gemms = g;
            r.target = 0;
            // max_gemms = 0 means "no GEMM budget", so budget 0 is not a request of its own.
            if (g == 0) continue;
            if (!best.found) {
              EXPECT_THROW(pd::plan_steps(tables(), r), pe::Error) << where << " budget " << g;
              continue;
            }
            const pd::StepPlan plan = pd::plan_steps(tables(), r);
            EXPECT_LE(plan.gemms, g) << where << " budget " << g;
            EXPECT_EQ(plan.final_bound, best.bound) << where << " budget " << g;
            EXPECT_EQ(plan.gemms, best.gemms) << where << " budget " << g << " (ties: fewer GEMMs)";
            expect_certified_chain(plan, c);
          }
          for (std::size_t i = 0; i < targets.size(); ++i) {
            const Best& best = ex.by_target[i];
            if (!best.found) continue;  // not reachable within the enumerated horizon
            r.max_gemms = horizon;
            r.target = targets[i];
            const pd::StepPlan plan = pd::plan_steps(tables(), r);
            EXPECT_TRUE(plan.reached) << where << " target " << targets[i];
            EXPECT_EQ(plan.gemms, best.gemms) << where << " target " << targets[i];
            EXPECT_EQ(plan.final_bound, best.bound) << where << " target " << targets[i] << " (ties: smaller bound)";
            // Without a GEMM budget the planner finds the same: the fewest GEMMs do not depend on a cap above them.
            r.max_gemms = 0;
            EXPECT_EQ(pd::plan_steps(tables(), r).gemms, best.gemms) << where << " target " << targets[i] << " no budget";
          }
        }
  EXPECT_GT(total, 100000) << "the search should enumerate a substantial number of sequences";
  std::printf("exhaustive search: %ld degree sequences\n", total);
}

// Steps already done: no planned step is the first (its X update is a product then), and the step budget
// counts from now.
TEST(StepPlanner, StepsAlreadyDoneChangeTheCostOfTheFirstPlannedStep) {
  pd::PlanRequest r;
  r.p = 2;
  r.start = {1e-2, 1.0};
  r.target = 1e-6;
  const pd::StepPlan fresh = pd::plan_steps(tables(), r);
  r.steps_done = 3;
  const pd::StepPlan later = pd::plan_steps(tables(), r);
  ASSERT_FALSE(later.steps.empty());
  EXPECT_EQ(later.steps.front().gemms,
            pd::step_gemms(2, pd::StepDesc{later.steps.front().degree, false, later.steps.size() == 1,
                                           pd::StepOutput::materialize}));
  EXPECT_GE(later.gemms, fresh.gemms);
  EXPECT_TRUE(later.reached);
}

TEST(StepPlanner, AllowedDegreesAndBadRequests) {
  pd::PlanRequest r;
  r.p = 4;
  r.start = {1e-6, 1.0};
  r.target = 1e-3;
  r.degrees = {2};
  const pd::StepPlan only2 = pd::plan_steps(tables(), r);
  for (const auto& s : only2.steps) EXPECT_EQ(s.degree, 2);
  r.degrees = {};
  EXPECT_LE(pd::plan_steps(tables(), r).gemms, only2.gemms) << "more step types never cost more GEMMs";
  // The budget-only mode: the smallest bound within 10 GEMMs, never above them.
  r.target = 0;
  r.max_gemms = 10;
  EXPECT_LE(pd::plan_steps(tables(), r).gemms, 10);
  auto message = [&](const pd::PlanRequest& bad) {
    try {
      pd::plan_steps(tables(), bad);
    } catch (const pe::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  pd::PlanRequest bad = r;
  bad.p = 9;
  EXPECT_NE(message(bad).find("no bucket table for p = 9"), std::string::npos) << message(bad);
  bad = r;
  bad.degrees = {7};
  EXPECT_NE(message(bad).find("degree 7"), std::string::npos) << message(bad);
  bad = r;
  bad.max_gemms = 0;
  bad.max_steps = 0;
  EXPECT_NE(message(bad).find("max_steps"), std::string::npos) << message(bad);
  bad = r;
  bad.start = {0, 1};
  EXPECT_NE(message(bad).find("start interval"), std::string::npos) << message(bad);
  bad = r;
  bad.p = 8;
  bad.max_gemms = 0;
  bad.target = 0;
  bad.max_steps = 1;
  bad.degrees = {4};
  bad.output = pd::StepOutput::direct;
  EXPECT_EQ(pd::plan_steps(tables(), bad).gemms, 4) << "one direct degree-4 step: Horner, 4 skinny products";
}

}  // namespace
