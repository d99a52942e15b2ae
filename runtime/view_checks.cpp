#include "view_checks.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "pe/detail/format.hpp"

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

StorageRange storage_range(DType storage) {
  // Round to nearest even turns magnitudes from largest + half an ulp up into infinity (the largest
  // finite value of each of these formats has an odd significand, so the tie rounds up too).
  switch (storage) {
    case DType::f64:
      return {storage, std::numeric_limits<double>::max(), std::numeric_limits<double>::min(), INFINITY};
    case DType::f32: return {storage, 0x1.fffffep127, 0x1p-126, 0x1.ffffffp127};
    case DType::bf16: return {storage, 0x1.fep127, 0x1p-126, 0x1.ffp127};  // f32's exponent range
    case DType::f16: return {storage, 65504.0, 0x1p-14, 65520.0};
  }
  throw Error("storage dtype " + std::to_string(static_cast<int>(storage)) + " is unknown");
}

template <class View>
double host_entry(const View& v, std::int64_t k, std::int64_t i, std::int64_t j) {
  const std::int64_t index = k * v.stride + (v.layout == Layout::col_major ? i + j * v.ld : i * v.ld + j);
  return v.dtype == DType::f32 ? static_cast<double>(static_cast<const float*>(v.data)[index])
                               : static_cast<const double*>(v.data)[index];
}

template double host_entry<Matrix>(const Matrix&, std::int64_t, std::int64_t, std::int64_t);
template double host_entry<MutableMatrix>(const MutableMatrix&, std::int64_t, std::int64_t, std::int64_t);

namespace {

std::string position(std::int64_t k, std::int64_t i, std::int64_t j, std::int64_t batch) {
  return "entry (" + std::to_string(i) + ", " + std::to_string(j) + ")" +
         (batch > 1 ? " of batch member " + std::to_string(k) : "");
}

// Calls visit(k, i, j, value) for every entry of a host view until it returns false; false if stopped.
template <class View, class Visit>
bool each_host_entry(const View& v, Visit visit) {
  for (std::int64_t k = 0; k < v.batch; ++k)
    for (std::int64_t j = 0; j < v.cols; ++j)
      for (std::int64_t i = 0; i < v.rows; ++i)
        if (!visit(k, i, j, host_entry(v, k, i, j))) return false;
  return true;
}

// Whether every entry of a host view has |value| < limit (so is finite): a typed pass that vectorises, for
// the common case; the entry-by-entry visit above only runs to name what fails.
template <class T, class View>
bool all_below_typed(const View& v, double limit) {
  const T* data = static_cast<const T*>(v.data);
  const std::int64_t inner = v.layout == Layout::col_major ? v.rows : v.cols;
  const std::int64_t outer = v.layout == Layout::col_major ? v.cols : v.rows;
  const T bound = limit >= static_cast<double>(std::numeric_limits<T>::max()) ? std::numeric_limits<T>::infinity()
                                                                             : static_cast<T>(limit);
  // (A limit above T's range is infinity, so the comparison stays exact in T.)
  for (std::int64_t k = 0; k < v.batch; ++k)
    for (std::int64_t o = 0; o < outer; ++o) {
      const T* line = data + k * v.stride + o * v.ld;
      int bad = 0;
      for (std::int64_t i = 0; i < inner; ++i) bad |= !(std::abs(line[i]) < bound);
      if (bad) return false;
    }
  return true;
}

template <class View>
bool all_below(const View& v, double limit) {
  return v.dtype == DType::f32 ? all_below_typed<float>(v, limit) : all_below_typed<double>(v, limit);
}

// The first non-finite entry of a backend matrix, from a host copy (the error path only).
void throw_first_nonfinite(Backend& backend, const Mat& m, const std::string& name, const std::string& after) {
  std::vector<double> host(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  backend.download(m, HostMat{host.data(), DType::f64, m.rows, m.cols, m.rows, m.batch, m.rows * m.cols,
                              Layout::col_major});
  for (std::size_t index = 0; index < host.size(); ++index)
    if (!std::isfinite(host[index])) {
      const auto e = static_cast<std::int64_t>(index), per = m.rows * m.cols;
      throw Error(name + ": " + position(e / per, e % per % m.rows, e % per / m.rows, m.batch) + " is " +
                  format_number(host[index]) + after);
    }
}

bool any_nonfinite(Backend& backend, const Mat& m) {
  backend.count_nonfinite(m, 0);
  // Kept in a variable: a range-for over fetch_scalars()[0] would read the temporary after it is gone.
  const std::vector<std::vector<double>> slots = backend.fetch_scalars();
  for (double count : slots[0])
    if (count > 0) return true;
  return false;
}

}  // namespace

void check_finite(Backend& backend, const char* name, const Mat& m) {
  if (any_nonfinite(backend, m)) throw_first_nonfinite(backend, m, name, "; expected finite values");
}

void check_input_values(Backend& backend, const char* name, const Matrix& v, const Mat& stored) {
  if (v.device != Device::cpu) {
    check_finite(backend, name, stored);  // a device view is in the storage dtype: nothing was converted
    return;
  }
  const StorageRange range = storage_range(backend.storage());
  if (all_below(v, range.overflow_threshold)) return;
  each_host_entry(v, [&](std::int64_t k, std::int64_t i, std::int64_t j, double value) {
    if (!std::isfinite(value))
      throw Error(std::string(name) + ": " + position(k, i, j, v.batch) + " is " + format_number(value) +
                  "; expected finite values");
    if (std::abs(value) >= range.overflow_threshold)
      throw Error(std::string(name) + ": " + position(k, i, j, v.batch) + " = " + format_number(value) +
                  " overflows the " + to_string(range.dtype) + " storage (largest finite " + format_number(range.largest) +
                  "); expected values the storage can hold: store in f64 (options.storage) or rescale " + name);
    return true;
  });
}

void check_result_values(Backend& backend, const char* name, const Mat& stored, const MutableMatrix& v,
                         const std::string& what, const std::string& remedy) {
  const std::string after = "; expected finite values: " + what + " is not representable in " +
                            to_string(v.device == Device::cpu ? v.dtype : backend.storage()) + " (largest finite " +
                            format_number(storage_range(v.device == Device::cpu ? v.dtype : backend.storage()).largest) +
                            ") or overflowed on the way; " + remedy;
  if (v.device != Device::cpu) {
    if (any_nonfinite(backend, stored)) throw_first_nonfinite(backend, stored, std::string(name) + " (result)", after);
    return;
  }
  if (all_below(v, INFINITY)) return;
  each_host_entry(v, [&](std::int64_t k, std::int64_t i, std::int64_t j, double value) {
    if (!std::isfinite(value))
      throw Error(std::string(name) + " (result): " + position(k, i, j, v.batch) + " is " + format_number(value) + after);
    return true;
  });
}

}  // namespace pe::detail
