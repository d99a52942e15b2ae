// .npy files built byte by byte (format 1.0), for the CLI tests: malformed variants, and matrices with
// values pe_run::write_npy refuses to write (NaN, Inf).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pe_npy_test {

inline std::string npy_bytes(const std::string& descr, const std::string& shape, bool fortran, const std::string& payload) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + payload;
}

// Column-major `a` (rows x cols) as a C-order float64 file, whatever its values.
inline std::string npy_f64(const std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  std::string payload;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      payload.append(reinterpret_cast<const char*>(&a[static_cast<std::size_t>(i + j * rows)]), sizeof(double));
  return npy_bytes("<f8", std::to_string(rows) + ", " + std::to_string(cols), false, payload);
}

}  // namespace pe_npy_test
