// Minimal NumPy .npy reader/writer: format versions 1, 2 and 3, little-endian float32/float64, C order,
// 2-D, not empty. Anything else is a pe::Error naming the file, what it holds and what was expected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pe/types.hpp"

namespace pe_run {

struct NpyArray {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  pe::DType dtype = pe::DType::f64;  // of the file
  std::vector<double> data;          // row-major (C order), converted to double
};

// Parses the bytes of a .npy file; `origin` (the path) starts every message.
NpyArray parse_npy(std::string_view bytes, const std::string& origin);

// Reads the file at `path` and parses it; a missing file, a directory or a read error is named as such.
NpyArray read_npy(const std::string& path);

// Writes a C-order 2-D array (row-major `data`) as float32 or float64, atomically: a temporary file in
// the same directory, renamed over `path` only when complete. Every value must be finite and fit the
// dtype; otherwise nothing is written.
void write_npy(const std::string& path, std::int64_t rows, std::int64_t cols, pe::DType dtype,
               const std::vector<double>& data);

}  // namespace pe_run
