// The contracts of the verification operations of pe::detail::Backend (backend.hpp), as checks that run
// against any f64 backend: the CPU one here (tests/verify) and the CUDA one where a GPU is present
// (tests/cuda). Inputs are chosen so that every expected value is exact: small integers where a sum is
// compared, and a 300-bit reference where the claim is an exact identity of doubles.
#pragma once

#include <gtest/gtest.h>

#include <boost/multiprecision/cpp_bin_float.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "backend.hpp"
#include "verify/residual_chain.hpp"

namespace pe_verify_checks {

using pe::detail::Backend;
using pe::detail::HostMat;
using pe::detail::Mat;
using pe::detail::Op;
using Wide = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<300>>;

inline void put(Backend& be, const std::vector<double>& v, Mat& m) {
  std::vector<double> copy(v);
  be.upload(HostMat{copy.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols}, m);
}
inline std::vector<double> get(Backend& be, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  be.download(m, HostMat{out.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols});
  return out;
}

// |op(M)| x + beta y with small integers: every sum is exact whatever the order.
inline void check_abs_gemv(Backend& be) {
  const std::int64_t rows = 37, cols = 23, batch = 2;
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> entry(-9, 9), positive(0, 7);
  std::vector<double> m(static_cast<std::size_t>(rows * cols * batch));
  for (double& v : m) v = entry(rng);
  Mat md = be.allocate(rows, cols, batch);
  put(be, m, md);
  for (Op op : {Op::N, Op::T})
    for (double beta : {0.0, 1.0}) {
      const std::int64_t in = op == Op::N ? cols : rows, out = op == Op::N ? rows : cols;
      std::vector<double> x(static_cast<std::size_t>(in * batch)), y(static_cast<std::size_t>(out * batch));
      for (double& v : x) v = positive(rng);
      for (double& v : y) v = positive(rng);
      Mat xd = be.allocate(in, 1, batch), yd = be.allocate(out, 1, batch);
      put(be, x, xd);
      put(be, y, yd);
      be.abs_gemv(op, md, xd, beta, yd);
      const std::vector<double> got = get(be, yd);
      for (std::int64_t k = 0; k < batch; ++k)
        for (std::int64_t r = 0; r < out; ++r) {
          double want = beta * y[static_cast<std::size_t>(k * out + r)];
          for (std::int64_t c = 0; c < in; ++c) {
            const std::int64_t i = op == Op::N ? r : c, j = op == Op::N ? c : r;
            want += std::abs(m[static_cast<std::size_t>(k * rows * cols + i + j * rows)]) *
                    x[static_cast<std::size_t>(k * in + c)];
          }
          ASSERT_EQ(got[static_cast<std::size_t>(k * out + r)], want) << "op " << (op == Op::N ? "N" : "T") << " beta "
                                                                      << beta << " member " << k << " row " << r;
        }
    }
}

// Member 0 positive definite, member 1 indefinite: flags 1 and 0; U upper with zeros below, U^T U = M.
inline void check_cholesky(Backend& be) {
  const std::int64_t n = 40;
  std::vector<double> m(static_cast<std::size_t>(2 * n * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      const double v = i == j ? n : 1.0 / (1.0 + static_cast<double>(i + j));
      m[static_cast<std::size_t>(i + j * n)] = v;
      m[static_cast<std::size_t>(n * n + i + j * n)] = i == j ? (i == n / 2 ? -1.0 : 2.0) : 0.0;
    }
  Mat md = be.allocate(n, n, 2);
  put(be, m, md);
  be.cholesky(md, 3);
  const auto flags = be.fetch_scalars().at(3);
  ASSERT_EQ(flags, (std::vector<double>{1.0, 0.0}));
  const std::vector<double> u = get(be, md);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      if (i > j) {
        ASSERT_EQ(u[static_cast<std::size_t>(i + j * n)], 0.0);
      }
      double s = 0;
      for (std::int64_t k = 0; k <= std::min(i, j); ++k)
        s += u[static_cast<std::size_t>(k + i * n)] * u[static_cast<std::size_t>(k + j * n)];
      // Cholesky's backward error: |U^T U - M| <= gamma_{n+1} |U^T||U| <= (n + 2) u n here.
      ASSERT_NEAR(s, m[static_cast<std::size_t>(i + j * n)], (n + 2) * 0x1p-53 * n) << i << ", " << j;
    }
}

// Slices and remainder add up to M exactly, every slice is an integer multiple of its unit of at most
// 2^bits + 1 units, the remainder is below both |M| and 2^(E - 3 bits), slice products are exact, and
// the exponent slot is the smallest row exponent (NaN with a non-finite entry).
inline void check_split_slices(Backend& be) {
  const std::int64_t n = 33;
  const int bits = pe::detail::verify::ResidualChain::slice_bits(n);
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::uniform_int_distribution<int> exponent(-40, 40);
  std::vector<double> m(static_cast<std::size_t>(n * n));
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i)
      m[static_cast<std::size_t>(i + j * n)] = i == 3 ? 0.0 : std::ldexp(uniform(rng), exponent(rng));
  Mat md = be.allocate(n, n, 1), rem = be.allocate(n, n, 1);
  std::vector<Mat> slices{be.allocate(n, n, 1), be.allocate(n, n, 1), be.allocate(n, n, 1)};
  put(be, m, md);
  for (bool by_rows : {true, false}) {
    be.split_slices(md, by_rows, bits, slices, rem, 7);
    const double reported = be.fetch_scalars().at(7).at(0);
    std::vector<std::vector<double>> s;
    for (const Mat& sl : slices) s.push_back(get(be, sl));
    const std::vector<double> r = get(be, rem);
    int lowest = std::numeric_limits<int>::max();
    for (std::int64_t l = 0; l < n; ++l) {
      double mx = 0;
      for (std::int64_t t = 0; t < n; ++t) mx = std::max(mx, std::abs(m[static_cast<std::size_t>(by_rows ? l + t * n : t + l * n)]));
      if (mx == 0) continue;
      int e = 0;
      std::frexp(mx, &e);
      lowest = std::min(lowest, e);
      for (std::int64_t t = 0; t < n; ++t) {
        const auto idx = static_cast<std::size_t>(by_rows ? l + t * n : t + l * n);
        Wide sum = r[idx];
        for (int i = 0; i < 3; ++i) {
          const double unit = std::ldexp(1.0, e - (i + 1) * bits);
          const double q = s[static_cast<std::size_t>(i)][idx] / unit;
          ASSERT_EQ(q, std::round(q)) << "slice " << i + 1 << " is not a multiple of its unit";
          ASSERT_LE(std::abs(q), std::ldexp(1.0, bits) + 1);
          sum += s[static_cast<std::size_t>(i)][idx];
        }
        ASSERT_EQ(sum, Wide(m[idx])) << "slices and remainder do not add up to the entry";
        ASSERT_LE(std::abs(r[idx]), std::min(std::abs(m[idx]), std::ldexp(1.0, e - 3 * bits)));
      }
    }
    ASSERT_EQ(reported, static_cast<double>(lowest));
  }
  // A product of a row slice and a column slice is exact in double, whatever the gemm's order.
  be.split_slices(md, true, bits, slices, rem, 7);
  Mat cols = be.allocate(n, n, 1), c_rem = be.allocate(n, n, 1), prod = be.allocate(n, n, 1);
  std::vector<Mat> col_slices{cols};
  be.split_slices(md, false, bits, col_slices, c_rem, 8);
  (void)be.fetch_scalars();
  be.gemm(Op::N, Op::N, 1.0, slices[0], cols, 0.0, prod);
  const std::vector<double> a = get(be, slices[0]), b = get(be, cols), p = get(be, prod);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      Wide exact = 0;
      for (std::int64_t k = 0; k < n; ++k)
        exact += Wide(a[static_cast<std::size_t>(i + k * n)]) * Wide(b[static_cast<std::size_t>(k + j * n)]);
      ASSERT_EQ(Wide(p[static_cast<std::size_t>(i + j * n)]), exact) << "slice product not exact at " << i << ", " << j;
    }
  m[5] = std::numeric_limits<double>::quiet_NaN();
  put(be, m, md);
  be.split_slices(md, true, bits, slices, rem, 7);
  ASSERT_TRUE(std::isnan(be.fetch_scalars().at(7).at(0)));
}

// hi' + e = hi + term exactly, lo' = lo + e (from lo = 0 that is exact too).
inline void check_two_sum(Backend& be) {
  const std::int64_t n = 17;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::uniform_int_distribution<int> exponent(-70, 70);
  std::vector<double> hi(static_cast<std::size_t>(n * n)), term(hi.size()), lo(hi.size(), 0.0);
  for (std::size_t i = 0; i < hi.size(); ++i) {
    hi[i] = std::ldexp(uniform(rng), exponent(rng));
    term[i] = std::ldexp(uniform(rng), exponent(rng));
  }
  Mat h = be.allocate(n, n, 1), l = be.allocate(n, n, 1), t = be.allocate(n, n, 1);
  put(be, hi, h);
  put(be, lo, l);
  put(be, term, t);
  be.two_sum_accumulate(h, l, t);
  const std::vector<double> h2 = get(be, h), l2 = get(be, l);
  for (std::size_t i = 0; i < hi.size(); ++i) {
    ASSERT_EQ(Wide(h2[i]) + Wide(l2[i]), Wide(hi[i]) + Wide(term[i])) << i;
    ASSERT_EQ(h2[i], hi[i] + term[i]) << i;  // the high part is the rounded sum
  }
}

inline void check_max_asymmetry(Backend& be) {
  const std::int64_t n = 29;
  std::vector<double> m(static_cast<std::size_t>(3 * n * n));
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        m[static_cast<std::size_t>(k * n * n + i + j * n)] = static_cast<double>((i + 1) * (j + 1)) / 7.0;
  m[static_cast<std::size_t>(n * n + 4 + 11 * n)] += 0x1p-40;  // member 1: one entry off by 2^-40
  m[static_cast<std::size_t>(2 * n * n + 2)] = std::numeric_limits<double>::quiet_NaN();
  Mat md = be.allocate(n, n, 3);
  put(be, m, md);
  be.max_asymmetry(md, 2, 3);
  const auto all = be.fetch_scalars();
  const auto& s = all.at(2);
  ASSERT_EQ(s[0], 0.0);
  ASSERT_EQ(s[1], std::abs((m[static_cast<std::size_t>(n * n + 4 + 11 * n)] - m[static_cast<std::size_t>(n * n + 11 + 4 * n)])));
  ASSERT_TRUE(std::isnan(s[2]));
  const auto& magnitude = all.at(3);  // max |m_ij| = n * n / 7, NaN with the NaN entry
  ASSERT_EQ(magnitude[0], static_cast<double>(n * n) / 7.0);
  ASSERT_EQ(magnitude[1], static_cast<double>(n * n) / 7.0);
  ASSERT_TRUE(std::isnan(magnitude[2]));
}

// The same on a narrow storage (the input checks run it on A as stored): an f32 pair that differs by one
// ulp, and an infinite entry, which makes both results NaN.
inline void check_max_asymmetry_narrow(Backend& be) {
  const std::int64_t n = 70;  // more than one tile of the CPU loop
  std::vector<double> m(static_cast<std::size_t>(2 * n * n), 0.5);
  for (std::int64_t i = 0; i < n; ++i) m[static_cast<std::size_t>(i + i * n)] = -3.0;  // largest magnitude
  const double one_ulp = std::nextafter(0.5f, 1.0f) - 0.5;
  m[static_cast<std::size_t>(66 + 3 * n)] += one_ulp;
  m[static_cast<std::size_t>(n * n + 5 + 67 * n)] = std::numeric_limits<double>::infinity();
  Mat md = be.allocate(n, n, 2);
  put(be, m, md);
  be.max_asymmetry(md, 0, 1);
  const auto all = be.fetch_scalars();
  ASSERT_EQ(all.at(0)[0], one_ulp);
  ASSERT_EQ(all.at(1)[0], 3.0);
  ASSERT_TRUE(std::isnan(all.at(0)[1]));
  ASSERT_TRUE(std::isnan(all.at(1)[1]));
}

// cholesky_solve against the matrix it factors: M x = b for a symmetric positive definite M, two columns,
// two members (the second member scaled by 4, so its solution is a quarter of the first's).
inline void check_cholesky_solve(Backend& be) {
  const std::int64_t n = 17, cols = 2;
  std::vector<double> m(static_cast<std::size_t>(2 * n * n)), b(static_cast<std::size_t>(2 * n * cols));
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < n; ++i)
        m[static_cast<std::size_t>(k * n * n + i + j * n)] =
            (k == 0 ? 1.0 : 4.0) * (i == j ? n + 1.0 : 1.0 / (1.0 + static_cast<double>(std::abs(i - j))));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = i % static_cast<std::size_t>(n * cols) % 5 + 1.0;
  Mat factor = be.allocate(n, n, 2), rhs = be.allocate(n, cols, 2);
  put(be, m, factor);
  put(be, b, rhs);
  be.cholesky(factor, 0);
  ASSERT_EQ(be.fetch_scalars().at(0), (std::vector<double>{1.0, 1.0}));
  be.cholesky_solve(factor, rhs);
  const std::vector<double> x = get(be, rhs);
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t c = 0; c < cols; ++c)
      for (std::int64_t i = 0; i < n; ++i) {
        double r = -b[static_cast<std::size_t>(k * n * cols + i + c * n)], scale = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          const double term = m[static_cast<std::size_t>(k * n * n + i + j * n)] * x[static_cast<std::size_t>(k * n * cols + j + c * n)];
          r += term;
          scale += std::abs(term);
        }
        // Backward stable solve of a well-conditioned M (cond < 3): the residual is a few n u of the terms.
        ASSERT_LE(std::abs(r), 8 * n * 0x1p-53 * scale) << k << " " << c << " " << i;
      }
  for (std::int64_t i = 0; i < n * cols; ++i)
    ASSERT_NEAR(x[static_cast<std::size_t>(n * cols + i)], x[static_cast<std::size_t>(i)] / 4, 1e-14);
}

}  // namespace pe_verify_checks
