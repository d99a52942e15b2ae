#include "step_planner.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <tuple>

#include "pe/detail/format.hpp"

namespace pe::detail {

namespace {

// Steps the dynamic programming looks at, whatever max_steps says: every table reaches the bound it
// can no longer improve (its floor) within a few dozen steps, so this loses nothing and bounds the
// work (states are steps x GEMMs).
constexpr int kPlanStepLimit = 128;

struct DegreeTable {
  int degree;
  const OwnedBucketTable* table;
};

void check_request(const PlanRequest& r) {
  if (r.p < 1 || r.p > 64) throw Error("plan: p = " + std::to_string(r.p) + " is not in [1, 64]");
  if (!(r.target >= 0 && r.target < 1))
    throw Error("plan: target = " + format_number(r.target) + " is not 0 (smallest bound) or in (0, 1)");
  if (r.max_gemms < 0) throw Error("plan: max_gemms = " + std::to_string(r.max_gemms) + " is not >= 0");
  if (r.max_steps < 1) throw Error("plan: max_steps = " + std::to_string(r.max_steps) + " leaves no step to plan");
  if (r.steps_done < 0) throw Error("plan: steps_done = " + std::to_string(r.steps_done) + " is not >= 0");
  if (!(r.start.lo > 0 && r.start.lo <= r.start.hi && std::isfinite(r.start.hi)))
    throw Error("plan: start interval [" + format_number(r.start.lo) + ", " + format_number(r.start.hi) +
                "] is not 0 < lo <= hi");
  for (int d : r.degrees)
    if (d < 1 || d > kMaxDegree)
      throw Error("plan: degree " + std::to_string(d) + " is not in [1, " + std::to_string(kMaxDegree) + "]");
}

std::vector<DegreeTable> tables_for(const ScheduleSet& set, const PlanRequest& r) {
  std::vector<DegreeTable> out;
  std::string available;
  for (int d : set.degrees(r.p)) {
    available += (available.empty() ? "" : ", ") + std::to_string(d);
    if (r.degrees.empty() || std::find(r.degrees.begin(), r.degrees.end(), d) != r.degrees.end())
      out.push_back({d, set.find(r.p, d)});
  }
  if (out.empty()) {
    std::string asked;
    for (int d : r.degrees) asked += (asked.empty() ? "" : ", ") + std::to_string(d);
    throw Error("the schedule tables (" + set.origin + ") have no bucket table for p = " + std::to_string(r.p) +
                (r.degrees.empty() ? std::string() : " of degree " + asked) +
                (available.empty() ? std::string() : " (they have degree " + available + ")"));
  }
  return out;
}

int step_cost(const PlanRequest& r, int degree, bool first, bool last) {
  return step_gemms(r.p, StepDesc{degree, first, last, r.output});
}

// Re-walks a degree sequence through the interval model and fills in every step.
StepPlan walk(const std::vector<DegreeTable>& tables, const PlanRequest& r, const std::vector<int>& degrees) {
  StepPlan plan;
  Interval iv = r.start;
  for (std::size_t k = 0; k < degrees.size(); ++k) {
    auto it = std::find_if(tables.begin(), tables.end(), [&](const DegreeTable& t) { return t.degree == degrees[k]; });
    if (it == tables.end()) throw Error("plan: no table of degree " + std::to_string(degrees[k]) + " for this request");
    const StepChoice c = choose_step(*it->table, r.storage, iv);
    PlannedStep s;
    s.degree = degrees[k];
    s.l_edge = c.entry->l_edge;
    s.before = iv;
    s.image = c.image;
    s.bound = interval_bound(c.image);
    s.gemms = step_cost(r, s.degree, r.steps_done == 0 && k == 0, k + 1 == degrees.size());
    plan.gemms += s.gemms;
    s.cumulative_gemms = plan.gemms;
    plan.steps.push_back(s);
    iv = normalized(c.image);
  }
  plan.final_bound = plan.steps.empty() ? interval_bound(r.start) : plan.steps.back().bound;
  plan.reached = r.target > 0 && plan.final_bound <= r.target;
  return plan;
}

}  // namespace

StepPlan simulate_steps(const ScheduleSet& set, const PlanRequest& request, const std::vector<int>& degrees) {
  check_request(request);
  return walk(tables_for(set, request), request, degrees);
}

StepPlan plan_steps(const ScheduleSet& set, const PlanRequest& r) {
  check_request(r);
  const std::vector<DegreeTable> tables = tables_for(set, r);
  const bool fresh = r.steps_done == 0;
  const int steps = std::min(r.max_steps, kPlanStepLimit);
  // GEMMs a plan can spend: the budget, or what `steps` of the dearest step cost (no step costs more
  // as the first or the last than in the middle).
  int dearest = 0, cheapest = INT_MAX;
  for (const DegreeTable& t : tables) {
    dearest = std::max(dearest, step_cost(r, t.degree, false, false));
    cheapest = std::min(cheapest, step_cost(r, t.degree, fresh, true));
  }
  const int horizon = r.max_gemms > 0 ? std::min(r.max_gemms, steps * dearest) : steps * dearest;
  if (cheapest > horizon)
    throw Error("the budget (max_gemms = " + std::to_string(r.max_gemms) + ") does not allow a single step for p = " +
                std::to_string(r.p) + ": the cheapest costs " + std::to_string(cheapest) + " GEMM(s)");

  // best[k][g]: the largest normalised lower end after k steps (none of them the last) costing g GEMMs,
  // -1 when unreachable; k = 0 is the start itself. parent: the GEMMs before and the degree of step k.
  const auto width = static_cast<std::size_t>(horizon) + 1;
  std::vector<std::vector<double>> best(static_cast<std::size_t>(steps), std::vector<double>(width, -1));
  struct Parent {
    int g = -1, degree = 0;
  };
  std::vector<std::vector<Parent>> parent(static_cast<std::size_t>(steps), std::vector<Parent>(width));
  best[0][0] = r.start.lo;

  struct Final {
    int k = -1, g = 0, degree = 0, total = 0;
    double bound = 2;
  } chosen;
  auto better = [&](const Final& a, const Final& b) {
    if (b.k < 0) return true;
    if (r.target > 0) {
      const bool ra = a.bound <= r.target, rb = b.bound <= r.target;
      if (ra != rb) return ra;
      if (ra) return std::tie(a.total, a.bound, a.k) < std::tie(b.total, b.bound, b.k);
    }
    return std::tie(a.bound, a.total, a.k) < std::tie(b.bound, b.total, b.k);
  };

  for (int k = 0; k < steps; ++k) {
    double dominating = -1;  // the largest l at this k with fewer GEMMs: a state not above it is dominated
    for (int g = 0; g <= horizon; ++g) {
      const double l = best[static_cast<std::size_t>(k)][static_cast<std::size_t>(g)];
      if (l < 0 || l <= dominating) continue;
      dominating = l;
      const Interval iv = k == 0 ? r.start : Interval{l, 1.0};
      const bool first = fresh && k == 0;
      for (const DegreeTable& t : tables) {
        const StepChoice c = choose_step(*t.table, r.storage, iv);
        const Final as_last{k, g, t.degree, g + step_cost(r, t.degree, first, true), interval_bound(c.image)};
        if (as_last.total <= horizon && better(as_last, chosen)) chosen = as_last;
        const int next_g = g + step_cost(r, t.degree, first, false);
        if (k + 1 < steps && next_g <= horizon) {
          const double next_l = normalized(c.image).lo;
          auto& slot = best[static_cast<std::size_t>(k + 1)][static_cast<std::size_t>(next_g)];
          if (next_l > slot) {
            slot = next_l;
            parent[static_cast<std::size_t>(k + 1)][static_cast<std::size_t>(next_g)] = {g, t.degree};
          }
        }
      }
    }
  }

  std::vector<int> degrees{chosen.degree};
  for (int k = chosen.k, g = chosen.g; k > 0; --k) {
    const Parent& pa = parent[static_cast<std::size_t>(k)][static_cast<std::size_t>(g)];
    degrees.push_back(pa.degree);
    g = pa.g;
  }
  std::reverse(degrees.begin(), degrees.end());
  return walk(tables, r, degrees);
}

}  // namespace pe::detail
