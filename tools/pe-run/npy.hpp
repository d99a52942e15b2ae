// Minimal NumPy .npy reader/writer: format versions 1 and 2, little-endian float32/float64, C order, 2-D.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pe/types.hpp"

namespace pe_run {

struct NpyArray {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  pe::DType dtype = pe::DType::f64;  // of the file
  std::vector<double> data;          // row-major (C order), converted to double
};

// Throws pe::Error naming the file and what is wrong.
NpyArray read_npy(const std::string& path);

// Writes a C-order 2-D array (row-major `data`) as float32 or float64, atomically: a temporary file in
// the same directory, renamed over `path` only when complete.
void write_npy(const std::string& path, std::int64_t rows, std::int64_t cols, pe::DType dtype,
               const std::vector<double>& data);

}  // namespace pe_run
