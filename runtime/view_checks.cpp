#include "view_checks.hpp"

#include <cstdint>
#include <string>

namespace pe::detail {

template <class View>
void check_view(const char* name, const View& v, Device device, Batching batching) {
  const std::string pre = std::string(name) + ": ";
  // Shape first: an empty matrix (0 x 0, as an empty .npy gives) has no data to point to.
  if (v.rows < 1 || v.cols < 1)
    throw Error(pre + "shape " + std::to_string(v.rows) + " x " + std::to_string(v.cols) + " must be at least 1 x 1");
  if (v.data == nullptr) throw Error(pre + "data pointer is null");
  if (v.dtype != DType::f32 && v.dtype != DType::f64)
    throw Error(pre + "dtype " + to_string(v.dtype) + " is not supported (expected f32 or f64)");
  const std::int64_t inner = v.layout == Layout::col_major ? v.rows : v.cols;
  const std::int64_t outer = v.layout == Layout::col_major ? v.cols : v.rows;
  if (v.ld < inner)
    throw Error(pre + "leading dimension " + std::to_string(v.ld) + " is below " + std::to_string(inner) +
                (v.layout == Layout::col_major ? " (rows, column-major)" : " (cols, row-major)"));
  if (batching == Batching::single_matrix && v.batch != 1)
    throw Error(pre + "batch count " + std::to_string(v.batch) + ": solves and Gram applies take one matrix (batch 1)");
  if (v.batch < 1) throw Error(pre + "batch count " + std::to_string(v.batch) + " must be >= 1");
  if (v.batch > 1 && v.stride < v.ld * outer)
    throw Error(pre + "batch stride " + std::to_string(v.stride) + " is below ld * " +
                (v.layout == Layout::col_major ? "cols" : "rows") + " = " + std::to_string(v.ld * outer) +
                ", so batch members would overlap");
  // Host views work with every backend (copied in and out); device views only with their own device.
  if (v.device != Device::cpu && v.device != device)
    throw Error(pre + "view is on device " + to_string(v.device) + " but options.device is " + to_string(device));
}

template void check_view<Matrix>(const char*, const Matrix&, Device, Batching);
template void check_view<MutableMatrix>(const char*, const MutableMatrix&, Device, Batching);

}  // namespace pe::detail
