// Validation of the caller's matrix views, shared by every entry point: their shape and layout, the
// values they bring in, and the values the entry point hands back.
#pragma once

#include <cstdint>
#include <string>

#include "backend.hpp"
#include "pe/pe.hpp"

namespace pe::detail {

enum class Batching { allowed, single_matrix };

// Throws pe::Error naming `name` unless the view is usable: positive shape, non-null data, f32/f64,
// a leading dimension and batch stride consistent with its layout (batch 1 where `batching` says so),
// and a host view (copied in and out by any backend) or a device view on `device`.
template <class View>
void check_view(const char* name, const View& v, Device device, Batching batching);

// The finite range of a storage dtype.
struct StorageRange {
  DType dtype;
  double largest;          // largest finite value
  double smallest_normal;  // below it, values lose precision and then flush to 0
  double overflow_threshold;  // the smallest magnitude that rounds to infinity in this dtype
};
StorageRange storage_range(DType storage);

// Entry (i, j) of batch member k of a host view, as double.
template <class View>
double host_entry(const View& v, std::int64_t k, std::int64_t i, std::int64_t j);

// Checks the values of an input after it was moved into `stored` (the backend copy in the storage dtype):
// throws pe::Error naming `name`, the entry and its value at the first entry that is not finite, or that
// is finite in the caller's host view but overflows the storage dtype (f64 data in f32 storage). Host views
// are read as the caller gave them, so the message shows the caller's value, not the converted one.
void check_input_values(Backend& backend, const char* name, const Matrix& v, const Mat& stored);

// Checks the result an entry point has just written from `stored` into the caller's view `v`: throws
// pe::Error at the first entry that is not finite, saying that `what` (e.g. "A^{-1/p} B") is not
// representable in the view's dtype, and `remedy` (what the caller can change). A result with such an
// entry is an error, never a result; the view's contents are then unspecified.
void check_result_values(Backend& backend, const char* name, const Mat& stored, const MutableMatrix& v,
                         const std::string& what, const std::string& remedy);

// Throws pe::Error naming `name` and the first non-finite entry of a backend matrix (counted on the
// backend; the host copy that finds the entry is made only on that error path).
void check_finite(Backend& backend, const char* name, const Mat& m);

}  // namespace pe::detail
