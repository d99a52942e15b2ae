// pe-bench-micro: per-step costs behind pe-bench's table, with Google Benchmark.
//   BM_Gemm            one n x n x n product (the unit every method is made of)
//   BM_RootSteps       our root with a fixed step budget (target 0): the slope over `steps` is the cost
//                      of one coupled step; the counter gemms_per_step says how many products it makes
//   BM_RootPlanExecute RootPlan::execute without the certificate (the default target, kappa = 1e4): what
//                      an optimizer step pays once the plan is made; counter gemms is the plan's count
//   BM_ApplyDirect     our direct apply Z = A^{-1/p} B (k = 64) with a fixed step budget
//   BM_EighRoot        the syevd root
//   BM_NewtonIteration one full coupled Newton iteration (X T, T^p, T^p M)
//   BM_ReportToJson    pe::to_json of a default root's Report (n, p = 2, f32): what every Python call pays
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "baselines.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"

namespace {

constexpr double kKappa = 1e4;

template <class T>
std::vector<T> test_matrix(std::int64_t n) {
  const std::vector<double> a =
      pe::reference::random_spd(pe::reference::make_spectrum(n, kKappa, pe::reference::Spectrum::spread), 7);
  return std::vector<T>(a.begin(), a.end());
}

template <class T>
constexpr pe::DType dtype_of() {
  return std::is_same_v<T, float> ? pe::DType::f32 : pe::DType::f64;
}

template <class T>
void BM_Gemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<T> a = test_matrix<T>(n);
  std::vector<T> c(a.size());
  for (auto _ : state) {
    pe_bench::gemm(n, a.data(), a.data(), c.data());
    benchmark::DoNotOptimize(c.data());
  }
  // Reported as FLOP/s (Google Benchmark scales it to G with OneK::kIs1000).
  state.counters["FLOPS"] = benchmark::Counter(2.0 * static_cast<double>(n * n * n),
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

template <class T>
void BM_RootSteps(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<T> a = test_matrix<T>(n);
  std::vector<T> x(a.size());
  pe::Options o;
  o.p = static_cast<int>(state.range(1));
  o.target = 0;
  o.max_steps = static_cast<int>(state.range(2));
  pe::Report r;
  for (auto _ : state) {
    r = pe::inverse_root(pe::Matrix{a.data(), n, n, n, dtype_of<T>()},
                         pe::MutableMatrix{x.data(), n, n, n, dtype_of<T>()}, o);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["gemms"] = r.gemms;
  state.counters["steps"] = r.steps;
}

template <class T>
void BM_RootPlanExecute(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<T> a = test_matrix<T>(n);
  std::vector<T> x(a.size());
  pe::Options o;
  o.p = static_cast<int>(state.range(1));
  o.verify = false;
  const pe::Matrix a_view{a.data(), n, n, n, dtype_of<T>()};
  const pe::MutableMatrix x_view{x.data(), n, n, n, dtype_of<T>()};
  pe::RootPlan plan(pe::describe(a_view), o);
  pe::Report r;
  for (auto _ : state) {
    r = plan.execute(a_view, x_view);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["gemms"] = r.gemms;
}

template <class T>
void BM_ApplyDirect(benchmark::State& state) {
  const std::int64_t n = state.range(0), k = 64;
  const std::vector<T> a = test_matrix<T>(n);
  std::vector<T> b(static_cast<std::size_t>(n * k)), z(b.size());
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  for (auto& v : b) v = static_cast<T>(normal(rng));
  pe::Options o;
  o.p = static_cast<int>(state.range(1));
  o.target = 0;
  o.max_steps = static_cast<int>(state.range(2));
  o.mode = pe::ApplyMode::direct;
  pe::Report r;
  for (auto _ : state) {
    r = pe::apply_inverse_root(pe::Matrix{a.data(), n, n, n, dtype_of<T>()}, pe::Matrix{b.data(), n, k, n, dtype_of<T>()},
                               pe::MutableMatrix{z.data(), n, k, n, dtype_of<T>()}, o);
    benchmark::DoNotOptimize(z.data());
  }
  state.counters["gemms"] = r.gemms;
}

template <class T>
void BM_EighRoot(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<T> a = test_matrix<T>(n);
  std::vector<T> x;
  for (auto _ : state) {
    pe_bench::eigh_inverse_root(a, n, static_cast<int>(state.range(1)), x);
    benchmark::DoNotOptimize(x.data());
  }
}

template <class T>
void BM_NewtonIteration(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const int p = static_cast<int>(state.range(1));
  const std::vector<T> a = test_matrix<T>(n);
  pe_bench::CoupledNewton<T> newton(n, p);
  std::vector<T> x;
  const double c = pe_bench::newton_scaling(1 / kKappa, 1, p);
  // The first iteration makes only the T^p M products (X_0 is scalar) and the last skips them, so the
  // slope over `iterations` is the cost of one full iteration (X T, T^p, T^p M).
  const int iterations = static_cast<int>(state.range(2));
  int gemms = 0;
  for (auto _ : state) {
    gemms = newton.run(a, c, iterations, x);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["gemms"] = gemms;
}

void BM_ReportToJson(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const std::vector<float> a = test_matrix<float>(n);
  std::vector<float> x(a.size());
  pe::Options o;
  const pe::Report report =
      pe::inverse_root(pe::Matrix{a.data(), n, n, n, pe::DType::f32}, pe::MutableMatrix{x.data(), n, n, n, pe::DType::f32}, o);
  for (auto _ : state) benchmark::DoNotOptimize(pe::to_json(report));
  state.counters["steps"] = report.steps;
}

void root_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {256, 512, 1024})
    for (int p : {2, 4})
      for (int steps : {1, 2, 4}) b->Args({n, p, steps});
}

void newton_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {256, 512, 1024})
    for (int p : {2, 4})
      for (int iterations : {1, 2, 4}) b->Args({n, p, iterations});
}

}  // namespace

BENCHMARK(BM_Gemm<float>)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gemm<double>)->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RootSteps<float>)->Apply(root_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RootSteps<double>)->Apply(root_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RootPlanExecute<float>)->ArgsProduct({{256, 1024}, {2, 4}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ApplyDirect<float>)->Apply(root_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EighRoot<float>)->Args({256, 2})->Args({512, 2})->Args({1024, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EighRoot<double>)->Args({256, 2})->Args({512, 2})->Args({1024, 2})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NewtonIteration<float>)->Apply(newton_args)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NewtonIteration<double>)->Apply(newton_args)->Unit(benchmark::kMillisecond);

BENCHMARK(BM_ReportToJson)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
