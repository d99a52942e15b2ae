// Numbers in messages: %g keeps tiny and huge values readable (std::to_string prints 1e-9 as 0.000000).
#pragma once

#include <cstdio>
#include <string>

namespace pe::detail {

inline std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace pe::detail
