// Small vocabulary types shared by the public API and the backends.
#pragma once

#include <stdexcept>
#include <string>

namespace pe {

// Storage dtype of a matrix.
enum class DType { f32, f64, bf16, f16 };

// How products accumulate: native (fp32 for fp32/bf16/fp16 storage, fp64 for fp64) or TF32 tensor
// cores on fp32 storage.
enum class ComputeMode { native, tf32 };

enum class Layout { row_major, col_major };

enum class Device { cpu, cuda };

// Every error the library reports: bad input (naming the argument, the value and what was expected),
// unreadable files, backend failures. Never thrown for numerical trouble that a fallback handles.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char* to_string(DType dtype);
const char* to_string(Device device);

}  // namespace pe
