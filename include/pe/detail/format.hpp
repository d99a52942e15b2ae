// Numbers in messages (runtime and pe-synth alike): %g keeps tiny and huge values readable, where
// std::to_string prints 1e-9 as 0.000000. Internal: not part of the stable API.
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
