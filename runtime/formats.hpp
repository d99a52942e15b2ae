// The floating-point formats pe stores and multiplies in, and rounding to them: one implementation of
// round to nearest, ties to even, with each format's overflow and subnormals. The CPU backend uses it to
// emulate the GPU formats (bf16 and f16 storage, tf32 products) on f32 buffers; the runtime uses the unit
// roundoffs for its tolerances. Host code only (plain C++20, no CUDA).
//
//   format  stored mantissa bits  smallest normal  smallest subnormal  largest finite      unit roundoff
//   f64     52                    2^-1022          2^-1074             (2 - 2^-52) 2^1023  2^-53
//   f32     23                    2^-126           2^-149              (2 - 2^-23) 2^127   2^-24
//   tf32    10                    2^-126           2^-136              (2 - 2^-10) 2^127   2^-11
//   bf16     7                    2^-126           2^-133              (2 - 2^-7)  2^127   2^-8
//   f16     10                    2^-14            2^-24               65504               2^-11
// tf32 and bf16 share f32's exponent range (and so its overflow threshold and subnormal range), with
// fewer mantissa bits; f16 has 5 exponent bits.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

#include "pe/types.hpp"

namespace pe::detail {

enum class Format { f64, f32, tf32, bf16, f16 };

struct FormatSpec {
  int mantissa_bits;  // stored fraction bits (the significand has one more)
  int min_exponent;   // exponent of the smallest normal number
  int max_exponent;   // exponent of the largest finite number
};

constexpr FormatSpec format_spec(Format f) {
  switch (f) {
    case Format::f64: return {52, -1022, 1023};
    case Format::f32: return {23, -126, 127};
    case Format::tf32: return {10, -126, 127};
    case Format::bf16: return {7, -126, 127};
    case Format::f16: return {10, -14, 15};
  }
  return {52, -1022, 1023};
}

constexpr const char* to_string(Format f) {
  switch (f) {
    case Format::f64: return "f64";
    case Format::f32: return "f32";
    case Format::tf32: return "tf32";
    case Format::bf16: return "bf16";
    case Format::f16: return "f16";
  }
  return "?";
}

// 2^e for -1022 <= e <= 1023 (a normal double), built from its bits.
constexpr double power_of_two(int e) { return std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52); }

// u = 2^-(mantissa bits + 1): |round(x) - x| <= u |x| for x in the normal range.
constexpr double unit_roundoff(Format f) { return power_of_two(-(format_spec(f).mantissa_bits + 1)); }

// The largest finite value's bits as a double: exponent max_exponent, every kept fraction bit set.
constexpr std::uint64_t largest_finite_bits(Format f) {
  const FormatSpec s = format_spec(f);
  const std::uint64_t fraction = ((std::uint64_t{1} << s.mantissa_bits) - 1) << (52 - s.mantissa_bits);
  return static_cast<std::uint64_t>(s.max_exponent + 1023) << 52 | fraction;
}
constexpr double largest_finite(Format f) { return std::bit_cast<double>(largest_finite_bits(f)); }

constexpr double smallest_normal(Format f) { return power_of_two(format_spec(f).min_exponent); }
// (f64's, 2^-1074, is not a normal double: denorm_min.)
constexpr double smallest_subnormal(Format f) {
  const FormatSpec s = format_spec(f);
  return f == Format::f64 ? std::numeric_limits<double>::denorm_min() : power_of_two(s.min_exponent - s.mantissa_bits);
}

// The format a storage dtype holds its values in.
constexpr Format storage_format(DType d) {
  switch (d) {
    case DType::f64: return Format::f64;
    case DType::f32: return Format::f32;
    case DType::bf16: return Format::bf16;
    case DType::f16: return Format::f16;
  }
  return Format::f64;
}

// The format GEMM inputs are rounded to: the storage's, or tf32 for TF32 tensor-core products on f32.
constexpr Format product_input_format(DType storage, ComputeMode compute) {
  return compute == ComputeMode::tf32 && storage == DType::f32 ? Format::tf32 : storage_format(storage);
}

constexpr double unit_roundoff(DType d) { return unit_roundoff(storage_format(d)); }

// x rounded to the format: nearest value, ties to the even significand; past the largest finite value
// (after rounding) to +-inf; below the smallest normal onto the format's subnormal grid (to +-0 below
// half the smallest subnormal); NaN stays NaN (made quiet); +-0 and +-inf are kept with their sign.
// The result is exactly representable in the format, and in double (and in float for every format but
// f64). Rounding straight from double (not through float) is what the GPU's conversions do
// (cvt.rn.bf16.f64 / __double2bfloat16, cvt.rn.f16.f64 / __double2half round once, correctly).
inline double round_to(Format f, double x) {
  if (f == Format::f64) return x;
  constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
  constexpr std::uint64_t kExponentMask = std::uint64_t{0x7ff} << 52;
  constexpr std::uint64_t kFractionMask = (std::uint64_t{1} << 52) - 1;
  constexpr std::uint64_t kQuietBit = std::uint64_t{1} << 51;
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  const std::uint64_t sign = bits & kSign;
  const std::uint64_t magnitude = bits & ~kSign;
  if (magnitude >= kExponentMask) {  // inf or NaN
    if (magnitude == kExponentMask) return x;
    return std::bit_cast<double>(bits | kQuietBit);
  }
  const FormatSpec spec = format_spec(f);
  const int biased_exponent = static_cast<int>(magnitude >> 52);
  // Double subnormals (and zeros) lie far below half of every format's smallest subnormal: +-0.
  if (biased_exponent == 0) return std::bit_cast<double>(sign);
  const int exponent = biased_exponent - 1023;
  std::uint64_t rounded;
  if (exponent >= spec.min_exponent) {
    // Normal range of the format: keep mantissa_bits of the fraction. Adding half an ulp less one, plus
    // the lowest kept bit, then truncating is round-half-even; a carry out of the fraction moves into
    // the exponent, which is the right result (the next binade's first value).
    const int drop = 52 - spec.mantissa_bits;
    const std::uint64_t half_minus_one = (std::uint64_t{1} << (drop - 1)) - 1;
    const std::uint64_t lowest_kept = (magnitude >> drop) & 1;
    rounded = (magnitude + half_minus_one + lowest_kept) & ~((std::uint64_t{1} << drop) - 1);
  } else {
    // Below the format's normal range (f16 only, since the others share f32's range and double covers
    // it): round the significand M (x = M 2^(exponent - 52)) to a multiple of the smallest subnormal.
    const std::uint64_t significand = (magnitude & kFractionMask) | (std::uint64_t{1} << 52);
    const int quantum_exponent = spec.min_exponent - spec.mantissa_bits;
    const int drop = quantum_exponent - (exponent - 52);  // > 52 - mantissa_bits
    std::uint64_t q = 0;
    if (drop <= 54) {  // beyond that M 2^-drop < 1/4: rounds to 0
      const std::uint64_t remainder = significand & ((std::uint64_t{1} << drop) - 1);
      const std::uint64_t half = std::uint64_t{1} << (drop - 1);
      q = significand >> drop;
      if (remainder > half || (remainder == half && (q & 1))) ++q;
    }
    // q 2^quantum_exponent is exact in double (q <= 2^mantissa_bits, a normal double).
    rounded = std::bit_cast<std::uint64_t>(static_cast<double>(q) * power_of_two(quantum_exponent));
  }
  // Positive doubles order like their bit patterns.
  if (rounded > largest_finite_bits(f)) rounded = kExponentMask;
  return std::bit_cast<double>(rounded | sign);
}

// The same for a float argument, returned as float (exact: every format but f64 fits in float).
inline float round_to(Format f, float x) {
  return f == Format::f32 ? x : static_cast<float>(round_to(f, static_cast<double>(x)));
}

}  // namespace pe::detail
