// Every CUDA backend operation against a host reference in double, for each storage / compute mode.
// References are computed from the values as stored on the device (inputs already rounded), so the
// tolerances only cover the operation's own arithmetic and the rounding of its output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cuda_test_support.hpp"

namespace pe::test {
namespace {

using detail::Mat;
using detail::Op;

class CudaOps : public ::testing::TestWithParam<Config> {
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

#define PE_TRACE_SEED() SCOPED_TRACE("seed " + std::to_string(seed_) + ", config " + GetParam().name)

// Elementwise results are computed in double and rounded once to the storage: |out - ref| <= u |ref|,
// plus the double arithmetic before that rounding (at most 4 operations, each 2^-53 relative to the
// magnitude of its terms; `magnitude` holds sum |terms| per element, or |ref| when null). That second
// part only matters for f64 storage, where the device's fused multiply-adds differ from the host's.
void expect_one_rounding(const HostBatch& out, const HostBatch& ref, double u, const HostBatch* magnitude = nullptr) {
  ASSERT_EQ(out.v.size(), ref.v.size());
  const double u64 = std::ldexp(1.0, -53);
  for (std::size_t i = 0; i < out.v.size(); ++i) {
    const double mag = magnitude ? magnitude->v[i] : std::abs(ref.v[i]);
    ASSERT_LE(std::abs(out.v[i] - ref.v[i]), u * std::abs(ref.v[i]) + 4 * u64 * mag + 1e-300)
        << "element " << i << ": " << out.v[i] << " vs " << ref.v[i];
  }
}

TEST_P(CudaOps, UploadDownloadConvertLayoutsAndLeaveGapsAlone) {
  PE_TRACE_SEED();
  const std::int64_t rows = 37, cols = 29, batch = 3;
  // Source: row-major f64 with padded rows and padded members.
  const std::int64_t src_ld = cols + 3, src_stride = rows * src_ld + 5;
  std::vector<double> src(static_cast<std::size_t>(src_stride * batch));
  HostBatch expected = random_batch(rng_, rows, cols, batch);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) src[static_cast<std::size_t>(k * src_stride + i * src_ld + j)] = expected(i, j, k);
  Mat m = backend_->allocate(rows, cols, batch);
  backend_->upload({src.data(), DType::f64, rows, cols, src_ld, batch, src_stride, Layout::row_major}, m);
  // Destination: col-major f32 with padding that must keep its sentinel.
  const std::int64_t dst_ld = rows + 2, dst_stride = dst_ld * cols + 7;
  const float sentinel = 12345.0f;
  std::vector<float> dst(static_cast<std::size_t>(dst_stride * batch), sentinel);
  backend_->download(m, {dst.data(), DType::f32, rows, cols, dst_ld, batch, dst_stride, Layout::col_major});
  const double tol = u() + unit_roundoff(DType::f32);  // storage rounding, then f32 rounding
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t j = 0; j < cols; ++j)
      for (std::int64_t i = 0; i < dst_ld; ++i) {
        const float got = dst[static_cast<std::size_t>(k * dst_stride + j * dst_ld + i)];
        if (i >= rows) {
          ASSERT_EQ(got, sentinel) << "padding overwritten at " << i << "," << j << "," << k;
        } else {
          ASSERT_NEAR(got, expected(i, j, k), 1.01 * tol * std::abs(expected(i, j, k)));
        }
      }
}

TEST_P(CudaOps, GemmAllTransposesMatchTheReference) {
  PE_TRACE_SEED();
  const std::int64_t m = 67, n = 45, k = 53;
  const double alpha = 0.75, beta = -0.5;  // exact in every scale type
  for (Op op_a : {Op::N, Op::T})
    for (Op op_b : {Op::N, Op::T}) {
      HostBatch a = op_a == Op::N ? random_batch(rng_, m, k) : random_batch(rng_, k, m);
      HostBatch b = op_b == Op::N ? random_batch(rng_, k, n) : random_batch(rng_, n, k);
      HostBatch c = random_batch(rng_, m, n);
      Mat da = upload_stored(*backend_, a), db = upload_stored(*backend_, b), dc = upload_stored(*backend_, c);
      backend_->gemm(op_a, op_b, alpha, da, db, beta, dc);
      const HostBatch out = download(*backend_, dc);
      // |err| <= u_out |ref| + (2 u_in + k u_acc) (|alpha| sum |a||b| + |beta||c|), doubled for slack.
      const double per_term = 2 * input_roundoff(GetParam()) + static_cast<double>(k) * accumulation_roundoff(GetParam());
      for (std::int64_t i = 0; i < m; ++i)
        for (std::int64_t j = 0; j < n; ++j) {
          double ref = beta * c(i, j), magnitude = std::abs(beta * c(i, j));
          for (std::int64_t l = 0; l < k; ++l) {
            const double x = op_a == Op::N ? a(i, l) : a(l, i), y = op_b == Op::N ? b(l, j) : b(j, l);
            ref += alpha * x * y;
            magnitude += std::abs(alpha * x * y);
          }
          ASSERT_LE(std::abs(out(i, j) - ref), 2 * (u() * std::abs(ref) + per_term * magnitude))
              << "op_a " << int(op_a) << " op_b " << int(op_b) << " at " << i << "," << j;
        }
    }
}

TEST_P(CudaOps, BatchedGemmEqualsUnbatchedAndBroadcastsASharedOperand) {
  PE_TRACE_SEED();
  const std::int64_t n = 48, batch = 4;
  HostBatch a = random_batch(rng_, n, n, batch), b = random_batch(rng_, n, n, batch), shared = random_batch(rng_, n, n);
  Mat da = upload_stored(*backend_, a), db = upload_stored(*backend_, b), ds = upload_stored(*backend_, shared);
  Mat batched = backend_->allocate(n, n, batch), broadcast = backend_->allocate(n, n, batch);
  poison(*backend_, batched);
  poison(*backend_, broadcast);
  backend_->gemm(Op::N, Op::T, 1.0, da, db, 0.0, batched);
  backend_->gemm(Op::N, Op::N, 1.0, ds, db, 0.0, broadcast);
  const HostBatch out = download(*backend_, batched), out_broadcast = download(*backend_, broadcast);
  const std::size_t es = GetParam().storage == DType::f64 ? 8 : GetParam().storage == DType::f32 ? 4 : 2;
  const double tol = 2 * (u() + 2 * input_roundoff(GetParam()) + n * accumulation_roundoff(GetParam()));
  for (std::int64_t k = 0; k < batch; ++k) {
    const auto member = [&](const Mat& whole) {
      Mat one = whole;
      one.data = static_cast<char*>(whole.data) + k * whole.stride * es;
      one.batch = 1;
      return one;
    };
    Mat single = backend_->allocate(n, n, 1), single_shared = backend_->allocate(n, n, 1);
    backend_->gemm(Op::N, Op::T, 1.0, member(da), member(db), 0.0, single);
    backend_->gemm(Op::N, Op::N, 1.0, ds, member(db), 0.0, single_shared);
    const HostBatch one = download(*backend_, single), one_shared = download(*backend_, single_shared);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        // Both sides approximate the same product; each is within tol * n of it (entries are <= 1).
        ASSERT_NEAR(out(i, j, k), one(i, j), tol * n) << "member " << k;
        ASSERT_NEAR(out_broadcast(i, j, k), one_shared(i, j), tol * n) << "member " << k;
      }
  }
}

TEST_P(CudaOps, MatmulPlansAreCachedPerShape) {
  auto& cuda = dynamic_cast<detail::gpu::CudaBackend&>(*backend_);
  Mat a = backend_->allocate(40, 40, 1), b = backend_->allocate(40, 40, 1), c = backend_->allocate(40, 40, 1);
  Mat tall = backend_->allocate(40, 7, 1), out = backend_->allocate(40, 7, 1);
  const std::size_t before = cuda.cached_matmul_plans();
  backend_->gemm(Op::N, Op::N, 1.0, a, b, 0.0, c);
  backend_->gemm(Op::N, Op::N, 0.5, b, a, 1.0, c);  // same shape, layouts and types: the same plan
  EXPECT_EQ(cuda.cached_matmul_plans(), before + 1);
  backend_->gemm(Op::T, Op::N, 1.0, a, b, 0.0, c);  // another transpose: another plan
  backend_->gemm(Op::N, Op::N, 1.0, a, tall, 0.0, out);  // another shape: another plan
  EXPECT_EQ(cuda.cached_matmul_plans(), before + 3);
}

TEST_P(CudaOps, AxpbyIdentityUsesPerMemberCoefficientsAndMayAlias) {
  PE_TRACE_SEED();
  const std::int64_t n = 70, batch = 3;
  HostBatch a = random_batch(rng_, n, n, batch), b = random_batch(rng_, n, n, batch);
  Mat da = upload_stored(*backend_, a), db = upload_stored(*backend_, b);
  const std::vector<double> alpha{0.5, -1.25, 2.0}, beta{1.5, 0.25, -0.75}, gamma{-3.0, 0.125, 1.0};
  backend_->axpby_identity(alpha, &da, beta, &db, gamma, da);  // c aliases a
  HostBatch ref(n, n, batch), magnitude(n, n, batch);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) {
        ref(i, j, k) = alpha[k] * a(i, j, k) + beta[k] * b(i, j, k) + (i == j ? gamma[k] : 0.0);
        magnitude(i, j, k) = std::abs(alpha[k] * a(i, j, k)) + std::abs(beta[k] * b(i, j, k)) + std::abs(gamma[k]);
      }
  expect_one_rounding(download(*backend_, da), ref, u(), &magnitude);

  // Only the identity term, broadcast coefficient: set_identity's path.
  Mat dc = backend_->allocate(n, n, batch);
  poison(*backend_, dc);
  const double s = 0.375;
  backend_->set_identity({&s, 1}, dc);
  const HostBatch id = download(*backend_, dc);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(id(i, j, k), i == j ? s : 0.0);
}

TEST_P(CudaOps, ScaleAddDiagonalDiagScaleExtractDiagonal) {
  PE_TRACE_SEED();
  const std::int64_t n = 41, batch = 2;
  HostBatch a = random_batch(rng_, n, n, batch), left = random_batch(rng_, n, 1, batch),
            right = random_batch(rng_, n, 1, batch);
  Mat da = upload_stored(*backend_, a), dl = upload_stored(*backend_, left), dr = upload_stored(*backend_, right);
  const std::vector<double> s{1.5, -0.625}, shift{0.75, -2.5};

  backend_->scale(s, da);
  HostBatch ref = a;
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) ref(i, j, k) = s[k] * a(i, j, k);
  expect_one_rounding(download(*backend_, da), ref, u());

  HostBatch scaled = download(*backend_, da);
  backend_->add_diagonal(shift, da);
  ref = scaled;
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t i = 0; i < n; ++i) ref(i, i, k) += shift[k];
  expect_one_rounding(download(*backend_, da), ref, u());

  HostBatch shifted = download(*backend_, da);
  backend_->diag_scale(&dl, da, &dr);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) ref(i, j, k) = left(i, 0, k) * shifted(i, j, k) * right(j, 0, k);
  expect_one_rounding(download(*backend_, da), ref, u());

  HostBatch final_values = download(*backend_, da);
  Mat diag = backend_->allocate(n, 1, batch);
  poison(*backend_, diag);
  backend_->extract_diagonal(da, diag);
  const HostBatch d = download(*backend_, diag);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(d(i, 0, k), final_values(i, i, k));
}

TEST_P(CudaOps, SymmetrizeIsExactlySymmetricOnPartialTiles) {
  PE_TRACE_SEED();
  for (std::int64_t n : {1, 31, 70, 129}) {
    HostBatch a = random_batch(rng_, n, n, 2);
    Mat da = upload_stored(*backend_, a);
    backend_->symmetrize(da);
    const HostBatch out = download(*backend_, da);
    HostBatch ref(n, n, 2);
    for (std::int64_t k = 0; k < 2; ++k)
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < n; ++i) {
          ref(i, j, k) = 0.5 * (a(i, j, k) + a(j, i, k));
          ASSERT_EQ(out(i, j, k), out(j, i, k)) << "n " << n << " at " << i << "," << j;
        }
    expect_one_rounding(out, ref, u());
  }
}

TEST_P(CudaOps, ReductionsMatchTheReferenceAndFetchOnce) {
  PE_TRACE_SEED();
  const std::int64_t n = 300, batch = 3;  // n > 256: several column chunks per row
  HostBatch a = random_batch(rng_, n, n, batch);
  for (std::int64_t k = 0; k < batch; ++k)
    for (std::int64_t i = 0; i < n; ++i) a(i, i, k) = 1.0 + 0.5 * a(i, i, k);
  Mat da = upload_stored(*backend_, a);
  backend_->trace(da, 0);
  backend_->max_abs_row_sum(da, 1);
  backend_->gershgorin(da, 2, 3);
  backend_->frobenius_norm(da, 4);
  backend_->count_nonfinite(da, 5);
  backend_->max_abs_row_sum_minus_identity(da, 7);  // slot 6 left unwritten
  const auto slots = backend_->fetch_scalars();
  ASSERT_EQ(slots.size(), 8u);
  EXPECT_TRUE(slots[6].empty());
  for (int s : {0, 1, 2, 3, 4, 5, 7}) ASSERT_EQ(slots[static_cast<std::size_t>(s)].size(), std::size_t(batch));
  // Sums of n^2 terms in double: relative error far below 1e-12.
  const double tol = 1e-12;
  for (std::int64_t k = 0; k < batch; ++k) {
    double tr = 0, inf = 0, inf_minus_i = 0, lo = 1e300, hi = -1e300, fro = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      double row = 0, row_i = 0, off = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        row += std::abs(a(i, j, k));
        row_i += std::abs(a(i, j, k) - (i == j ? 1.0 : 0.0));
        if (i != j) off += std::abs(a(i, j, k));
        fro += a(i, j, k) * a(i, j, k);
      }
      tr += a(i, i, k);
      inf = std::max(inf, row);
      inf_minus_i = std::max(inf_minus_i, row_i);
      lo = std::min(lo, a(i, i, k) - off);
      hi = std::max(hi, a(i, i, k) + off);
    }
    EXPECT_NEAR(slots[0][k], tr, tol * n);
    EXPECT_NEAR(slots[1][k], inf, tol * inf);
    EXPECT_NEAR(slots[2][k], lo, tol * inf);
    EXPECT_NEAR(slots[3][k], hi, tol * inf);
    EXPECT_NEAR(slots[4][k], std::sqrt(fro), tol * std::sqrt(fro));
    EXPECT_EQ(slots[5][k], 0.0);
    EXPECT_NEAR(slots[7][k], inf_minus_i, tol * inf);
  }
  EXPECT_TRUE(backend_->fetch_scalars().empty());  // slots are consumed by a fetch
}

TEST_P(CudaOps, NonFiniteEntriesAreCountedAndPropagate) {
  PE_TRACE_SEED();
  const std::int64_t n = 64, batch = 3;
  HostBatch a = random_batch(rng_, n, n, batch);
  const double bad[] = {std::nan(""), std::numeric_limits<double>::infinity()};
  std::uniform_int_distribution<std::int64_t> index(0, n - 1);
  std::vector<std::int64_t> planted(batch);
  for (std::int64_t k = 1; k < batch; ++k) {  // member 0 stays finite
    planted[k] = k;
    for (std::int64_t t = 0; t < k; ++t) {
      std::int64_t i, j;
      do {
        i = index(rng_);
        j = index(rng_);
      } while (std::isnan(a(i, j, k)) || std::isinf(a(i, j, k)));
      a(i, j, k) = bad[t % 2];
    }
  }
  Mat da = upload_stored(*backend_, a);
  backend_->count_nonfinite(da, 0);
  backend_->max_abs_row_sum(da, 1);
  backend_->frobenius_norm(da, 2);
  const auto slots = backend_->fetch_scalars();
  for (std::int64_t k = 0; k < batch; ++k) EXPECT_EQ(slots[0][k], static_cast<double>(planted[k])) << k;
  EXPECT_TRUE(std::isfinite(slots[1][0]));
  EXPECT_FALSE(std::isfinite(slots[1][1]));  // a NaN entry never gives a finite norm
  EXPECT_FALSE(std::isfinite(slots[2][2]));
}

TEST_P(CudaOps, ResidualIsMoreAccurateThanTheStorage) {
  PE_TRACE_SEED();
  const std::int64_t n = 96, m = 24;
  HostBatch a = random_batch(rng_, n, n), x = random_batch(rng_, n, m), b = random_batch(rng_, n, m);
  Mat da = upload_stored(*backend_, a), dx = upload_stored(*backend_, x), db = upload_stored(*backend_, b);
  Mat dr = backend_->allocate(n, m, 1);
  poison(*backend_, dr);
  backend_->residual(da, dx, db, dr);
  const HostBatch r = download(*backend_, dr);
  // fp32 storage: formed in fp64 (u_acc 2^-53) even under tf32; bf16/fp16: fp32 accumulation;
  // fp64: fp64. The single output rounding is u |ref|. A product in the storage's own GEMM mode
  // (tf32: 2^-11 per input) would exceed this bound.
  const double u_acc = GetParam().storage == DType::f32 ? std::ldexp(1.0, -53) : accumulation_roundoff(GetParam());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      double ref = b(i, j), magnitude = std::abs(b(i, j));
      for (std::int64_t l = 0; l < n; ++l) {
        ref -= a(i, l) * x(l, j);
        magnitude += std::abs(a(i, l) * x(l, j));
      }
      ASSERT_LE(std::abs(r(i, j) - ref), 1.01 * u() * std::abs(ref) + 2.0 * (n + 1) * u_acc * magnitude)
          << i << "," << j;
    }
}

TEST_P(CudaOps, DevicePointerViewsAreConvertedOnTheDevice) {
  PE_TRACE_SEED();
  const std::int64_t rows = 33, cols = 20;
  HostBatch h = random_batch(rng_, rows, cols);
  // The caller's device buffer, row-major f64 (as the public API passes with device = cuda).
  void* src = nullptr;
  ASSERT_EQ(cudaMalloc(&src, sizeof(double) * rows * cols), cudaSuccess);
  std::vector<double> row_major(static_cast<std::size_t>(rows * cols));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) row_major[static_cast<std::size_t>(i * cols + j)] = h(i, j);
  ASSERT_EQ(cudaMemcpy(src, row_major.data(), sizeof(double) * rows * cols, cudaMemcpyHostToDevice), cudaSuccess);
  Mat m = backend_->allocate(rows, cols, 1);
  backend_->upload({src, DType::f64, rows, cols, cols, 1, 0, Layout::row_major}, m);
  void* dst = nullptr;
  ASSERT_EQ(cudaMalloc(&dst, sizeof(float) * rows * cols), cudaSuccess);
  backend_->download(m, {dst, DType::f32, rows, cols, rows, 1, 0, Layout::col_major});
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(static_cast<std::size_t>(rows * cols));
  ASSERT_EQ(cudaMemcpy(out.data(), dst, sizeof(float) * rows * cols, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(src);
  cudaFree(dst);
  const double tol = u() + unit_roundoff(DType::f32);
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = 0; i < rows; ++i)
      ASSERT_NEAR(out[static_cast<std::size_t>(i + j * rows)], h(i, j), 1.01 * tol * std::abs(h(i, j)));
}

TEST_P(CudaOps, BadShapesThrowBeforeAnyWork) {
  Mat a = backend_->allocate(8, 6, 1), b = backend_->allocate(5, 4, 1), c = backend_->allocate(8, 4, 1);
  EXPECT_THROW(backend_->gemm(Op::N, Op::N, 1, a, b, 0, c), pe::Error);
  EXPECT_THROW(backend_->trace(a, 0), pe::Error);
  EXPECT_THROW(backend_->trace(c, -1), pe::Error);
  const double two[2] = {1, 2};
  EXPECT_THROW(backend_->scale(two, a), pe::Error);
  EXPECT_TRUE(backend_->fetch_scalars().empty());
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, CudaOps, ::testing::ValuesIn(kConfigs),
                         [](const ::testing::TestParamInfo<Config>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pe::test
