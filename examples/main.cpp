// pe-embed-example: a fifth root from tables this project generated at its build time and compiled in
// (pe_add_schedules in CMakeLists.txt: header p5_tables.hpp, namespace pe::p5_tables).
//   1. the compiled records are usable in constant expressions: static_asserts check what this program
//      relies on, and the interval model predicts, from the records, how many steps the target takes;
//   2. pe::inverse_root runs on the same compiled set (ScheduleSource::embedded, no file at run time)
//      with degree-4 steps, and the result is checked against the closed form
//      A^{-1/5} = H D^{-1/5} H (H a Householder reflector, so H = H^T = H^{-1}).
// Exit status 0 only when the runtime reached the target and the error is within it.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "p5_tables.hpp"
#include "pe/pe.hpp"

namespace {

constexpr int kP = 5;
constexpr int kDegree = 4;
constexpr int kN = 96;
constexpr double kKappa = 1e4;
constexpr double kTarget = 1e-6;

constexpr const pe::BucketTable* find_table(int p, int degree) {
  for (std::size_t i = 0; i < pe::p5_tables::kScheduleSet.count; ++i)
    if (pe::p5_tables::kScheduleSet.tables[i].p == p && pe::p5_tables::kScheduleSet.tables[i].degree == degree)
      return &pe::p5_tables::kScheduleSet.tables[i];
  return nullptr;
}
static_assert(find_table(kP, kDegree) != nullptr, "p5_config.json asks for a p = 5, degree 4 table");

// H diag(d) H with H = I - 2 v v^T / (v^T v), column-major.
std::vector<double> reflect(const std::vector<double>& d, const std::vector<double>& v) {
  const int n = static_cast<int>(d.size());
  double vv = 0;
  for (double x : v) vv += x * x;
  std::vector<double> h(static_cast<std::size_t>(n * n)), out(h.size());
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) h[static_cast<std::size_t>(i + j * n)] = (i == j ? 1.0 : 0.0) - 2 * v[i] * v[j] / vv;
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      double s = 0;
      for (int k = 0; k < n; ++k) s += h[static_cast<std::size_t>(i + k * n)] * d[k] * h[static_cast<std::size_t>(k + j * n)];
      out[static_cast<std::size_t>(i + j * n)] = s;
    }
  return out;
}

// Steps the interval model needs from [l0, 1] until the certified bound reaches the target: each step
// uses the bucket with the largest edge <= l and moves to the normalised certified image.
constexpr int predicted_steps(const pe::BucketTable& table, double l0, double target) {
  double l = l0;
  for (int step = 1; step <= 60; ++step) {
    const pe::BucketEntry* entry = &table.entries[0];
    for (std::size_t e = 0; e < table.count; ++e)
      if (table.entries[e].l_edge <= l) entry = &table.entries[e];
    if (pe::image_bound(entry->image_lo_f64, entry->image_hi_f64) <= target) return step;
    l = pe::image_ratio(entry->image_lo_f64, entry->image_hi_f64);
  }
  return -1;
}
// Decided at compile time from the compiled numbers.
constexpr int kPredictedSteps = predicted_steps(*find_table(kP, kDegree), 1 / kKappa, kTarget);
static_assert(kPredictedSteps > 0, "the embedded tables do not reach the target from kappa = 1e4");

}  // namespace

int main() {
  const pe::CompiledScheduleSet& set = pe::p5_tables::kScheduleSet;
  std::printf("embedded tables: %s, config %s, %zu bucket table(s)\n", set.generator, set.config_hash, set.count);
  std::printf("p = %d, degree %d: %zu buckets; the interval model reaches %.0e from kappa %.0e in %d steps\n", kP,
              kDegree, find_table(kP, kDegree)->count, kTarget, kKappa, kPredictedSteps);

  std::vector<double> d(kN), v(kN), root_d(kN);
  for (int i = 0; i < kN; ++i) {
    d[i] = std::pow(kKappa, static_cast<double>(i) / (kN - 1) - 1);  // log-spaced in [1/kappa, 1]
    root_d[i] = std::pow(d[i], -1.0 / kP);
    v[i] = std::sin(1.0 + i);
  }
  const std::vector<double> a = reflect(d, v), expected = reflect(root_d, v);

  pe::Options options;
  options.p = kP;
  options.degree = kDegree;
  options.target = kTarget;
  options.schedule_source = pe::ScheduleSource::embedded;
  options.embedded_schedules = &set;
  std::vector<double> x(a.size());
  pe::Report report;
  try {
    report = pe::inverse_root(pe::Matrix{a.data(), kN, kN, kN}, pe::MutableMatrix{x.data(), kN, kN, kN}, options);
  } catch (const pe::Error& e) {
    std::fprintf(stderr, "pe-embed-example: error: %s\n", e.what());
    return 1;
  }
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    diff += (x[i] - expected[i]) * (x[i] - expected[i]);
    norm += expected[i] * expected[i];
  }
  const double error = std::sqrt(diff / norm);
  std::printf("runtime (%s tables): %d steps, %d GEMMs, tracked bound %.3g (certified %s, fallback %s), l0 %.3g (%s)\n",
              report.schedules.c_str(), report.steps, report.gemms, report.final_eps, report.certified ? "yes" : "no",
              report.fallback ? "yes" : "no", report.l0.empty() ? 0.0 : report.l0[0], report.l0_source.c_str());
  // ||X^p A - I|| <= eps gives a relative error of X of about eps / p; the factor 2 leaves room for rounding.
  const double tolerance = 2 * kTarget / kP;
  std::printf("||X - A^{-1/5}||_F / ||A^{-1/5}||_F = %.3g (tolerance %.3g)\n", error, tolerance);
  const bool ok = report.target_reached && !report.fallback && report.schedules == "embedded" &&
                  report.degree == kDegree && error <= tolerance;
  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
