// Rounding to the emulated GPU formats (runtime/formats.hpp) against an independent scalar reference:
// every finite value of the format, decoded from its bit patterns by the IEEE definition, and the
// nearest one found by search with ties to the even pattern. Checked on every value, every midpoint
// and its neighbours, the overflow threshold, the subnormal range, NaN/Inf/+-0 and a large random sample
// of f32 bit patterns and of doubles.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "formats.hpp"

namespace {

using pe::detail::Format;
using pe::detail::round_to;

// The non-negative finite values of a format in ascending order, each with whether its pattern is even
// (lowest fraction bit 0), and past the largest one a sentinel 2^(max exponent + 1) standing for +inf:
// the value the format would have next if its exponent did not end (even, so a tie with the largest
// finite value, whose fraction bits are all ones, goes to it, as IEEE 754 overflow does).
struct Grid {
  std::vector<double> value;
  std::vector<bool> even;
  double sentinel = 0;
};

Grid grid_of(Format f) {
  Grid g;
  const auto add = [&](double v, std::uint32_t pattern) {
    g.value.push_back(v);
    g.even.push_back((pattern & 1) == 0);
  };
  switch (f) {
    case Format::f16:
      // 1 sign, 5 exponent, 10 fraction bits; exponent 0: fraction 2^-24; 31: inf/NaN.
      for (std::uint32_t e = 0; e < 31; ++e)
        for (std::uint32_t m = 0; m < 1024; ++m)
          add(e == 0 ? std::ldexp(static_cast<double>(m), -24) : std::ldexp(static_cast<double>(1024 + m), static_cast<int>(e) - 25),
              e << 10 | m);
      g.sentinel = 65536.0;
      break;
    case Format::bf16:  // the upper 16 bits of an f32 pattern
      for (std::uint32_t pattern = 0; pattern < 0x7f80; ++pattern)
        add(static_cast<double>(std::bit_cast<float>(pattern << 16)), pattern);
      g.sentinel = std::ldexp(1.0, 128);
      break;
    case Format::tf32:  // 1 sign, 8 exponent, 10 fraction bits: an f32 pattern with 13 low bits zero
      for (std::uint32_t pattern = 0; pattern < (0xffu << 10); ++pattern)
        add(static_cast<double>(std::bit_cast<float>(pattern << 13)), pattern);
      g.sentinel = std::ldexp(1.0, 128);
      break;
    default:
      ADD_FAILURE() << "no grid for " << pe::detail::to_string(f);
  }
  g.value.push_back(g.sentinel);
  g.even.push_back(true);
  return g;
}

// Nearest grid value with ties to even; the sentinel (and anything beyond) is +inf. The differences are
// exact in double (Sterbenz: the neighbours lie within a factor 2 of |x|, or are 0).
double reference_round(const Grid& g, double x) {
  if (std::isnan(x)) return x;
  const double a = std::abs(x);
  if (std::isinf(a)) return x;
  const auto hi = std::lower_bound(g.value.begin(), g.value.end(), a);
  double r;
  if (hi == g.value.end()) {
    r = std::numeric_limits<double>::infinity();
  } else if (*hi == a || hi == g.value.begin()) {
    r = *hi;
  } else {
    const auto lo = hi - 1;
    const double below = a - *lo, above = *hi - a;
    if (below < above)
      r = *lo;
    else if (above < below)
      r = *hi;
    else
      r = g.even[static_cast<std::size_t>(lo - g.value.begin())] ? *lo : *hi;
  }
  if (r == g.sentinel) r = std::numeric_limits<double>::infinity();
  return std::copysign(r, x);
}

bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

std::string bits_of(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a (0x%016llx)", x, static_cast<unsigned long long>(std::bit_cast<std::uint64_t>(x)));
  return buf;
}

class Rounding : public ::testing::TestWithParam<Format> {};

// Every value, every midpoint between neighbours, and one f32 ulp and one double ulp either side of
// each: exact values stay, ties go to even (the midpoint of the largest finite value and the sentinel
// is the overflow threshold: it and anything above go to inf), everything else to the nearer.
TEST_P(Rounding, EveryValueMidpointAndNeighbourMatchesTheReference) {
  const Format f = GetParam();
  const Grid g = grid_of(f);
  std::int64_t checked = 0;
  const auto check = [&](double x) {
    for (double s : {x, -x}) {
      const double want = reference_round(g, s);
      const double got = round_to(f, s);
      ASSERT_TRUE(same(got, want)) << pe::detail::to_string(f) << ": round(" << bits_of(s) << ") = " << bits_of(got)
                                   << ", expected " << bits_of(want);
      // Through the float overload wherever x is a float.
      if (static_cast<double>(static_cast<float>(s)) == s) {
        const double got_float = static_cast<double>(round_to(f, static_cast<float>(s)));
        ASSERT_TRUE(same(got_float, want)) << "float overload at " << bits_of(s);
      }
      ++checked;
    }
  };
  for (std::size_t i = 0; i + 1 < g.value.size(); ++i) {
    const double v = g.value[i], next = g.value[i + 1];
    const double mid = v + (next - v) / 2;  // exact: one more bit than the format has
    check(v);
    check(mid);
    check(std::nextafter(mid, 0.0));
    check(std::nextafter(mid, 1e300));
    check(static_cast<double>(std::nextafter(static_cast<float>(mid), 0.0f)));
    check(static_cast<double>(std::nextafter(static_cast<float>(mid), 3e38f)));
  }
  EXPECT_EQ(checked, static_cast<std::int64_t>(12 * (g.value.size() - 1)));
}

// The named boundaries, as closed forms (they do not depend on the grid).
TEST_P(Rounding, OverflowSubnormalsAndSpecialValues) {
  const Format f = GetParam();
  const double inf = std::numeric_limits<double>::infinity();
  const double max = pe::detail::largest_finite(f);
  const double ulp_at_max = std::ldexp(1.0, pe::detail::format_spec(f).max_exponent - pe::detail::format_spec(f).mantissa_bits);
  const double threshold = max + ulp_at_max / 2;  // the tie between max and 2^(emax+1): goes to inf
  EXPECT_EQ(round_to(f, max), max);
  EXPECT_EQ(round_to(f, threshold), inf);
  EXPECT_EQ(round_to(f, -threshold), -inf);
  EXPECT_EQ(round_to(f, std::nextafter(threshold, 0.0)), max);
  EXPECT_EQ(round_to(f, 1e300), inf);
  EXPECT_EQ(round_to(f, -1e300), -inf);
  if (f == Format::f16) {
    EXPECT_EQ(max, 65504.0);
    EXPECT_EQ(round_to(f, 65519.0), 65504.0);
    EXPECT_EQ(round_to(f, 65520.0), inf);
  }
  const double min_normal = pe::detail::smallest_normal(f), min_sub = pe::detail::smallest_subnormal(f);
  EXPECT_EQ(min_normal, f == Format::f16 ? std::ldexp(1.0, -14) : std::ldexp(1.0, -126));
  EXPECT_EQ(round_to(f, min_normal), min_normal);
  EXPECT_EQ(round_to(f, min_sub), min_sub);
  EXPECT_EQ(round_to(f, 3 * min_sub), 3 * min_sub);
  EXPECT_EQ(round_to(f, min_sub / 2), 0.0);                           // tie with 0: even
  EXPECT_EQ(round_to(f, std::nextafter(min_sub / 2, 1.0)), min_sub);  // just above the tie
  EXPECT_EQ(round_to(f, 1.5 * min_sub), 2 * min_sub);                 // tie between 1 and 2: even
  EXPECT_EQ(round_to(f, 2.5 * min_sub), 2 * min_sub);
  EXPECT_EQ(round_to(f, min_sub / 4), 0.0);
  EXPECT_EQ(round_to(f, std::numeric_limits<double>::denorm_min()), 0.0);
  // Just below the smallest normal, nearer to it than to the largest subnormal: up to it.
  EXPECT_EQ(round_to(f, min_normal - min_sub / 4), min_normal);
  // Signs of zero and infinity kept; NaN stays NaN, quiet, including one whose payload is in bits the
  // format drops (a plain truncation would turn it into inf).
  EXPECT_TRUE(std::signbit(round_to(f, -0.0)));
  EXPECT_FALSE(std::signbit(round_to(f, 0.0)));
  EXPECT_TRUE(std::signbit(round_to(f, -min_sub / 4)));
  EXPECT_EQ(round_to(f, inf), inf);
  EXPECT_EQ(round_to(f, -inf), -inf);
  const double low_payload_nan = std::bit_cast<double>(std::uint64_t{0x7ff0000000000001});
  const float low_payload_nan_f = std::bit_cast<float>(std::uint32_t{0x7f800001});
  for (double nan : {std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN(),
                     low_payload_nan}) {
    const double r = round_to(f, nan);
    EXPECT_TRUE(std::isnan(r));
    EXPECT_NE(std::bit_cast<std::uint64_t>(r) & (std::uint64_t{1} << 51), 0u) << "quiet bit";
    EXPECT_EQ(std::signbit(r), std::signbit(nan));
  }
  const float rf = round_to(f, low_payload_nan_f);
  EXPECT_TRUE(std::isnan(rf));
  EXPECT_NE(std::bit_cast<std::uint32_t>(rf) & (std::uint32_t{1} << 22), 0u) << "quiet bit (float)";
  // Unit roundoff: half the spacing at 1.
  EXPECT_EQ(round_to(f, 1 + pe::detail::unit_roundoff(f)), 1.0);
  EXPECT_EQ(round_to(f, 1 + 3 * pe::detail::unit_roundoff(f)), 1 + 4 * pe::detail::unit_roundoff(f));
}

// A large random sample of f32 bit patterns (every exponent, NaNs included) through the float overload,
// and random doubles through the double overload: the latter catches rounding that goes through float
// first (double rounding), which differs in the cases the float lands on a midpoint.
TEST_P(Rounding, RandomFloatPatternsAndDoublesMatchTheReference) {
  const Format f = GetParam();
  const Grid g = grid_of(f);
  std::mt19937_64 rng(20260216 + static_cast<int>(f));
  for (int i = 0; i < 1'000'000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    const double want = reference_round(g, static_cast<double>(x));
    ASSERT_TRUE(same(static_cast<double>(round_to(f, x)), want)) << "f32 pattern " << bits_of(x);
  }
  // Doubles with exponents across the format's range and beyond it, full 52-bit fractions.
  std::uniform_int_distribution<int> exponent(-160, 140);
  for (int i = 0; i < 1'000'000; ++i) {
    const std::uint64_t fraction = rng() & ((std::uint64_t{1} << 52) - 1);
    const double x = std::ldexp(1.0 + std::ldexp(static_cast<double>(fraction), -52), exponent(rng)) *
                     ((rng() & 1) ? -1 : 1);
    ASSERT_TRUE(same(round_to(f, x), reference_round(g, x))) << "double " << bits_of(x);
  }
  // The double-rounding trap, explicitly: just above a midpoint by less than an f32 ulp.
  const double u = pe::detail::unit_roundoff(f);
  const double above_tie = 1 + u + std::ldexp(1.0, -40);  // float(above_tie) == 1 + u, a tie that goes to 1
  EXPECT_EQ(round_to(f, above_tie), 1 + 2 * u);
  EXPECT_EQ(round_to(f, static_cast<float>(above_tie)), 1.0f);
}

INSTANTIATE_TEST_SUITE_P(Formats, Rounding, ::testing::Values(Format::f16, Format::bf16, Format::tf32),
                         [](const auto& info) { return std::string(pe::detail::to_string(info.param)); });

// f32 through the same code against the hardware's double -> float conversion (round to nearest even
// with f32's overflow and subnormals), and f64 as the identity.
TEST(Rounding, F32MatchesTheHardwareConversion) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1'000'000; ++i) {
    const double x = std::bit_cast<double>(rng());
    const double want = static_cast<double>(static_cast<float>(x));
    ASSERT_TRUE(same(round_to(Format::f32, x), want)) << bits_of(x);
    ASSERT_TRUE(same(round_to(Format::f64, x), x));
  }
  std::uniform_int_distribution<int> exponent(-155, 130);
  for (int i = 0; i < 1'000'000; ++i) {
    const double x = std::ldexp(1.0 + std::ldexp(static_cast<double>(rng() >> 12), -52), exponent(rng));
    ASSERT_TRUE(same(round_to(Format::f32, x), static_cast<double>(static_cast<float>(x)))) << bits_of(x);
  }
}

TEST(Formats, TraitsMatchTheStandardTypes) {
  EXPECT_EQ(pe::detail::unit_roundoff(Format::f32), std::numeric_limits<float>::epsilon() / 2);
  EXPECT_EQ(pe::detail::unit_roundoff(Format::f64), std::numeric_limits<double>::epsilon() / 2);
  EXPECT_EQ(pe::detail::largest_finite(Format::f32), static_cast<double>(std::numeric_limits<float>::max()));
  EXPECT_EQ(pe::detail::largest_finite(Format::f64), std::numeric_limits<double>::max());
  EXPECT_EQ(pe::detail::smallest_subnormal(Format::f32), static_cast<double>(std::numeric_limits<float>::denorm_min()));
  EXPECT_EQ(pe::detail::unit_roundoff(Format::bf16), std::ldexp(1.0, -8));
  EXPECT_EQ(pe::detail::unit_roundoff(Format::tf32), std::ldexp(1.0, -11));
  EXPECT_EQ(pe::detail::unit_roundoff(pe::DType::f16), std::ldexp(1.0, -11));
  EXPECT_EQ(pe::detail::product_input_format(pe::DType::f32, pe::ComputeMode::tf32), Format::tf32);
  EXPECT_EQ(pe::detail::product_input_format(pe::DType::bf16, pe::ComputeMode::native), Format::bf16);
}

}  // namespace
