// The verification operations and the certificate on the CUDA backend: the same contracts as on the CPU
// (tests/verify/verify_ops_checks.hpp), and certificates that agree with the CPU's. Skipped without a GPU.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "cuda_test_support.hpp"
#include "verify/root_verifier.hpp"
#include "verify_ops_checks.hpp"
#include "verify_test_support.hpp"

namespace {

std::unique_ptr<pe::detail::Backend> cuda_wide() {
  return pe::detail::make_cuda_backend(pe::DType::f64, pe::ComputeMode::native, nullptr);
}

struct OpCheck {
  const char* name;
  void (*check)(pe::detail::Backend&);
};
void PrintTo(const OpCheck& c, std::ostream* os) { *os << c.name; }

class CudaVerifyOps : public ::testing::TestWithParam<OpCheck> {};

TEST_P(CudaVerifyOps, HoldsItsContract) {
  PE_REQUIRE_CUDA_DEVICE();
  GetParam().check(*cuda_wide());
}

INSTANTIATE_TEST_SUITE_P(Contracts, CudaVerifyOps,
                         ::testing::Values(OpCheck{"abs_gemv", pe_verify_checks::check_abs_gemv},
                                           OpCheck{"cholesky", pe_verify_checks::check_cholesky},
                                           OpCheck{"split_slices", pe_verify_checks::check_split_slices},
                                           OpCheck{"two_sum_accumulate", pe_verify_checks::check_two_sum},
                                           OpCheck{"max_asymmetry", pe_verify_checks::check_max_asymmetry},
                                           OpCheck{"cholesky_solve", pe_verify_checks::check_cholesky_solve}),
                         [](const ::testing::TestParamInfo<OpCheck>& info) { return std::string(info.param.name); });

TEST(CudaVerify, NarrowStorageRefusesTheOps) {
  PE_REQUIRE_CUDA_DEVICE();
  auto be = pe::detail::make_cuda_backend(pe::DType::f32, pe::ComputeMode::native, nullptr);
  pe::detail::Mat m = be->allocate(4, 4, 1), v = be->allocate(4, 1, 1), w = be->allocate(4, 1, 1);
  EXPECT_THROW(be->abs_gemv(pe::detail::Op::N, m, v, 0.0, w), pe::Error);
  EXPECT_THROW(be->cholesky(m, 0), pe::Error);
  EXPECT_THROW(be->cholesky_solve(m, v), pe::Error);
}

// The input checks run max_asymmetry on A as stored, so it works on every storage.
TEST(CudaVerify, MaxAsymmetryOnNarrowStorage) {
  PE_REQUIRE_CUDA_DEVICE();
  pe_verify_checks::check_max_asymmetry_narrow(*pe::detail::make_cuda_backend(pe::DType::f32, pe::ComputeMode::native, nullptr));
}

// One certificate per member on the GPU and on the CPU for the same inputs: both proven, bounds equal up
// to the different summation orders of the two BLAS (a relative 1e-6 is far above that and far below
// any difference that would matter).
TEST(CudaVerify, CertificatesAgreeWithTheCpu) {
  PE_REQUIRE_CUDA_DEVICE();
  using namespace pe_verify_test;
  const std::int64_t n = 96, batch = 2;
  for (int p : {1, 2, 3})
    for (auto arithmetic : {pe::detail::VerifyArithmetic::binary64, pe::detail::VerifyArithmetic::extended}) {
      std::vector<double> a, x;
      for (std::int64_t k = 0; k < batch; ++k) {
        const Matrix ak = pe::reference::random_spd(spectrum(n, 1e4, k == 0 ? Shape::spread : Shape::two_clusters),
                                                    31 + static_cast<std::uint64_t>(k));
        const Matrix xk = perturbed_root(ak, n, p, 1e-4, 0, pe::DType::f32, 3);
        a.insert(a.end(), ak.begin(), ak.end());
        x.insert(x.end(), xk.begin(), xk.end());
      }
      std::vector<std::vector<pe::detail::RootCertificate>> results;
      std::vector<std::unique_ptr<pe::detail::Backend>> backends;
      backends.push_back(pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native));
      backends.push_back(cuda_wide());
      for (const auto& be : backends) {
        pe::detail::Mat am = be->allocate(n, n, batch), xm = be->allocate(n, n, batch);
        be->upload({a.data(), pe::DType::f64, n, n, n, batch, n * n}, am);
        be->upload({x.data(), pe::DType::f64, n, n, n, batch, n * n}, xm);
        pe::detail::RootVerifier verifier(*be, n, batch, p, arithmetic);
        results.push_back(verifier.certify(am, xm));
      }
      for (std::int64_t k = 0; k < batch; ++k) {
        const auto& cpu = results[0][static_cast<std::size_t>(k)];
        const auto& gpu = results[1][static_cast<std::size_t>(k)];
        ASSERT_TRUE(cpu.proven) << cpu.failure;
        ASSERT_TRUE(gpu.proven) << gpu.failure;
        EXPECT_NEAR(gpu.eps_bound, cpu.eps_bound, 1e-6 * cpu.eps_bound) << "p = " << p << ", member " << k;
      }
    }
}

}  // namespace
