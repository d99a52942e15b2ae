// The exact fallbacks of the CUDA backend (cuSOLVER syevd root, getrf/getrs solve, in double whatever the
// storage) against LAPACK references in double on the values as stored on the device.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda_test_support.hpp"
#include "reference.hpp"

namespace pe::test {
namespace {

using detail::Mat;

class CudaExact : public ::testing::TestWithParam<Config> {
 protected:
  void SetUp() override {
    PE_REQUIRE_CUDA_DEVICE();
    seed_ = fresh_seed();
    rng_.seed(seed_);
    backend_ = detail::make_cuda_backend(GetParam().storage, GetParam().compute, nullptr);
  }
  double u() const { return unit_roundoff(GetParam().storage); }
  std::uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::unique_ptr<detail::Backend> backend_;
};

double frobenius(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// Batch of `batch` random SPD matrices with condition number kappa (log-spread spectrum).
HostBatch random_spd_batch(std::mt19937_64& rng, std::int64_t n, std::int64_t batch, double kappa) {
  HostBatch h(n, n, batch);
  for (std::int64_t k = 0; k < batch; ++k) {
    const std::vector<double> a =
        reference::random_spd(reference::make_spectrum(n, kappa, reference::Spectrum::spread), rng());
    std::copy(a.begin(), a.end(), h.v.begin() + k * n * n);
  }
  return h;
}

TEST_P(CudaExact, InverseRootMatchesLapackOnTheStoredMatrix) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + GetParam().name);
  const std::int64_t n = 57, batch = 2;
  HostBatch a = random_spd_batch(rng_, n, batch, 100.0);
  Mat da = upload_stored(*backend_, a);  // a now holds the stored (rounded) values, still symmetric
  for (int p : {1, 2, 4}) {
    Mat dx = backend_->allocate(n, n, batch);
    poison(*backend_, dx);
    ASSERT_TRUE(backend_->exact_inverse_root(da, p, dx)) << "p " << p;
    const HostBatch x = download(*backend_, dx);
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::vector<double> member(a.v.begin() + k * n * n, a.v.begin() + (k + 1) * n * n);
      const std::vector<double> ref = reference::inverse_root(member, n, p);
      const std::vector<double> got(x.v.begin() + k * n * n, x.v.begin() + (k + 1) * n * n);
      // Both eigendecompositions run in double (cond(A) = 100 keeps their difference near 1e-13); the
      // result is then rounded once to the storage: relative Frobenius error <= u.
      EXPECT_LE(reference::relative_error(got, ref), 1.01 * u() + 1e-11) << "p " << p << " member " << k;
    }
  }
}

TEST_P(CudaExact, InverseRootRefusesAnIndefiniteMatrixAndLeavesXAlone) {
  const std::int64_t n = 24;
  HostBatch a(n, n, 1);
  for (std::int64_t i = 0; i < n; ++i) a(i, i) = i == 5 ? -1.0 : 1.0 + 0.01 * static_cast<double>(i);
  Mat da = upload_stored(*backend_, a);
  Mat dx = backend_->allocate(n, n, 1);
  poison(*backend_, dx);
  EXPECT_FALSE(backend_->exact_inverse_root(da, 2, dx));
  const HostBatch x = download(*backend_, dx);
  for (double v : x.v) ASSERT_TRUE(std::isnan(v)) << "X was written although the root was refused";
}

TEST_P(CudaExact, SolveHasASmallResidualForSharedAndPerMemberMatrices) {
  SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + GetParam().name);
  const std::int64_t n = 45, m = 6, batch = 3;
  for (std::int64_t a_batch : {std::int64_t{1}, batch}) {
    // Diagonally dominant, nonsymmetric: well conditioned, pivoting still exercised by the random signs.
    HostBatch a = random_batch(rng_, n, n, a_batch);
    for (std::int64_t k = 0; k < a_batch; ++k)
      for (std::int64_t i = 0; i < n; ++i) a(i, i, k) = (i % 2 ? -1.0 : 1.0) * static_cast<double>(n);
    HostBatch b = random_batch(rng_, n, m, batch);
    Mat da = upload_stored(*backend_, a), db = upload_stored(*backend_, b);
    Mat dx = backend_->allocate(n, m, batch);
    poison(*backend_, dx);
    ASSERT_TRUE(backend_->exact_solve(da, db, dx));
    const HostBatch x = download(*backend_, dx);
    for (std::int64_t k = 0; k < batch; ++k) {
      const std::int64_t ka = a_batch == 1 ? 0 : k;
      std::vector<double> residual(static_cast<std::size_t>(n * m));
      double a_norm = 0, x_norm = 0;
      for (std::int64_t j = 0; j < m; ++j)
        for (std::int64_t i = 0; i < n; ++i) {
          double r = b(i, j, k);
          for (std::int64_t l = 0; l < n; ++l) r -= a(i, l, ka) * x(l, j, k);
          residual[static_cast<std::size_t>(i + j * n)] = r;
          x_norm += x(i, j, k) * x(i, j, k);
        }
      for (std::int64_t i = 0; i < n * n; ++i) a_norm += a.v[static_cast<std::size_t>(ka * n * n + i)] * a.v[static_cast<std::size_t>(ka * n * n + i)];
      // The solve is exact to ~1e-15; rounding X to the storage moves A X by <= ||A||_F ||X||_F u.
      EXPECT_LE(frobenius(residual), 1.01 * u() * std::sqrt(a_norm) * std::sqrt(x_norm) + 1e-10)
          << "member " << k << ", a batch " << a_batch;
    }
  }
}

TEST_P(CudaExact, SolveRefusesASingularMatrix) {
  const std::int64_t n = 16;
  HostBatch a = random_batch(rng_, n, n);
  for (std::int64_t i = 0; i < n; ++i) a(i, 7) = a(i, 3);  // two equal columns
  HostBatch b = random_batch(rng_, n, 2);
  Mat da = upload_stored(*backend_, a), db = upload_stored(*backend_, b);
  Mat dx = backend_->allocate(n, 2, 1);
  poison(*backend_, dx);
  EXPECT_FALSE(backend_->exact_solve(da, db, dx));
  const HostBatch x = download(*backend_, dx);
  for (double v : x.v) ASSERT_TRUE(std::isnan(v)) << "X was written although the solve was refused";
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, CudaExact, ::testing::ValuesIn(kConfigs),
                         [](const ::testing::TestParamInfo<Config>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pe::test
