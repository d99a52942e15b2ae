// The GPU formats emulated by the CPU backend (bf16 and f16 storage, tf32 products): every stored value
// rounded once to the format, products against a double reference of the rounded inputs within the f32
// accumulation bound, and the runtime end to end on them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "formats.hpp"
#include "runtime_test_support.hpp"

namespace {

using pe::detail::Backend;
using pe::detail::Format;
using pe::detail::HostMat;
using pe::detail::Mat;
using pe::detail::Op;
using pe::detail::round_to;

std::vector<double> down(Backend& be, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  be.download(m, HostMat{out.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols});
  return out;
}
void up(Backend& be, std::vector<double> v, Mat& m) {
  be.upload(HostMat{v.data(), pe::DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols}, m);
}
std::vector<double> random_values(std::size_t count, std::uint64_t seed, double lo = -2, double hi = 2) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(count);
  for (auto& x : v) x = d(rng);
  return v;
}
void expect_in_format(const std::vector<double>& v, Format f, const char* what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(round_to(f, v[i]), v[i]) << what << "[" << i << "] is not a " << pe::detail::to_string(f) << " value";
}

class EmulatedStorage : public ::testing::TestWithParam<pe::DType> {};

// Element operations compute in double and round once, as the CUDA kernels do. The probe 1 + u + 2^-30
// lies just above the tie between 1 and 1 + 2u: rounded once it goes up; rounded to f32 first it would
// become the tie itself and go to the even 1.
TEST_P(EmulatedStorage, ElementOperationsRoundOnceFromDouble) {
  const pe::DType storage = GetParam();
  const Format f = pe::detail::storage_format(storage);
  const double u = pe::detail::unit_roundoff(f);
  const double probe = 1 + u + std::ldexp(1.0, -30);
  ASSERT_EQ(static_cast<double>(static_cast<float>(probe)), 1 + u) << "the probe must be an f32 tie";
  auto be = pe::detail::make_cpu_backend(storage, pe::ComputeMode::native);
  Mat m = be->allocate(2, 2, 1), ones = be->allocate(2, 2, 1), out = be->allocate(2, 2, 1);
  up(*be, {probe, 1, 1, probe}, m);
  EXPECT_EQ(down(*be, m), (std::vector<double>{1 + 2 * u, 1, 1, 1 + 2 * u})) << "upload";
  up(*be, {1, 1, 1, 1}, ones);
  be->axpby_identity(std::vector<double>{probe}, &ones, std::vector<double>{0.0}, nullptr, std::vector<double>{0.0}, out);
  EXPECT_EQ(down(*be, out)[0], 1 + 2 * u) << "axpby_identity";
  be->axpby_identity(std::vector<double>{1.0}, &ones, std::vector<double>{0.0}, nullptr,
                     std::vector<double>{u + std::ldexp(1.0, -30)}, out);
  EXPECT_EQ(down(*be, out), (std::vector<double>{1 + 2 * u, 1, 1, 1 + 2 * u})) << "axpby_identity's identity term";
  be->copy(ones, out);
  be->scale(std::vector<double>{probe}, out);
  EXPECT_EQ(down(*be, out)[1], 1 + 2 * u) << "scale";
  be->copy(ones, out);
  be->add_diagonal(std::vector<double>{u + std::ldexp(1.0, -30)}, out);
  EXPECT_EQ(down(*be, out), (std::vector<double>{1 + 2 * u, 1, 1, 1 + 2 * u})) << "add_diagonal";
  be->set_identity(std::vector<double>{probe}, out);
  EXPECT_EQ(down(*be, out), (std::vector<double>{1 + 2 * u, 0, 0, 1 + 2 * u})) << "set_identity";
  // diag_scale: (1 + 2u)^2 = 1 + 4u + 4u^2 rounds to 1 + 4u (f32 would keep the 4u^2).
  Mat d = be->allocate(2, 1, 1);
  up(*be, {1 + 2 * u, 1 + 2 * u}, d);
  be->copy(ones, out);
  be->diag_scale(&d, out, &d);
  EXPECT_EQ(down(*be, out)[0], 1 + 4 * u) << "diag_scale";
  // symmetrize: means of neighbours are ties, to even: (1 + (1 + 2u)) / 2 -> 1, ((1 + 2u) + (1 + 4u)) / 2 -> 1 + 4u.
  up(*be, {1, 1 + 2 * u, 1, 1}, m);
  be->symmetrize(m);
  EXPECT_EQ(down(*be, m), (std::vector<double>{1, 1, 1, 1})) << "symmetrize";
  Mat s = be->allocate(2, 2, 1);
  up(*be, {1, 1 + 2 * u, 1 + 4 * u, 1}, s);
  be->symmetrize(s);
  EXPECT_EQ(down(*be, s)[1], 1 + 4 * u) << "symmetrize, tie to even";
  // import_from an f64 backend rounds the same way; back to f64 is exact.
  auto wide = pe::detail::make_cpu_backend(pe::DType::f64, pe::ComputeMode::native);
  Mat w = wide->allocate(2, 2, 1), back = wide->allocate(2, 2, 1);
  up(*wide, {probe, -probe, 3.0, 0.1}, w);
  be->import_from(*wide, w, out);
  EXPECT_EQ(down(*be, out), (std::vector<double>{1 + 2 * u, -1 - 2 * u, 3.0, round_to(f, 0.1)})) << "import_from";
  wide->import_from(*be, out, back);
  EXPECT_EQ(down(*wide, back), down(*be, out));
}

// Random inputs through every writing operation: whatever is stored is a value of the format.
TEST_P(EmulatedStorage, EveryStoredValueIsInTheFormat) {
  const pe::DType storage = GetParam();
  const Format f = pe::detail::storage_format(storage);
  auto be = pe::detail::make_cpu_backend(storage, pe::ComputeMode::native);
  const std::int64_t n = 33;
  Mat a = be->allocate(n, n, 2), b = be->allocate(n, n, 2), c = be->allocate(n, n, 2), v = be->allocate(n, 1, 2);
  up(*be, random_values(static_cast<std::size_t>(2 * n * n), 1), a);
  expect_in_format(down(*be, a), f, "upload");
  up(*be, random_values(static_cast<std::size_t>(2 * n * n), 2), b);
  up(*be, random_values(static_cast<std::size_t>(2 * n), 3, 0.5, 2), v);
  be->gemm(Op::N, Op::T, 0.3, a, b, 0.0, c);
  expect_in_format(down(*be, c), f, "gemm");
  be->axpby_identity(std::vector<double>{0.7, -1.3}, &a, std::vector<double>{0.1}, &c, std::vector<double>{0.25}, c);
  expect_in_format(down(*be, c), f, "axpby_identity");
  be->scale(std::vector<double>{1.0 / 3, 3.7}, c);
  expect_in_format(down(*be, c), f, "scale");
  be->diag_scale(&v, c, &v);
  expect_in_format(down(*be, c), f, "diag_scale");
  be->symmetrize(c);
  expect_in_format(down(*be, c), f, "symmetrize");
  be->gemm(Op::N, Op::N, 0.3, a, c, 0.0, b);  // not symmetric (a is random)
  be->symmetrize_and_measure(b, 0, 1);
  expect_in_format(down(*be, b), f, "symmetrize_and_measure");
  be->add_diagonal(std::vector<double>{0.123}, c);
  expect_in_format(down(*be, c), f, "add_diagonal");
  be->residual(a, b, c, c);
  expect_in_format(down(*be, c), f, "residual");
  be->set_identity(std::vector<double>{0.1}, c);
  expect_in_format(down(*be, c), f, "set_identity");
}

// f16's range: overflow to inf past 65504 (after rounding), in uploads and products alike; subnormals.
TEST(EmulatedStorage, F16OverflowAndSubnormals) {
  auto be = pe::detail::make_cpu_backend(pe::DType::f16, pe::ComputeMode::native);
  const double inf = std::numeric_limits<double>::infinity();
  Mat m = be->allocate(4, 1, 1);
  up(*be, {65519, 65520, 3 * std::ldexp(1.0, -25), std::ldexp(1.0, -26)}, m);
  EXPECT_EQ(down(*be, m), (std::vector<double>{65504, inf, std::ldexp(1.0, -23), 0}));
  Mat a = be->allocate(1, 1, 1), c = be->allocate(1, 1, 1);
  up(*be, {300}, a);
  be->gemm(Op::N, Op::N, 1.0, a, a, 0.0, c);  // 90000 in the f32 accumulator, inf in f16
  EXPECT_EQ(down(*be, c)[0], inf);
  be->scale(std::vector<double>{1e-9}, a);  // 3e-7: a subnormal of f16 (spacing 2^-24 ~ 6e-8)
  EXPECT_EQ(down(*be, a)[0], std::round(3e-7 / std::ldexp(1.0, -24)) * std::ldexp(1.0, -24));
}

// Products: sgemm on the stored operands (or, for tf32, on the operands rounded to tf32), output rounded
// once. Against the double product C* of the rounded operands: |C - C*| <= gamma_k' (|alpha||A||B| +
// |beta||C0|) (1 + u) + u |C*| + s, with gamma_k' = k' u32 / (1 - k' u32) the f32 accumulation bound for k'
// = k + 1 terms (any summation order, FMA or not; Higham, Accuracy and Stability, Sec. 3.5), u the
// output format's unit roundoff (0 for tf32: its outputs are f32 and already inside gamma) and s half its
// smallest subnormal (for results in the subnormal range).
struct ProductCase {
  pe::DType storage;
  pe::ComputeMode compute;
};
class EmulatedProducts : public ::testing::TestWithParam<ProductCase> {};

TEST_P(EmulatedProducts, WithinTheF32AccumulationBoundOfTheRoundedOperands) {
  const auto [storage, compute] = GetParam();
  const Format out_format = pe::detail::storage_format(storage);
  const Format in_format = pe::detail::product_input_format(storage, compute);
  const double u_out = out_format == Format::f32 ? 0.0 : pe::detail::unit_roundoff(out_format);
  const double s = pe::detail::smallest_subnormal(out_format) / 2;
  auto be = pe::detail::make_cpu_backend(storage, compute);
  const std::int64_t m = 37, k = 301, n = 29;
  const double u32 = std::ldexp(1.0, -24);
  const double gamma = (k + 1) * u32 / (1 - (k + 1) * u32);
  for (Op op_a : {Op::N, Op::T})
    for (Op op_b : {Op::N, Op::T}) {
      SCOPED_TRACE(std::string(op_a == Op::N ? "N" : "T") + (op_b == Op::N ? "N" : "T"));
      Mat a = op_a == Op::N ? be->allocate(m, k, 1) : be->allocate(k, m, 1);  // shared by both members
      Mat b = op_b == Op::N ? be->allocate(k, n, 2) : be->allocate(n, k, 2);
      Mat c = be->allocate(m, n, 2);
      up(*be, random_values(static_cast<std::size_t>(m * k), 11), a);
      up(*be, random_values(static_cast<std::size_t>(2 * k * n), 12), b);
      up(*be, random_values(static_cast<std::size_t>(2 * m * n), 13), c);
      const std::vector<double> c0 = down(*be, c);
      std::vector<double> ha = down(*be, a), hb = down(*be, b);
      const std::vector<double> ha_stored = ha, hb_stored = hb;
      for (auto& x : ha) x = round_to(in_format, x);
      for (auto& x : hb) x = round_to(in_format, x);
      const double alpha = 0.5, beta = -2;  // powers of two: exact in f32
      be->gemm(op_a, op_b, alpha, a, b, beta, c);
      const std::vector<double> got = down(*be, c);
      expect_in_format(got, out_format, "gemm output");
      double worst = 0, worst_unrounded = 0;  // error / bound, against the rounded and the stored operands
      for (std::int64_t member = 0; member < 2; ++member)
        for (std::int64_t j = 0; j < n; ++j)
          for (std::int64_t i = 0; i < m; ++i) {
            double exact = 0, magnitude = 0, exact_stored = 0;
            for (std::int64_t l = 0; l < k; ++l) {
              const std::size_t ia = static_cast<std::size_t>(op_a == Op::N ? i + l * m : l + i * k);
              const std::size_t ib = static_cast<std::size_t>(member * k * n + (op_b == Op::N ? l + j * k : j + l * n));
              exact += ha[ia] * hb[ib];
              exact_stored += ha_stored[ia] * hb_stored[ib];
              magnitude += std::abs(ha[ia] * hb[ib]);
            }
            const std::size_t ic = static_cast<std::size_t>(member * m * n + i + j * m);
            const double want = alpha * exact + beta * c0[ic];
            const double scale = std::abs(alpha) * magnitude + std::abs(beta) * std::abs(c0[ic]);
            const double bound = gamma * scale * (1 + u_out) + u_out * std::abs(want) + s;
            worst = std::max(worst, std::abs(got[ic] - want) / bound);
            worst_unrounded = std::max(worst_unrounded, std::abs(got[ic] - (alpha * exact_stored + beta * c0[ic])) / bound);
          }
      EXPECT_LE(worst, 1.0);
      // Not vacuous: tf32 rounds its operands (the stored f32 operands' product misses the bound), and the
      // bf16/f16 output rounding uses a visible part of its allowance.
      if (compute == pe::ComputeMode::tf32)
        EXPECT_GT(worst_unrounded, 1.0);
      else
        EXPECT_GT(worst, 0.05);
    }
}

INSTANTIATE_TEST_SUITE_P(Formats, EmulatedProducts,
                         ::testing::Values(ProductCase{pe::DType::bf16, pe::ComputeMode::native},
                                           ProductCase{pe::DType::f16, pe::ComputeMode::native},
                                           ProductCase{pe::DType::f32, pe::ComputeMode::tf32}),
                         [](const auto& info) {
                           return std::string(info.param.compute == pe::ComputeMode::tf32 ? "tf32"
                                                                                          : pe::to_string(info.param.storage));
                         });

// Closed forms: tf32 drops operand bits below 2^-11 (relative) but keeps an f32 output; bf16 rounds the
// output (1 + 2u)^2 = 1 + 4u + 4u^2 to 1 + 4u.
TEST(EmulatedProducts, ClosedForms) {
  auto tf32 = pe::detail::make_cpu_backend(pe::DType::f32, pe::ComputeMode::tf32);
  Mat a = tf32->allocate(1, 2, 1), b = tf32->allocate(2, 1, 1), c = tf32->allocate(1, 1, 1);
  up(*tf32, {1 + std::ldexp(1.0, -12), 1 + std::ldexp(1.0, -10)}, a);
  up(*tf32, {1, std::ldexp(1.0, -20)}, b);
  EXPECT_EQ(down(*tf32, a)[0], 1 + std::ldexp(1.0, -12)) << "tf32 keeps f32 storage";
  tf32->gemm(Op::N, Op::N, 1.0, a, b, 0.0, c);
  // 1 * 1 + (1 + 2^-10) * 2^-20 = 1 + 2^-20 + 2^-30 in f32: 1 + 2^-20 (not a tf32 value: the output is
  // f32). Without the operand rounding it would be 1 + 2^-12 + 2^-20.
  EXPECT_EQ(down(*tf32, c)[0], 1 + std::ldexp(1.0, -20));
  auto bf16 = pe::detail::make_cpu_backend(pe::DType::bf16, pe::ComputeMode::native);
  const double u = std::ldexp(1.0, -8);
  Mat x = bf16->allocate(1, 1, 1), y = bf16->allocate(1, 1, 1);
  up(*bf16, {1 + 2 * u}, x);
  bf16->gemm(Op::N, Op::N, 1.0, x, x, 0.0, y);
  EXPECT_EQ(down(*bf16, y)[0], 1 + 4 * u);
}

// The exact references in double, rounded once to the storage.
TEST_P(EmulatedStorage, ExactRootIsTheDoubleRootRounded) {
  const pe::DType storage = GetParam();
  const Format f = pe::detail::storage_format(storage);
  auto be = pe::detail::make_cpu_backend(storage, pe::ComputeMode::native);
  const std::int64_t n = 20;
  // Diagonal-dominant enough that rounding A to the format keeps it positive definite.
  const auto a = pe_test::spd(n, 10, pe_test::Spectrum::spread, 5);
  Mat am = be->allocate(n, n, 1), xm = be->allocate(n, n, 1);
  up(*be, a, am);
  ASSERT_TRUE(be->exact_inverse_root(am, 2, xm));
  const std::vector<double> x = down(*be, xm), want = pe::reference::inverse_root(down(*be, am), n, 2);
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], round_to(f, want[i])) << i;
}

INSTANTIATE_TEST_SUITE_P(Formats, EmulatedStorage, ::testing::Values(pe::DType::bf16, pe::DType::f16),
                         [](const auto& info) { return std::string(pe::to_string(info.param)); });

// ---- the runtime end to end ----------------------------------------------------------------------

struct RootRun {
  pe::Report report;
  std::vector<double> x;
};
RootRun run_root(const std::vector<double>& a, std::int64_t n, int p, double target, pe::DType storage,
             pe::ComputeMode compute, bool verify = true) {
  std::vector<float> af(a.begin(), a.end()), xf(a.size());
  pe::Options o;
  o.p = p;
  o.target = target;
  o.storage_from_input = false;
  o.storage = storage;
  o.compute = compute;
  o.elevated_steps = 0;  // every step in the format itself: these tests are about its numerics
  o.verify = verify;
  RootRun r;
  r.report = pe::inverse_root(pe_test::view(af, n, n), pe_test::out(xf, n, n), o);
  r.x.assign(xf.begin(), xf.end());
  return r;
}

struct FormatCase {
  const char* name;
  pe::DType storage;
  pe::ComputeMode compute;
};
const FormatCase kFormats[] = {{"bf16", pe::DType::bf16, pe::ComputeMode::native},
                               {"f16", pe::DType::f16, pe::ComputeMode::native},
                               {"tf32", pe::DType::f32, pe::ComputeMode::tf32}};

// kappa 1e2, a target far below these formats' reach: the root's true error is the format's. Its
// relative condition number is kappa / p (runtime_test_support.hpp), so storing A alone moves the root by
// up to u kappa / p; the steps' rounding adds about as much again: bound 2 u kappa / p (measured 2 u to
// 4 u, that is 0.04 to 0.08 of it). The format must also show: at least 8 times the f32 run's error.
// eps(X) = max|lambda(X^p A) - 1| behaves like p times the relative error: bound 2 u kappa.
TEST(EmulatedRuns, RootErrorIsTheFormatsAtKappa1e2) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 96;
  const double kappa = 1e2;
  const auto a = pe_test::spd(n, kappa, pe_test::Spectrum::spread, 17);
  const std::vector<float> af(a.begin(), a.end());
  const std::vector<double> a_f32(af.begin(), af.end());  // A as the f32 input holds it
  for (int p : {1, 2, 4}) {
    const auto ref = pe::reference::inverse_root(a_f32, n, p);
    const RootRun f32 = run_root(a, n, p, 1e-6, pe::DType::f32, pe::ComputeMode::native);
    const double f32_error = pe::reference::relative_error(f32.x, ref);
    for (const FormatCase& fc : kFormats) {
      SCOPED_TRACE(std::string(fc.name) + ", p = " + std::to_string(p));
      const RootRun r = run_root(a, n, p, 1e-6, fc.storage, fc.compute);
      const double u = pe::detail::unit_roundoff(pe::detail::product_input_format(fc.storage, fc.compute));
      for (double v : r.x) ASSERT_TRUE(std::isfinite(v));
      EXPECT_FALSE(r.report.fallback) << r.report.fallback_reason;
      // Verified (the certificate is computed from the returned values in double, whatever the format):
      // the bound holds and a target below the format's floor is not reached.
      ASSERT_TRUE(r.report.verified_eps.has_value());
      EXPECT_GE(*r.report.verified_eps, pe::reference::root_eps(a_f32, r.x, n, p) * (1 - 1e-6));
      EXPECT_FALSE(r.report.target_reached);
      // Without verification nothing is claimed for these formats.
      const RootRun unverified = run_root(a, n, p, 1e-6, fc.storage, fc.compute, false);
      EXPECT_FALSE(unverified.report.certified);
      EXPECT_FALSE(unverified.report.target_reached);
      bool withheld = false;
      for (const auto& note : unverified.report.notes) withheld = withheld || note.find("no bound is claimed") != std::string::npos;
      EXPECT_TRUE(withheld);
      const double error = pe::reference::relative_error(r.x, ref);
      EXPECT_LT(error, 2 * u * kappa / p);
      EXPECT_GT(error, 8 * f32_error);
      EXPECT_LT(pe::reference::root_eps(a_f32, r.x, n, p), 2 * u * kappa);
    }
  }
}

// kappa 1e4 in bf16: never NaN, never a claim that does not hold. A dense matrix whose smallest eigenvalues lie below the
// bf16 rounding of its entries is indefinite once stored: a pe::Error says so and names the way out. A
// matrix that stays positive definite in bf16 (D^{1/2} (I + C) D^{1/2}, rounding moves C by u |C|) runs:
// no NaN; a verified bound that holds, the target reached only where the true eps meets it.
TEST(EmulatedRuns, Bf16AtKappa1e4NeverClaimsOrReturnsNan) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 64;
  const auto dense = pe_test::spd(n, 1e4, pe_test::Spectrum::spread, 23);
  try {
    run_root(dense, n, 2, 1e-3, pe::DType::bf16, pe::ComputeMode::native);
    ADD_FAILURE() << "a matrix that is indefinite in bf16 ran";
  } catch (const pe::Error& e) {
    const std::string what = e.what();
    for (const char* fragment : {"not positive definite", "in bf16 storage", "f32 storage keeps A"})
      EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
  // Log-spaced diagonal (kappa 1e4) coupled by a symmetric C with ||C||_2 < 0.3.
  std::vector<double> a(static_cast<std::size_t>(n * n));
  const auto c = pe_test::random_matrix(n, n, 31);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      const double di = std::pow(1e4, -static_cast<double>(i) / (n - 1)), dj = std::pow(1e4, -static_cast<double>(j) / (n - 1));
      const double cij = i == j ? 1.0 : 0.3 / n * (c[static_cast<std::size_t>(i + j * n)] + c[static_cast<std::size_t>(j + i * n)]) / 2;
      a[static_cast<std::size_t>(i + j * n)] = std::sqrt(di * dj) * cij;
    }
  for (int p : {1, 2, 4})
    for (double target : {1e-2, 1e-3}) {
      SCOPED_TRACE("p = " + std::to_string(p) + ", target " + std::to_string(target));
      const RootRun r = run_root(a, n, p, target, pe::DType::bf16, pe::ComputeMode::native);
      for (double v : r.x) ASSERT_TRUE(std::isfinite(v));
      const double true_eps = pe::reference::root_eps(a, r.x, n, p);
      if (r.report.verified_eps) {
        EXPECT_GE(*r.report.verified_eps, true_eps * (1 - 1e-6));
      }
      if (r.report.target_reached) {
        EXPECT_LE(true_eps, target);
      }
    }
}

// The direct apply carries Z through the same emulated backend.
TEST(EmulatedRuns, ApplyInBf16) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 48, k = 4;
  const auto a = pe_test::spd(n, 10, pe_test::Spectrum::spread, 41);
  const auto b = pe_test::random_matrix(n, k, 42);
  const auto z_ref = pe::reference::multiply(pe::reference::inverse_root(a, n, 2), b, n, n, k);
  for (pe::ApplyMode mode : {pe::ApplyMode::direct, pe::ApplyMode::materialize}) {
    pe::Options o;
    o.storage_from_input = false;
    o.storage = pe::DType::bf16;
    o.mode = mode;
    std::vector<double> z(static_cast<std::size_t>(n * k));
    const pe::Report r = pe::apply_inverse_root(pe_test::view(a, n, n), pe_test::view(b, n, k), pe_test::out(z, n, k), o);
    EXPECT_EQ(r.storage, "bf16");
    EXPECT_FALSE(r.target_reached);
    // kappa 10: within 2 u kappa / p of Z, as for the root (Z = X B, ||E B||_F <= ||E||_2 ||B||_F).
    EXPECT_LT(pe::reference::relative_error(z, z_ref), 2 * std::ldexp(1.0, -8) * 10 / 2) << r.mode;
  }
}

}  // namespace
