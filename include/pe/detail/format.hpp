// Numbers in messages and decimal text (runtime and pe-synth alike). Internal: not part of the stable API.
#pragma once

#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

namespace pe::detail {

// %g keeps tiny and huge values readable, where std::to_string prints 1e-9 as 0.000000.
inline std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A plain decimal number: [+-]digits[.digits][(e|E)[+-]digits], at least one digit before the exponent.
// What multiprecision parsers and JSON strings of pe's tables accept; hexadecimal floats, inf and nan
// (which strtod would take) are not decimal numbers.
inline bool is_decimal_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  std::size_t mantissa = digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

}  // namespace pe::detail
