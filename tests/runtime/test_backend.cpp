// The CPU backend against closed forms and LAPACK (both storage dtypes).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend_factory.hpp"
#include "reference.hpp"

namespace {

using pe::detail::HostMat;
using pe::detail::Mat;
using pe::detail::Op;

std::vector<double> down(pe::detail::Backend& be, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  be.download(m, HostMat{out.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols});
  return out;
}
void up(pe::detail::Backend& be, std::vector<double> v, Mat& m) {
  be.upload(HostMat{v.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols}, m);
}

class Backend : public ::testing::TestWithParam<pe::DType> {};

TEST_P(Backend, GemmAxpbyAndReductionsMatchClosedForms) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  Mat a = be->allocate(2, 2, 2), b = be->allocate(2, 2, 2), c = be->allocate(2, 2, 2);
  up(*be, {1, 2, 3, 4, /*member 1*/ 2, 0, 0, 2}, a);  // column-major: [[1,3],[2,4]]
  up(*be, {1, 0, 0, 1, /*member 1*/ 1, 1, 1, 1}, b);
  be->gemm(Op::N, Op::N, 1.0, a, b, 0.0, c);
  EXPECT_EQ(down(*be, c), (std::vector<double>{1, 2, 3, 4, 2, 2, 2, 2}));
  be->gemm(Op::T, Op::N, 1.0, a, a, 0.0, c);  // member 0: A^T A = [[5,11],[11,25]]
  EXPECT_EQ(down(*be, c)[1], 11);
  // C = alpha A + beta B + gamma I with per-member scalars, C aliasing A.
  be->axpby_identity(std::vector<double>{1, 2}, &a, std::vector<double>{0, 1}, &b, std::vector<double>{10, 0}, a);
  EXPECT_EQ(down(*be, a), (std::vector<double>{11, 2, 3, 14, 5, 1, 1, 5}));
  be->trace(a, 0);
  be->gershgorin(a, 1, 2);
  be->max_abs_row_sum_minus_identity(a, 3);
  be->count_nonfinite(a, 4);
  auto s = be->fetch_scalars();
  EXPECT_EQ(s[0], (std::vector<double>{25, 10}));
  EXPECT_EQ(s[1], (std::vector<double>{8, 4}));    // min(11 - 3, 14 - 2), min(5 - 1, 5 - 1)
  EXPECT_EQ(s[2], (std::vector<double>{16, 6}));
  EXPECT_EQ(s[3], (std::vector<double>{15, 5}));   // rows |10|+|3|, |2|+|13| ; |4|+|1|
  EXPECT_EQ(s[4], (std::vector<double>{0, 0}));
  EXPECT_TRUE(be->fetch_scalars().empty());
}

// A product with one column goes through gemv: every combination of transposes, a batch, beta = 1,
// and an op(B) that is a row of B (stride ldb). Small integers keep every result exact.
TEST_P(Backend, GemmWithOneColumnMatchesClosedForm) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  const std::int64_t m = 5, k = 3;
  for (Op op_a : {Op::N, Op::T})
    for (Op op_b : {Op::N, Op::T}) {
      Mat a = op_a == Op::N ? be->allocate(m, k, 2) : be->allocate(k, m, 2);
      Mat b = op_b == Op::N ? be->allocate(k, 1, 2) : be->allocate(1, k, 2);
      Mat c = be->allocate(m, 1, 2);
      std::vector<double> av(static_cast<std::size_t>(2 * m * k)), bv(static_cast<std::size_t>(2 * k)), cv(2 * m, 1.0);
      for (std::size_t i = 0; i < av.size(); ++i) av[i] = static_cast<double>(i % 7) - 3;
      for (std::size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<double>(i) + 1;
      up(*be, av, a);
      up(*be, bv, b);
      up(*be, cv, c);
      be->gemm(op_a, op_b, 2.0, a, b, 1.0, c);
      const std::vector<double> got = down(*be, c);
      for (std::int64_t q = 0; q < 2; ++q)
        for (std::int64_t i = 0; i < m; ++i) {
          double want = 1;
          for (std::int64_t l = 0; l < k; ++l) {
            const double aij = op_a == Op::N ? av[static_cast<std::size_t>(q * m * k + i + l * m)]
                                             : av[static_cast<std::size_t>(q * m * k + l + i * k)];
            want += 2 * aij * bv[static_cast<std::size_t>(q * k + l)];  // B's column or row: k values either way
          }
          EXPECT_EQ(got[static_cast<std::size_t>(q * m + i)], want) << "member " << q << ", row " << i;
        }
    }
}

TEST_P(Backend, RowMajorUploadAndSymmetrize) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  Mat m = be->allocate(2, 3, 1);
  std::vector<double> row_major{1, 2, 3, 4, 5, 6};  // [[1,2,3],[4,5,6]]
  be->upload(HostMat{row_major.data(), pe::DType::f64, 2, 3, 3, 1, 0, pe::Layout::row_major}, m);
  EXPECT_EQ(down(*be, m), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  Mat s = be->allocate(2, 2, 1);
  up(*be, {1, 2, 4, 1}, s);
  be->symmetrize(s);
  EXPECT_EQ(down(*be, s), (std::vector<double>{1, 3, 3, 1}));

  // Sizes across the symmetrise kernel's 16 x 16 tiles (partial tiles, two batch members): every pair
  // becomes its mean. Integer entries keep that mean exact in both storage types.
  const std::int64_t n = 150;
  std::vector<double> host(static_cast<std::size_t>(2 * n * n));
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<double>((i * 7919) % 2001) - 1000;
  Mat big = be->allocate(n, n, 2);
  be->upload(HostMat{host.data(), pe::DType::f64, n, n, n, 2, n * n, pe::Layout::col_major}, big);
  be->symmetrize(big);
  std::vector<double> result(host.size());
  be->download(big, HostMat{result.data(), pe::DType::f64, n, n, n, 2, n * n, pe::Layout::col_major});
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i) {
        const auto at = [&](std::int64_t r, std::int64_t c) { return static_cast<std::size_t>(k * n * n + r + c * n); };
        ASSERT_EQ(result[at(i, j)], (host[at(i, j)] + host[at(j, i)]) / 2) << "member " << k << " (" << i << ", " << j << ")";
      }
}

// The fused per-step pass: the same symmetrised values as symmetrize (bit for bit), the trace of the
// result exactly (integers, sums far below 2^24), and its Frobenius norm against a long double sum: both
// sum the same squares of stored values in double in another order, so they agree within gamma_{n^2}.
TEST_P(Backend, SymmetrizeAndMeasureMatchesSeparatePasses) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  for (const std::int64_t n : {1, 2, 17, 150}) {
    std::vector<double> host(static_cast<std::size_t>(2 * n * n));
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<double>((i * 7919) % 2001) - 1000;
    Mat fused = be->allocate(n, n, 2), separate = be->allocate(n, n, 2);
    up(*be, host, fused);
    up(*be, host, separate);
    be->symmetrize_and_measure(fused, 3, 5);
    be->symmetrize(separate);
    const std::vector<double> got = down(*be, fused);
    ASSERT_EQ(got, down(*be, separate)) << "n = " << n;
    const auto s = be->fetch_scalars();
    for (std::int64_t k = 0; k < 2; ++k) {
      double trace = 0;
      long double squares = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        trace += got[static_cast<std::size_t>(k * n * n + j + j * n)];
        for (std::int64_t i = 0; i < n; ++i) {
          const long double v = got[static_cast<std::size_t>(k * n * n + i + j * n)];
          squares += v * v;
        }
      }
      const double norm = std::sqrt(static_cast<double>(squares));
      EXPECT_EQ(s[3][static_cast<std::size_t>(k)], trace) << "n = " << n << ", member " << k;
      EXPECT_NEAR(s[5][static_cast<std::size_t>(k)], norm, 2.0 * static_cast<double>(n * n) * 1.2e-16 * norm)
          << "n = " << n << ", member " << k;
    }
  }
}

// cholesky (f64 only): the factor U^T U = M (upper triangular, strictly lower part zeroed) of a positive
// definite member, the flag 0 for an indefinite one (cholesky_completes: the same flags).
TEST_P(Backend, CholeskyFactorsAndTellsIndefinite) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  const std::int64_t n = 37;
  // member 0: the tridiagonal (2, -1) matrix (eigenvalues in (0, 4)); member 1: the same with a_00 = -1.
  std::vector<double> host(static_cast<std::size_t>(2 * n * n), 0.0);
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t i = 0; i < n; ++i) {
      host[static_cast<std::size_t>(k * n * n + i + i * n)] = 2;
      if (i + 1 < n) {
        host[static_cast<std::size_t>(k * n * n + i + 1 + i * n)] = -1;
        host[static_cast<std::size_t>(k * n * n + i + (i + 1) * n)] = -1;
      }
    }
  host[static_cast<std::size_t>(n * n)] = -1;
  Mat m = be->allocate(n, n, 2);
  up(*be, host, m);
  if (GetParam() != pe::DType::f64) {
    EXPECT_THROW(be->cholesky(m, 0), pe::Error);
    EXPECT_THROW(be->cholesky_completes(m, 0), pe::Error);
    return;
  }
  be->cholesky(m, 0);
  EXPECT_EQ(be->fetch_scalars()[0], (std::vector<double>{1, 0}));
  const std::vector<double> u = down(*be, m);
  Mat flag_only = be->allocate(n, n, 2);
  up(*be, host, flag_only);
  be->cholesky_completes(flag_only, 2);
  EXPECT_EQ(be->fetch_scalars()[2], (std::vector<double>{1, 0}));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      if (i > j) {
        ASSERT_EQ(u[static_cast<std::size_t>(i + j * n)], 0.0) << "(" << i << ", " << j << ")";
        continue;
      }
      double utu = 0;  // (U^T U)_ij = sum_l u_li u_lj, within a few ulps of the entries (all O(1))
      for (std::int64_t l = 0; l <= i; ++l) utu += u[static_cast<std::size_t>(l + i * n)] * u[static_cast<std::size_t>(l + j * n)];
      EXPECT_NEAR(utu, host[static_cast<std::size_t>(i + j * n)], 1e-14) << "(" << i << ", " << j << ")";
    }
}

TEST_P(Backend, ExactInverseRootMatchesReferenceAndRejectsIndefinite) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  const std::int64_t n = 12;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 100, pe::reference::Spectrum::spread), 3);
  Mat am = be->allocate(n, n, 1), xm = be->allocate(n, n, 1);
  up(*be, a, am);
  ASSERT_TRUE(be->exact_inverse_root(am, 3, xm));
  // Storage rounding of A and X (one unit roundoff each, times kappa^{1/p} ~ 5 for the input perturbation).
  const double tol = GetParam() == pe::DType::f32 ? 1e-5 : 1e-13;
  EXPECT_LT(pe::reference::relative_error(down(*be, xm), pe::reference::inverse_root(a, n, 3)), tol);
  am = be->allocate(2, 2, 1);
  up(*be, {1, 2, 2, 1}, am);  // eigenvalues 3, -1
  Mat x2 = be->allocate(2, 2, 1);
  EXPECT_FALSE(be->exact_inverse_root(am, 2, x2));
}

TEST_P(Backend, ResidualAccumulatesAboveStorage) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  Mat a = be->allocate(2, 2, 1), x = be->allocate(2, 1, 1), b = be->allocate(2, 1, 1), r = be->allocate(2, 1, 1);
  up(*be, {2, 0, 0, 4}, a);
  up(*be, {1, 1}, x);
  up(*be, {3, 3}, b);
  be->residual(a, x, b, r);
  EXPECT_EQ(down(*be, r), (std::vector<double>{1, -1}));
}

TEST_P(Backend, ShapeViolationsThrow) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  Mat a = be->allocate(2, 3, 1), c = be->allocate(2, 2, 1);
  EXPECT_THROW(be->gemm(Op::N, Op::N, 1.0, a, a, 0.0, c), pe::Error);
  Mat null_mat;
  EXPECT_THROW(be->symmetrize(null_mat), pe::Error);
  EXPECT_THROW(be->symmetrize(a), pe::Error);
  EXPECT_THROW(be->scale(std::vector<double>{1, 2, 3}, c), pe::Error);
}

// The Newton correction's operations: A = Q diag(lambda) Q^T (in double, stored in the dtype) and an
// elementwise division with a divisor shared by the batch.
TEST_P(Backend, SymmetricEigenAndElementwiseDivision) {
  auto be = pe::detail::make_cpu_backend(GetParam(), pe::ComputeMode::native);
  const std::int64_t n = 9;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 50, pe::reference::Spectrum::spread), 4);
  Mat am = be->allocate(n, n, 1), q = be->allocate(n, n, 1), lambda = be->allocate(n, 1, 1);
  up(*be, a, am);
  ASSERT_TRUE(be->symmetric_eigen(am, q, lambda));
  const auto stored = down(*be, am), hq = down(*be, q), hl = down(*be, lambda);
  const auto ref = pe::reference::eigenvalues(stored, n);
  // Computed in double from the stored A, then rounded once to the storage: u |lambda| apart at most.
  const double u = GetParam() == pe::DType::f32 ? std::ldexp(1.0, -24) : 4 * std::ldexp(1.0, -53) * n;
  for (std::int64_t i = 0; i < n; ++i) EXPECT_NEAR(hl[static_cast<std::size_t>(i)], ref[static_cast<std::size_t>(i)], u);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      double s = 0;  // Q diag(lambda) Q^T with Q and lambda as stored: a few units of the storage's rounding
      for (std::int64_t l = 0; l < n; ++l)
        s += hq[static_cast<std::size_t>(i + l * n)] * hl[static_cast<std::size_t>(l)] * hq[static_cast<std::size_t>(j + l * n)];
      EXPECT_NEAR(s, stored[static_cast<std::size_t>(i + j * n)], 8 * n * u);
    }
  Mat m = be->allocate(2, 2, 2), c = be->allocate(2, 2, 1);
  up(*be, {1, 2, 3, 4, 5, 6, 7, 8}, m);
  up(*be, {1, 2, 4, 8}, c);
  be->divide_elementwise(c, m);
  EXPECT_EQ(down(*be, m), (std::vector<double>{1, 1, 0.75, 0.5, 5, 3, 1.75, 1}));
  Mat wrong = be->allocate(2, 3, 1);
  EXPECT_THROW(be->divide_elementwise(wrong, m), pe::Error);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Backend, ::testing::Values(pe::DType::f32, pe::DType::f64),
                         [](const auto& info) { return std::string(pe::to_string(info.param)); });

// The GPU formats are emulated (tests/runtime/test_emulated_formats.cpp); tf32 products need f32 storage.
TEST(BackendFactory, CpuEmulatesTheGpuFormats) {
  for (pe::DType storage : {pe::DType::bf16, pe::DType::f16}) {
    auto be = pe::detail::make_cpu_backend(storage, pe::ComputeMode::native);
    EXPECT_EQ(be->storage(), storage);
    EXPECT_EQ(be->name(), "cpu");
  }
  EXPECT_EQ(pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::tf32)->compute(), pe::ComputeMode::tf32);
  for (pe::DType storage : {pe::DType::f64, pe::DType::bf16, pe::DType::f16}) {
    try {
      pe::detail::make_cpu_backend(storage, pe::ComputeMode::tf32);
      ADD_FAILURE() << "tf32 with " << pe::to_string(storage) << " storage was accepted";
    } catch (const pe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs f32 storage, got " + std::string(pe::to_string(storage))),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace

namespace {

// The bridge between precision levels: f64 -> f32 rounds to nearest, f32 -> f64 is exact, and a backend
// of another kind is refused.
TEST(BackendImport, ConvertsBetweenStorageDtypesOfTheSameKind) {
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  auto narrow = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::native);
  Mat w = wide->allocate(2, 1, 2), n = narrow->allocate(2, 1, 2), back = wide->allocate(2, 1, 2);
  const double third = 1.0 / 3.0;
  up(*wide, {third, -2.5, 1e-3, 7}, w);
  narrow->import_from(*wide, w, n);
  EXPECT_EQ(down(*narrow, n),
            (std::vector<double>{double(float(third)), -2.5, double(float(1e-3)), 7}));
  wide->import_from(*narrow, n, back);
  EXPECT_EQ(down(*wide, back), down(*narrow, n));
  Mat wrong = narrow->allocate(1, 2, 2);
  EXPECT_THROW(narrow->import_from(*wide, w, wrong), pe::Error);
}

// Buffers read zero when allocated, also where a released buffer's memory is handed out again (from
// 64 KiB up the CPU backend reuses released mappings of the same size: runtime/cpu/zeroed_buffer.hpp).
TEST(BackendAllocate, BuffersStartZeroAlsoWhenReused) {
  const std::int64_t rows = 512, cols = 512;  // 2 MiB in f64
  for (int round = 0; round < 3; ++round) {
    auto be = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
    Mat small = be->allocate(3, 3, 1), large = be->allocate(rows, cols, 1);
    for (const Mat* m : {&small, &large}) {
      const std::vector<double> values = down(*be, *m);
      std::size_t nonzero = 0;
      for (double v : values) nonzero += v != 0;
      EXPECT_EQ(nonzero, 0u) << "round " << round << ", " << m->rows << " x " << m->cols;
    }
    std::vector<double> fill(static_cast<std::size_t>(rows * cols), 7.0);
    up(*be, fill, large);  // every entry written before the buffer is released
  }
}

}  // namespace
