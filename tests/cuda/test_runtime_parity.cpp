// The runtime's algorithm (preconditioning, interval-tracked coupled steps, divergence checks) on the
// CUDA backend in every storage dtype, against LAPACK in double and against the CPU backend in double.
// Tables: the generated ones when they are compiled in, otherwise the closed-form Newton table
// (newton_table.hpp), so these tests exercise the same code path on a GPU either way.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "backend_factory.hpp"
#include "cuda_test_support.hpp"
#include "engine/root_engine.hpp"
#include "pe/pe.hpp"
#include "pe/solve.hpp"
#include "newton_table.hpp"
#include "precondition.hpp"
#include "reference.hpp"

namespace pe::test {
namespace {

using detail::Mat;

struct TableChoice {
  detail::OwnedBucketTable table;
  std::string source;
};

// The degree-2 generated table for p when there is one, else the degree-1 one, else Newton.
TableChoice table_for(int p) {
  try {
    const detail::ScheduleSet& set = detail::compiled_schedules();
    for (int degree : {2, 1})
      if (const detail::OwnedBucketTable* t = set.find(p, degree)) return {*t, "compiled degree " + std::to_string(degree)};
  } catch (const pe::Error&) {
    // no generated tables in this build
  }
  return {newton_bucket_table(p), "closed-form Newton"};
}

struct RunResult {
  HostBatch x;  // X ~ A^{-1/p} (materialised) or Z ~ A^{-1/p} B (direct), in double
  Report it;
};

// Everything pe::inverse_root does between moving the input in and out, on a given backend: the engine
// on that backend with the given table (the interval model's bound: verification off; a divergence is
// reported as a fallback).
RunResult run_algorithm(detail::Backend& be, HostBatch a, const TableChoice& table, int p, double target,
                        double kappa, const HostBatch* rhs = nullptr,
                        std::function<void(StepEvent&)> on_step = {}) {
  const std::int64_t n = a.rows, batch = a.batch;
  Mat am = upload_stored(be, a);
  detail::ScheduleSet set;
  set.origin = table.source;
  set.tables = {table.table};
  Options o;
  o.p = p;
  o.target = target;
  o.kappa_hint = kappa;
  o.verify = false;
  o.mode = ApplyMode::direct;
  o.on_step = std::move(on_step);
  const MatrixDesc desc{n, n, batch, be.storage(), Device::cpu};
  RunResult r;
  if (rhs) {
    HostBatch b = *rhs;
    const MatrixDesc bdesc{n, b.cols, batch, be.storage(), Device::cpu};
    detail::RootEngine engine(desc, &bdesc, o, &set, be);
    Mat bm = upload_stored(be, b);
    be.copy(bm, engine.rhs());
    r.it = engine.run(am, nullptr, {});
    r.x = download(be, engine.z());
  } else {
    detail::RootEngine engine(desc, nullptr, o, &set, be);
    r.it = engine.run(am, nullptr, {});
    r.x = download(be, engine.result());
  }
  return r;
}

HostBatch spd_times_powers_of_two(std::mt19937_64& rng, std::int64_t n, double kappa, const std::vector<double>& s) {
  const std::vector<double> a =
      reference::random_spd(reference::make_spectrum(n, kappa, reference::Spectrum::spread), rng());
  HostBatch h(n, n, static_cast<std::int64_t>(s.size()));
  for (std::size_t k = 0; k < s.size(); ++k)
    for (std::int64_t i = 0; i < n * n; ++i) h.v[k * static_cast<std::size_t>(n * n) + static_cast<std::size_t>(i)] = s[k] * a[static_cast<std::size_t>(i)];
  return h;
}

std::vector<double> member(const HostBatch& h, std::int64_t k) {
  const auto size = h.rows * h.cols;
  return {h.v.begin() + k * size, h.v.begin() + (k + 1) * size};
}

// Where the rounding of a storage enters: its unit roundoff, or tf32's 2^-11 on GEMM inputs.
double effective_roundoff(const Config& c) {
  return c.compute == ComputeMode::tf32 ? std::ldexp(1.0, -11) : unit_roundoff(c.storage);
}

// Rounding allowance on top of the tracked bound. Each step rounds X once and Y through about p + 1
// products; an error in Y moves later steps' q (so X) by about the same relative amount, giving
// steps * (p + 2) unit roundoffs. A relative rounding u of Y acts like a relative perturbation u of A,
// which moves A^{-1/p} by up to kappa^{1/p} u relative (the root's condition on a spread spectrum), so
// the allowance is steps (p + 2) kappa^{1/p} u (bf16: u = 2^-8; tf32 products: 2^-11).
double rounding_allowance(const Config& c, int steps, int p, double kappa) {
  return steps * (p + 2) * std::pow(kappa, 1.0 / p) * effective_roundoff(c) + 1e-10;  // 1e-10: LAPACK at cond <= 1e3
}

class CudaRuntime : public ::testing::TestWithParam<std::tuple<Config, int>> {
 protected:
  void SetUp() override {
    PE_REQUIRE_CUDA_DEVICE();
    seed_ = fresh_seed();
    rng_.seed(seed_);
  }
  const Config& config() const { return std::get<0>(GetParam()); }
  int p() const { return std::get<1>(GetParam()); }
  // bf16/fp16 aim at 1e-2 (their unit roundoffs are 4e-3 and 5e-4), the others at 1e-3.
  bool half() const { return config().storage == DType::bf16 || config().storage == DType::f16; }
  double target() const { return half() ? 1e-2 : 1e-3; }
  // 16-bit storage keeps cond 1e2 so that its allowance (kappa^{1/p} u per rounding) stays informative.
  double kappa() const { return half() ? 1e2 : 1e3; }
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
};

TEST_P(CudaRuntime, RootWithinTrackedBoundAndBatchedEqualsUnbatched) {
  const int p = this->p();
  const TableChoice table = table_for(p);
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + config().name + ", p " + std::to_string(p) +
               ", tables " + table.source);
  const std::int64_t n = 64;
  const double kappa = this->kappa();
  const std::vector<double> s{1.0, 4.0, 0.25};  // exact in every dtype: the members share A_n
  HostBatch a = spd_times_powers_of_two(rng_, n, kappa, s);
  auto gpu = detail::make_cuda_backend(config().storage, config().compute, nullptr);
  const RunResult batched = run_algorithm(*gpu, a, table, p, target(), kappa);
  ASSERT_FALSE(batched.it.fallback) << batched.it.fallback_reason;
  EXPECT_TRUE(batched.it.target_reached) << "final bound " << batched.it.final_eps;

  HostBatch stored = a;  // what the device holds after rounding to the storage
  (void)upload_stored(*gpu, stored);
  const double allowance = rounding_allowance(config(), batched.it.steps, p, kappa);
  const std::vector<double> ref = reference::inverse_root(member(stored, 0), n, p);
  for (std::int64_t k = 0; k < a.batch; ++k) {
    std::vector<double> xk = member(batched.x, k);
    for (double& v : xk) v *= std::pow(s[static_cast<std::size_t>(k)], 1.0 / p);  // (s A)^{-1/p} = s^{-1/p} A^{-1/p}
    const double err = reference::relative_error(xk, ref);
    RecordProperty("rel_error_member_" + std::to_string(k), std::to_string(err));
    if (k == 0)
      std::printf("[ measured ] %s p=%d steps=%d gemms=%d tracked=%.3g rel_error=%.3g allowance=%.3g\n", config().name,
                  p, batched.it.steps, batched.it.gemms, batched.it.final_eps, err, allowance);
    EXPECT_LE(err, batched.it.final_eps + allowance)
        << "member " << k << ": steps " << batched.it.steps << ", bound " << batched.it.final_eps;
  }

  // The first member alone: same schedule (same A_n), same result up to the products' rounding.
  HostBatch single(n, n, 1);
  single.v = member(a, 0);
  const RunResult alone = run_algorithm(*gpu, single, table, p, target(), kappa);
  EXPECT_EQ(alone.it.steps, batched.it.steps);
  EXPECT_EQ(alone.it.gemms, batched.it.gemms);
  const double diff = reference::relative_error(member(batched.x, 0), alone.x.v);
  EXPECT_LE(diff, config().storage == DType::f64 ? 1e-12 : 2 * allowance) << "batched vs unbatched";

  // Against the CPU backend in double on the same stored matrix: in f64 the same arithmetic up to
  // summation order (cond 1e3 times a few dozen roundings of 2^-53); in other dtypes both within bounds.
  auto cpu = detail::make_cpu_backend(DType::f64, ComputeMode::native);
  HostBatch stored_single(n, n, 1);
  stored_single.v = member(stored, 0);
  const RunResult host = run_algorithm(*cpu, stored_single, table, p, target(), kappa);
  const double cpu_diff = reference::relative_error(alone.x.v, host.x.v);
  RecordProperty("rel_diff_vs_cpu_f64", std::to_string(cpu_diff));
  if (config().storage == DType::f64) {
    EXPECT_EQ(alone.it.steps, host.it.steps);
    EXPECT_LE(cpu_diff, 1e-9);
  } else {
    EXPECT_LE(cpu_diff, batched.it.final_eps + host.it.final_eps + allowance);
  }
}

TEST_P(CudaRuntime, DirectApplyWithinTrackedBound) {
  const int p = this->p();
  const TableChoice table = table_for(p);
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + config().name + ", p " + std::to_string(p));
  const std::int64_t n = 64, k = 5;
  const double kappa = this->kappa();
  HostBatch a = spd_times_powers_of_two(rng_, n, kappa, {1.0, 2.0});
  HostBatch b = random_batch(rng_, n, k, 2);
  auto gpu = detail::make_cuda_backend(config().storage, config().compute, nullptr);
  HostBatch stored_a = a, stored_b = b;
  (void)upload_stored(*gpu, stored_a);
  (void)upload_stored(*gpu, stored_b);
  const RunResult direct = run_algorithm(*gpu, a, table, p, target(), kappa, &b);
  ASSERT_FALSE(direct.it.fallback) << direct.it.fallback_reason;
  for (std::int64_t m = 0; m < 2; ++m) {
    const std::vector<double> root = reference::inverse_root(member(stored_a, m), n, p);
    const std::vector<double> ref = reference::multiply(root, member(stored_b, m), n, n, k);
    // Z = X B with X = A^{-1/p} (I + F), ||F||_2 <= bound: ||Z - A^{-1/p} B||_F <= ||F||_2 ||A^{-1/p}||_2 ||B||_F,
    // ||A^{-1/p}||_2 = lambda_min(A)^{-1/p}.
    const double root_norm2 = std::pow(reference::eigenvalues(member(stored_a, m), n).front(), -1.0 / p);
    double b_norm = 0, err = 0;
    const std::vector<double> z = member(direct.x, m), bm = member(stored_b, m);
    for (std::size_t i = 0; i < z.size(); ++i) {
      b_norm += bm[i] * bm[i];
      err += (z[i] - ref[i]) * (z[i] - ref[i]);
    }
    EXPECT_LE(std::sqrt(err), (direct.it.final_eps + rounding_allowance(config(), direct.it.steps, p, kappa)) * root_norm2 *
                                  std::sqrt(b_norm))
        << "member " << m;
  }
}

TEST_P(CudaRuntime, DivergenceIsDetectedAndTheExactRootTakesOver) {
  const int p = this->p();
  const TableChoice table = table_for(p);
  const std::int64_t n = 48;
  HostBatch a = spd_times_powers_of_two(rng_, n, 100.0, {1.0});
  auto gpu = detail::make_cuda_backend(config().storage, config().compute, nullptr);
  // Fault injection: a NaN in the residual after the first step.
  const RunResult broken = run_algorithm(*gpu, a, table, p, target(), 100.0, nullptr, [](StepEvent& ev) {
    if (ev.step == 0 && !ev.y.empty()) {
      ev.y[3] = std::nan("");
      ev.write_back_y = true;
    }
  });
  ASSERT_TRUE(broken.it.fallback);
  EXPECT_NE(broken.it.fallback_reason.find("non-finite"), std::string::npos) << broken.it.fallback_reason;
  HostBatch stored = a;
  Mat am = upload_stored(*gpu, stored);
  Mat x = gpu->allocate(n, n, 1);
  ASSERT_TRUE(gpu->exact_inverse_root(am, p, x));
  EXPECT_LE(reference::relative_error(download(*gpu, x).v, reference::inverse_root(stored.v, n, p)),
            1.01 * unit_roundoff(config().storage) + 1e-11);
}

// The public API on the GPU: host views (copied in and out by the backend) in f32 and tf32, and device
// views with a direct apply, against LAPACK and against the same call on the CPU backend.
TEST(CudaPublicApi, RootAndApplyOnTheGpuMeetTheirBoundsLikeTheCpu) {
  PE_REQUIRE_CUDA_DEVICE();
  try {
    (void)detail::compiled_schedules();
  } catch (const pe::Error& e) {
    GTEST_SKIP() << "no compiled schedule tables in this build: " << e.what();
  }
  std::mt19937_64 rng(fresh_seed());
  const std::int64_t n = 80, k = 3;
  const double kappa = 1e3;
  const std::vector<double> a =
      reference::random_spd(reference::make_spectrum(n, kappa, reference::Spectrum::spread), rng());
  for (int p : {2, 4}) {
    const std::vector<double> ref = reference::inverse_root(a, n, p);
    Options o;
    o.p = p;
    o.target = 1e-3;
    o.storage_from_input = false;
    o.storage = DType::f32;
    std::vector<double> x_cpu(a.size()), x_gpu(a.size()), x_tf32(a.size());
    const Report cpu = inverse_root(Matrix{a.data(), n, n, n}, MutableMatrix{x_cpu.data(), n, n, n}, o);
    o.device = Device::cuda;
    const Report gpu = inverse_root(Matrix{a.data(), n, n, n}, MutableMatrix{x_gpu.data(), n, n, n}, o);
    o.compute = ComputeMode::tf32;
    const Report tf32 = inverse_root(Matrix{a.data(), n, n, n}, MutableMatrix{x_tf32.data(), n, n, n}, o);
    EXPECT_EQ(gpu.backend, "cuda");
    EXPECT_FALSE(gpu.fallback) << gpu.fallback_reason;
    EXPECT_FALSE(tf32.fallback) << tf32.fallback_reason;
    EXPECT_TRUE(gpu.target_reached);
    // Same tables, same f32 rounding of A, same certified l0: the schedules agree up to one step where a
    // Gershgorin check lands on the other side of a bucket edge.
    EXPECT_LE(std::abs(gpu.steps - cpu.steps), 1) << "gpu " << gpu.steps << " cpu " << cpu.steps;
    const Config f32{DType::f32, ComputeMode::native, "f32"}, tf{DType::f32, ComputeMode::tf32, "tf32"};
    EXPECT_LE(reference::relative_error(x_gpu, ref), gpu.final_eps + rounding_allowance(f32, gpu.steps, p, kappa));
    EXPECT_LE(reference::relative_error(x_tf32, ref), tf32.final_eps + rounding_allowance(tf, tf32.steps, p, kappa));
    EXPECT_LE(reference::relative_error(x_cpu, ref), cpu.final_eps + rounding_allowance(f32, cpu.steps, p, kappa));

    // Device views (f32, column-major) and a direct apply Z = A^{-1/p} B.
    HostBatch b = random_batch(rng, n, k);
    std::vector<float> a32(a.begin(), a.end()), b32(b.v.begin(), b.v.end()), z32(b.v.size());
    void *da = nullptr, *db = nullptr, *dz = nullptr;
    ASSERT_EQ(cudaMalloc(&da, sizeof(float) * a32.size()), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&db, sizeof(float) * b32.size()), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dz, sizeof(float) * z32.size()), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(da, a32.data(), sizeof(float) * a32.size(), cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(db, b32.data(), sizeof(float) * b32.size(), cudaMemcpyHostToDevice), cudaSuccess);
    Options od;
    od.p = p;
    od.target = 1e-3;
    od.device = Device::cuda;
    od.mode = ApplyMode::direct;
    Matrix av{da, n, n, n, DType::f32};
    av.device = Device::cuda;
    Matrix bv{db, n, k, n, DType::f32};
    bv.device = Device::cuda;
    MutableMatrix zv{dz, n, k, n, DType::f32};
    zv.device = Device::cuda;
    const Report direct = apply_inverse_root(av, bv, zv, od);
    ASSERT_EQ(cudaMemcpy(z32.data(), dz, sizeof(float) * z32.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dz);
    EXPECT_EQ(direct.mode, "direct");
    EXPECT_FALSE(direct.fallback) << direct.fallback_reason;
    // As in DirectApplyWithinTrackedBound, with A and B as rounded to f32.
    std::vector<double> a_stored(a32.begin(), a32.end()), b_stored(b32.begin(), b32.end());
    const std::vector<double> zref = reference::multiply(reference::inverse_root(a_stored, n, p), b_stored, n, n, k);
    const double root_norm2 = std::pow(reference::eigenvalues(a_stored, n).front(), -1.0 / p);
    double err = 0, b_norm = 0;
    for (std::size_t i = 0; i < z32.size(); ++i) {
      err += (z32[i] - zref[i]) * (z32[i] - zref[i]);
      b_norm += b_stored[i] * b_stored[i];
    }
    EXPECT_LE(std::sqrt(err),
              (direct.final_eps + rounding_allowance(f32, direct.steps, p, kappa)) * root_norm2 * std::sqrt(b_norm));
  }
}

// Solves and Gram applies (pe/solve.hpp) with host views on the GPU, checked independently in double.
// Written after this session's device time was spent: compiled, skipped without a device, not yet run
// on a GPU.
bool have_compiled_schedules() {
  try {
    (void)detail::compiled_schedules();
    return true;
  } catch (const pe::Error&) {
    return false;
  }
}

double relative_residual(const std::vector<double>& a, const std::vector<double>& x, const std::vector<double>& b,
                         std::int64_t n, std::int64_t k) {
  const std::vector<double> ax = reference::multiply(a, x, n, n, k);
  double r = 0, bb = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    r += (b[i] - ax[i]) * (b[i] - ax[i]);
    bb += b[i] * b[i];
  }
  return std::sqrt(r / bb);
}

TEST(CudaSolve, SpdAndGeneralSolvesReachTheTargetOnTheGpu) {
  PE_REQUIRE_CUDA_DEVICE();
  if (!have_compiled_schedules()) GTEST_SKIP() << "no compiled schedule tables in this build";
  std::mt19937_64 rng(fresh_seed());
  const std::int64_t n = 96, k = 4;
  const std::vector<double> spd =
      reference::random_spd(reference::make_spectrum(n, 1e2, reference::Spectrum::spread), rng());
  // General: the SPD matrix plus a skew part; x^T A x = x^T S x > 0 keeps it nonsingular.
  std::vector<double> general = spd;
  const HostBatch r = random_batch(rng, n, n);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) general[static_cast<std::size_t>(i + j * n)] += 0.05 * (r(i, j) - r(j, i));
  const HostBatch b = random_batch(rng, n, k);
  const std::vector<double>* cases[] = {&spd, &general};
  for (const std::vector<double>* a : cases) {
    SolveOptions so;
    so.target = 1e-4;  // f32 storage at cond 1e2: rounding A and X to f32 costs about cond * 2^-24 = 6e-6
    so.storage_from_input = false;
    so.storage = DType::f32;
    so.device = Device::cuda;
    std::vector<double> x(static_cast<std::size_t>(n * k));
    const SolveReport report = solve(Matrix{a->data(), n, n, n}, Matrix{b.v.data(), n, k, n}, MutableMatrix{x.data(), n, k, n}, so);
    SCOPED_TRACE(std::string(a == &spd ? "spd" : "general") + ", method " + report.method);
    EXPECT_EQ(report.backend, "cuda");
    EXPECT_FALSE(report.fallback) << report.fallback_reason;
    EXPECT_TRUE(report.target_reached) << "residual " << report.residual;
    // Measured here in double against the unrounded A and B: the library's own residual is against A as
    // rounded to f32, which differs by at most cond * 2^-24 relative (6e-6 here), so twice the target holds.
    EXPECT_LE(relative_residual(*a, x, b.v, n, k), 2 * so.target);
  }
}

TEST(CudaGram, PlainAndRangeAppliesMatchTheReferenceOnTheGpu) {
  PE_REQUIRE_CUDA_DEVICE();
  if (!have_compiled_schedules()) GTEST_SKIP() << "no compiled schedule tables in this build";
  std::mt19937_64 rng(fresh_seed());
  const std::int64_t m = 150, n = 60, k = 3;
  const int p = 2;
  const double lambda = 1e-2;
  const HostBatch g = random_batch(rng, m, n);
  std::vector<double> gram(static_cast<std::size_t>(n * n));  // G^T G + lambda I in double
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      double v = i == j ? lambda : 0.0;
      for (std::int64_t l = 0; l < m; ++l) v += g(l, i) * g(l, j);
      gram[static_cast<std::size_t>(i + j * n)] = v;
    }
  const std::vector<double> root = reference::inverse_root(gram, n, p);
  const std::vector<double> eig = reference::eigenvalues(gram, n);
  const double kappa = eig.back() / eig.front(), root_norm2 = std::pow(eig.front(), -1.0 / p);
  const HostBatch b = random_batch(rng, n, k), c = random_batch(rng, m, k);
  std::vector<double> gt_c(static_cast<std::size_t>(n * k));  // G^T C
  for (std::int64_t j = 0; j < k; ++j)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t l = 0; l < m; ++l) gt_c[static_cast<std::size_t>(i + j * n)] += g(l, i) * c(l, j);
  for (GramRhs rhs : {GramRhs::plain, GramRhs::range}) {
    GramOptions go;
    go.p = p;
    go.lambda = lambda;
    go.rhs = rhs;
    go.storage_from_input = false;
    go.storage = DType::f32;
    go.device = Device::cuda;
    std::vector<double> z(static_cast<std::size_t>(n * k));
    const bool plain = rhs == GramRhs::plain;
    const GramReport report = gram_apply(Matrix{g.v.data(), m, n, m}, plain ? Matrix{b.v.data(), n, k, n}
                                                                            : Matrix{c.v.data(), m, k, m},
                                         MutableMatrix{z.data(), n, k, n}, go);
    SCOPED_TRACE(std::string(plain ? "plain" : "range") + ", side " + report.side);
    EXPECT_EQ(report.root.backend, "cuda");
    EXPECT_FALSE(report.root.fallback) << report.root.fallback_reason;
    const std::vector<double>& applied_to = plain ? b.v : gt_c;
    const std::vector<double> ref = reference::multiply(root, applied_to, n, n, k);
    double err = 0, rhs_norm = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
      err += (z[i] - ref[i]) * (z[i] - ref[i]);
      rhs_norm += applied_to[i] * applied_to[i];
    }
    // As in DirectApplyWithinTrackedBound; forming the Gram in f32 rounds once more than the root's input,
    // hence twice the allowance.
    const Config f32{DType::f32, ComputeMode::native, "f32"};
    EXPECT_LE(std::sqrt(err), (report.root.final_eps + 2 * rounding_allowance(f32, report.root.steps, p, kappa)) *
                                  root_norm2 * std::sqrt(rhs_norm));
  }
}

// Host emulation of the batching (runs in CI, no GPU): the same driver on the CPU backend in f32, where
// per-member scalars, the shared schedule and the one fetch per step follow the same code as on the GPU.
TEST(CudaRuntimeHostEmulation, BatchedEqualsUnbatchedAndMeetsTheBoundOnTheCpuBackend) {
  std::mt19937_64 rng(fresh_seed());
  const int p = 2;
  const TableChoice table = table_for(p);
  const std::int64_t n = 40;
  const std::vector<double> s{1.0, 8.0, 0.5};
  HostBatch a = spd_times_powers_of_two(rng, n, 1e3, s);
  auto cpu = detail::make_cpu_backend(DType::f32, ComputeMode::native);
  const RunResult batched = run_algorithm(*cpu, a, table, p, 1e-3, 1e3);
  ASSERT_FALSE(batched.it.fallback) << batched.it.fallback_reason;
  HostBatch single(n, n, 1);
  single.v = member(a, 0);
  const RunResult alone = run_algorithm(*cpu, single, table, p, 1e-3, 1e3);
  EXPECT_EQ(alone.it.steps, batched.it.steps);
  const Config f32{DType::f32, ComputeMode::native, "f32"};
  const double allowance = rounding_allowance(f32, batched.it.steps, p, 1e3);
  HostBatch stored = a;
  (void)upload_stored(*cpu, stored);
  const std::vector<double> ref = reference::inverse_root(member(stored, 0), n, p);
  for (std::int64_t k = 0; k < a.batch; ++k) {
    std::vector<double> xk = member(batched.x, k);
    for (double& v : xk) v *= std::pow(s[static_cast<std::size_t>(k)], 1.0 / p);
    EXPECT_LE(reference::relative_error(xk, ref), batched.it.final_eps + allowance) << "member " << k;
    EXPECT_LE(reference::relative_error(xk, alone.x.v), 2 * allowance) << "member " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, CudaRuntime, ::testing::Combine(::testing::ValuesIn(kConfigs), ::testing::Values(1, 2, 4)),
                         [](const ::testing::TestParamInfo<std::tuple<Config, int>>& info) {
                           return std::string(std::get<0>(info.param).name) + "_p" +
                                  std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace pe::test
