// The verification operations of the CPU backend (the CUDA backend runs the same checks in tests/cuda).
#include <gtest/gtest.h>

#include "backend_factory.hpp"
#include "verify/residual_chain.hpp"
#include "verify_ops_checks.hpp"

namespace {

std::unique_ptr<pe::detail::Backend> wide() {
  return pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
}

TEST(VerifyOps, AbsGemv) { pe_verify_checks::check_abs_gemv(*wide()); }
TEST(VerifyOps, CholeskyFlagsAndFactor) { pe_verify_checks::check_cholesky(*wide()); }
TEST(VerifyOps, SplitSlicesIsErrorFree) { pe_verify_checks::check_split_slices(*wide()); }
TEST(VerifyOps, TwoSumAccumulateIsErrorFree) { pe_verify_checks::check_two_sum(*wide()); }
TEST(VerifyOps, MaxAsymmetry) { pe_verify_checks::check_max_asymmetry(*wide()); }
TEST(VerifyOps, CholeskySolve) { pe_verify_checks::check_cholesky_solve(*wide()); }
TEST(VerifyOps, MaxAsymmetryOnNarrowStorage) {
  pe_verify_checks::check_max_asymmetry_narrow(*pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native));
}

TEST(VerifyOps, NarrowStorageRefusesThem) {
  auto be = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native);
  pe::detail::Mat m = be->allocate(4, 4, 1), v = be->allocate(4, 1, 1), w = be->allocate(4, 1, 1);
  EXPECT_THROW(be->abs_gemv(pe::detail::Op::N, m, v, 0.0, w), pe::Error);
  EXPECT_THROW(be->cholesky(m, 0), pe::Error);
  EXPECT_THROW(be->cholesky_solve(m, v), pe::Error);
  EXPECT_THROW(be->two_sum_accumulate(m, m, m), pe::Error);
}

// The largest b with n (2^b + 1)^2 <= 2^53.
TEST(VerifyOps, SliceBits) {
  using pe::detail::verify::ResidualChain;
  EXPECT_EQ(ResidualChain::slice_bits(1), 26);
  EXPECT_EQ(ResidualChain::slice_bits(160), 22);
  EXPECT_EQ(ResidualChain::slice_bits(2048), 20);
  for (std::int64_t n : {2, 3, 100, 1000, 4096, 100000}) {
    const int b = ResidualChain::slice_bits(n);
    const auto fits = [n](int bits) {
      const long double side = std::ldexp(1.0L, bits) + 1;
      return static_cast<long double>(n) * side * side <= std::ldexp(1.0L, 53);
    };
    EXPECT_TRUE(fits(b)) << n;
    EXPECT_FALSE(fits(b + 1)) << n;
  }
}

}  // namespace
