// Host-only logic of the CUDA backend: runs (and must pass) on machines without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "cuda_test_support.hpp"
#include "lt_plan.hpp"
#include "shape_checks.hpp"

namespace pe::detail::gpu {
namespace {

TEST(CudaLtTypes, MapsEachStorageAndComputeMode) {
  EXPECT_EQ(lt_types(DType::f64, ComputeMode::native), (LtTypes{CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F}));
  EXPECT_EQ(lt_types(DType::f32, ComputeMode::native), (LtTypes{CUDA_R_32F, CUBLAS_COMPUTE_32F, CUDA_R_32F}));
  EXPECT_EQ(lt_types(DType::f32, ComputeMode::tf32),
            (LtTypes{CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F}));
  EXPECT_EQ(lt_types(DType::bf16, ComputeMode::native), (LtTypes{CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F}));
  EXPECT_EQ(lt_types(DType::f16, ComputeMode::native), (LtTypes{CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F}));
  EXPECT_EQ(element_size(DType::bf16), 2u);
  EXPECT_EQ(element_size(CUDA_R_64F), 8u);
}

TEST(CudaLtTypes, RejectsTf32OnOtherStorage) {
  for (DType storage : {DType::f64, DType::bf16, DType::f16}) {
    try {
      (void)lt_types(storage, ComputeMode::tf32);
      FAIL() << "tf32 accepted on a non-fp32 storage";
    } catch (const pe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("tf32 needs fp32 storage"), std::string::npos) << e.what();
    }
  }
}

TEST(CudaGemmKey, EqualKeysHashEqualAndEveryFieldDistinguishes) {
  GemmKey base;
  base.m = 64;
  base.n = 32;
  base.k = 16;
  base.lda = base.ldb = base.ldc = base.ldd = 64;
  base.types = lt_types(DType::f32, ComputeMode::native);
  base.align_a = base.align_b = base.align_c = base.align_d = 256;
  GemmKey same = base;
  EXPECT_EQ(base, same);
  EXPECT_EQ(GemmKeyHash{}(base), GemmKeyHash{}(same));
  std::vector<GemmKey> variants(8, base);
  variants[0].op_a = Op::T;
  variants[1].op_b = Op::T;
  variants[2].k = 17;
  variants[3].batch = 4;
  variants[4].stride_a = 64 * 16;
  variants[5].types = lt_types(DType::f32, ComputeMode::tf32);
  variants[6].align_b = 16;
  variants[7].ldd = 65;
  std::unordered_set<GemmKey, GemmKeyHash> keys{base};
  for (const GemmKey& v : variants) {
    EXPECT_FALSE(v == base);
    keys.insert(v);
  }
  EXPECT_EQ(keys.size(), variants.size() + 1);
}

TEST(CudaGemmKey, MemberAlignmentIsTheLargestCommonPowerOfTwo) {
  alignas(256) static char buffer[1024];
  EXPECT_EQ(member_alignment(buffer, 0, 1), 256u);
  EXPECT_EQ(member_alignment(buffer + 8, 0, 1), 8u);
  EXPECT_EQ(member_alignment(buffer, 96, 3), 32u);   // member k at 96 k bytes
  EXPECT_EQ(member_alignment(buffer, 96, 1), 256u);  // a single member ignores the stride
}

Mat fake(std::int64_t rows, std::int64_t cols, std::int64_t batch, char* data) {
  return {data, rows, cols, rows, batch, rows * cols};
}

TEST(CudaShapeChecks, GemmMismatchNamesArgumentAndValues) {
  static char a_mem[64], b_mem[64], c_mem[64];  // each larger than any view below
  const Mat a = fake(4, 5, 1, a_mem), b = fake(6, 3, 1, b_mem), c = fake(4, 3, 1, c_mem);
  try {
    (void)check_gemm(Op::N, Op::N, a, b, c, 4);
    FAIL() << "mismatched inner dimension accepted";
  } catch (const pe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'b'"), std::string::npos) << what;
    EXPECT_NE(what.find("6 rows, expected 5"), std::string::npos) << what;
  }
  EXPECT_NO_THROW((void)check_gemm(Op::T, Op::N, fake(5, 4, 1, a_mem), fake(5, 3, 1, b_mem), c, 1));
}

TEST(CudaShapeChecks, RejectsBadViewsAndOverlaps) {
  static char mem[4096];
  Mat m = fake(4, 4, 1, mem);
  m.ld = 3;
  EXPECT_THROW(check_mat("gemm", "a", m), pe::Error);
  m = fake(4, 4, 2, mem);
  m.stride = 8;
  EXPECT_THROW(check_mat("gemm", "a", m), pe::Error);
  m = fake(4, 4, 1, nullptr);
  EXPECT_THROW(check_mat("gemm", "a", m), pe::Error);
  EXPECT_THROW(check_square("trace", "m", fake(4, 5, 1, mem)), pe::Error);
  const double two[2] = {1, 2};
  EXPECT_THROW(check_member_scalars("scale", "s", two, 3), pe::Error);
  EXPECT_NO_THROW(check_member_scalars("scale", "s", {two, 1}, 3));
  // c = a: the product would read what it overwrites.
  EXPECT_THROW((void)check_gemm(Op::N, Op::N, fake(4, 4, 1, mem), fake(4, 4, 1, mem + 512), fake(4, 4, 1, mem), 4),
               pe::Error);
  EXPECT_TRUE(spans_overlap(fake(4, 4, 1, mem), fake(2, 2, 1, mem + 60), 4));
  EXPECT_FALSE(spans_overlap(fake(4, 4, 1, mem), fake(2, 2, 1, mem + 64), 4));
}

TEST(CudaErrors, MacrosThrowWithStatusNameFileAndLine) {
  try {
    PE_CUDA_TRY(cudaErrorInvalidValue);
    FAIL();
  } catch (const pe::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cudaErrorInvalidValue"), std::string::npos) << what;
    EXPECT_NE(what.find("test_host_logic.cpp"), std::string::npos) << what;
  }
  try {
    PE_CUBLAS_TRY(CUBLAS_STATUS_NOT_SUPPORTED);
    FAIL();
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_NOT_SUPPORTED"), std::string::npos) << e.what();
  }
  try {
    PE_CUSOLVER_TRY(CUSOLVER_STATUS_INVALID_VALUE);
    FAIL();
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUSOLVER_STATUS_INVALID_VALUE"), std::string::npos) << e.what();
  }
  EXPECT_STREQ(cusolver_status_name(CUSOLVER_STATUS_ZERO_PIVOT), "CUSOLVER_STATUS_ZERO_PIVOT");
}

TEST(CudaBackendFactory, WithoutADeviceConstructionIsAClearError) {
  if (pe::test::have_cuda_device()) GTEST_SKIP() << "a CUDA device is present; this checks the no-device path";
  try {
    (void)make_cuda_backend(DType::f32, ComputeMode::native, nullptr);
    FAIL() << "constructed a CUDA backend without a device";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no usable CUDA device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pe::detail::gpu
