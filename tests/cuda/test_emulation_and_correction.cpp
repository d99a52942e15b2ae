// The CPU backend's emulation of the GPU formats against the CUDA backend it models (element operations
// bit for bit; products within the f32 accumulation bound), and the Newton correction's backend
// operations (symmetric_eigen, divide_elementwise) and the correction itself on the CUDA f64 backend.
// Skipped without a device.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <string>

#include "backend_factory.hpp"
#include "correction/newton.hpp"
#include "cuda_test_support.hpp"
#include "formats.hpp"
#include "reference.hpp"

namespace pe::test {
namespace {

using detail::Mat;
using detail::Op;

class EmulationParity : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    PE_REQUIRE_CUDA_DEVICE();
    seed_ = fresh_seed();
    rng_.seed(seed_);
    gpu_ = detail::make_cuda_backend(GetParam().storage, GetParam().compute, nullptr);
    cpu_ = detail::make_cpu_backend(GetParam().storage, GetParam().compute);
  }
  // The same host data in both backends.
  std::pair<Mat, Mat> both(HostBatch& h) {
    Mat g = upload_stored(*gpu_, h);
    Mat c = cpu_->allocate(h.rows, h.cols, h.batch);
    cpu_->upload(h.view(), c);
    return {g, c};
  }
  void expect_identical(const Mat& g, const Mat& c, const char* what) {
    const HostBatch hg = download(*gpu_, g), hc = download(*cpu_, c);
    for (std::size_t i = 0; i < hg.v.size(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint64_t>(hg.v[i]), std::bit_cast<std::uint64_t>(hc.v[i]))
          << what << "[" << i << "]: cuda " << hg.v[i] << ", cpu " << hc.v[i];
  }
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::unique_ptr<detail::Backend> gpu_, cpu_;
};

// Both backends compute element operations in double and round once to the storage: identical bits.
// (nvcc contracts a * b + c into an FMA where the host rounds the product first: the double intermediates
// may differ by an ulp, which changes an f32 result with probability about 2^-28 per element, a bf16 or
// f16 one far less, and f64 results visibly: f64 is left out, it is not emulated.)
TEST_P(EmulationParity, ElementOperationsAreBitIdentical) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + GetParam().name);
  if (GetParam().storage == DType::f64) GTEST_SKIP() << "f64 is not emulated";
  const std::int64_t n = 45, batch = 2;
  HostBatch ha = random_batch(rng_, n, n, batch), hb = random_batch(rng_, n, n, batch), hd = random_batch(rng_, n, 1, batch);
  // Upload from double: the CUDA backend converts on the device, the CPU rounds with formats.hpp.
  HostBatch raw = ha;
  auto [ga, ca] = both(ha);
  Mat cr = cpu_->allocate(n, n, batch);
  cpu_->upload(raw.view(), cr);
  expect_identical(ga, cr, "upload");
  auto [gb, cb] = both(hb);
  auto [gd, cd] = both(hd);
  const std::vector<double> alpha{0.7, -1.3}, beta{1.0 / 3}, gamma{0.25, 3.5};
  gpu_->axpby_identity(alpha, &ga, beta, &gb, gamma, gb);
  cpu_->axpby_identity(alpha, &ca, beta, &cb, gamma, cb);
  expect_identical(gb, cb, "axpby_identity");
  gpu_->scale(std::vector<double>{1.0 / 7, 2.9}, gb);
  cpu_->scale(std::vector<double>{1.0 / 7, 2.9}, cb);
  expect_identical(gb, cb, "scale");
  gpu_->diag_scale(&gd, gb, &gd);
  cpu_->diag_scale(&cd, cb, &cd);
  expect_identical(gb, cb, "diag_scale");
  gpu_->symmetrize(gb);
  cpu_->symmetrize(cb);
  expect_identical(gb, cb, "symmetrize");
  gpu_->add_diagonal(std::vector<double>{0.123}, gb);
  cpu_->add_diagonal(std::vector<double>{0.123}, cb);
  expect_identical(gb, cb, "add_diagonal");
  gpu_->divide_elementwise(ga, gb);
  cpu_->divide_elementwise(ca, cb);
  expect_identical(gb, cb, "divide_elementwise");
  gpu_->set_identity(std::vector<double>{0.1}, gb);
  cpu_->set_identity(std::vector<double>{0.1}, cb);
  expect_identical(gb, cb, "set_identity");
}

// Products: each backend is within the f32 accumulation bound of the exact product of the operands
// (rounded to tf32 for compute tf32, where cuBLAS may truncate instead of rounding: 2 u_tf32 per
// operand), so they differ by at most twice that bound.
TEST_P(EmulationParity, ProductsAgreeWithinTheAccumulationBound) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + GetParam().name);
  if (GetParam().storage == DType::f64) GTEST_SKIP() << "f64 is not emulated";
  const std::int64_t m = 33, k = 257, n = 40;
  HostBatch ha = random_batch(rng_, m, k), hb = random_batch(rng_, k, n);
  auto [ga, ca] = both(ha);
  auto [gb, cb] = both(hb);
  Mat gc = gpu_->allocate(m, n, 1), cc = cpu_->allocate(m, n, 1);
  gpu_->gemm(Op::N, Op::N, 1.0, ga, gb, 0.0, gc);
  cpu_->gemm(Op::N, Op::N, 1.0, ca, cb, 0.0, cc);
  const HostBatch g = download(*gpu_, gc), c = download(*cpu_, cc);
  const double u_in = 2 * input_roundoff(GetParam());
  const double u_out = GetParam().storage == DType::f32 ? 0.0 : unit_roundoff(GetParam().storage);
  const double gamma = (k + 1) * std::ldexp(1.0, -24) / (1 - (k + 1) * std::ldexp(1.0, -24));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < m; ++i) {
      double magnitude = 0, exact = 0;
      for (std::int64_t l = 0; l < k; ++l) {
        magnitude += std::abs(ha(i, l) * hb(l, j));
        exact += ha(i, l) * hb(l, j);
      }
      const double bound = (gamma + 2 * u_in) * magnitude * (1 + u_out) + u_out * std::abs(exact);
      ASSERT_LE(std::abs(g(i, j) - c(i, j)), 2 * bound) << "(" << i << ", " << j << ")";
    }
}

INSTANTIATE_TEST_SUITE_P(Configs, EmulationParity, ::testing::ValuesIn(kConfigs),
                         [](const auto& info) { return std::string(info.param.name); });

// The correction's operations and the correction on the CUDA f64 backend.
TEST(CudaNewtonCorrection, EigenDivisionAndOneStepMatchTheCpu) {
  PE_REQUIRE_CUDA_DEVICE();
  auto gpu = detail::make_cuda_backend(DType::f64, ComputeMode::native, nullptr);
  auto cpu = detail::make_cpu_backend(DType::f64, ComputeMode::native);
  const std::int64_t n = 96;
  const int p = 2;
  const std::vector<double> a = reference::random_spd(reference::make_spectrum(n, 1e4, reference::Spectrum::spread), 5);
  HostBatch ha(n, n);
  ha.v = a;
  Mat ga = upload_stored(*gpu, ha);
  Mat q = gpu->allocate(n, n, 1), lambda = gpu->allocate(n, 1, 1);
  ASSERT_TRUE(gpu->symmetric_eigen(ga, q, lambda));
  const HostBatch hq = download(*gpu, q), hl = download(*gpu, lambda);
  const std::vector<double> ref = reference::eigenvalues(a, n);
  for (std::int64_t i = 0; i < n; ++i) EXPECT_NEAR(hl.v[static_cast<std::size_t>(i)], ref[static_cast<std::size_t>(i)], 1e-13);
  // Q diag(lambda) Q^T = A to double rounding (n u ||A||).
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::int64_t l = 0; l < n; ++l) s += hq(i, l) * hl.v[static_cast<std::size_t>(l)] * hq(j, l);
      ASSERT_NEAR(s, a[static_cast<std::size_t>(i + j * n)], 1e-12);
    }
  // One correction from a perturbed root, on both backends: the same eps to a few units of double rounding.
  std::vector<double> x0 = reference::inverse_root(a, n, p);
  for (std::size_t i = 0; i < x0.size(); ++i) x0[i] *= 1 + 1e-3 * std::sin(static_cast<double>(i));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) x0[static_cast<std::size_t>(j + i * n)] = x0[static_cast<std::size_t>(i + j * n)];
  double eps[2];
  int slot = 0;
  for (detail::Backend* be : {gpu.get(), cpu.get()}) {
    detail::NewtonCorrection c(*be, n, 1, p);
    HostBatch hx(n, n), hab(n, n);
    hx.v = x0;
    hab.v = a;
    Mat am = upload_stored(*be, hab), xm = upload_stored(*be, hx);
    ASSERT_TRUE(c.prepare(am)) << c.failure();
    c.correct(xm);
    eps[slot++] = reference::root_eps(a, download(*be, xm).v, n, p);
  }
  const double eps0 = reference::root_eps(a, x0, n, p);
  EXPECT_LE(eps[0], 2 * eps0 * eps0 + 1e-10) << "cuda";
  EXPECT_NEAR(eps[0], eps[1], 1e-3 * eps[1] + 1e-11);
}

}  // namespace
}  // namespace pe::test
