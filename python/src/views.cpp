#include "views.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "pe/types.hpp"

namespace pe_python {

namespace {

std::string shape_text(const std::vector<std::int64_t>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// DLPack dtype -> pe dtype; a dtype pe has no name for is a TypeError (the wrong kind of array), the
// ones it names go on to the runtime's own check.
pe::DType dtype_of(const char* name, nb::dlpack::dtype t) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(t.code);
  if (t.lanes == 1) {
    if (code == Code::Float && t.bits == 32) return pe::DType::f32;
    if (code == Code::Float && t.bits == 64) return pe::DType::f64;
    if (code == Code::Float && t.bits == 16) return pe::DType::f16;
    if (code == Code::Bfloat && t.bits == 16) return pe::DType::bf16;
  }
  const char* kind = code == Code::Int       ? "int"
                     : code == Code::UInt    ? "uint"
                     : code == Code::Float   ? "float"
                     : code == Code::Bfloat  ? "bfloat"
                     : code == Code::Complex ? "complex"
                     : code == Code::Bool    ? "bool"
                                             : "dtype code ";
  throw nb::type_error((std::string(name) + ": dtype " + kind + (code > Code::Bool ? std::to_string(t.code) + "/" : "") +
                        std::to_string(t.bits) + (t.lanes != 1 ? "x" + std::to_string(t.lanes) : "") +
                        " is not supported (expected float32 or float64)")
                           .c_str());
}

template <class View, class Array>
View view_of(const char* name, const Array& array) {
  const std::size_t ndim = array.ndim();
  std::vector<std::int64_t> shape(ndim), strides(ndim);
  for (std::size_t i = 0; i < ndim; ++i) {
    shape[i] = static_cast<std::int64_t>(array.shape(i));
    strides[i] = array.stride(i);
  }
  View v;
  v.dtype = dtype_of(name, array.dtype());  // the kind of array first (a TypeError), then its shape
  if (ndim < 2)
    throw pe::Error(std::string(name) + ": a " + std::to_string(ndim) + "-D array of shape " + shape_text(shape) +
                    " is not a matrix (expected shape (..., rows, cols), leading dimensions being batch members)");
  v.device = placement_of(name, array.device_type(), array.device_id()).device;
  v.data = array.data();
  v.rows = shape[ndim - 2];
  v.cols = shape[ndim - 1];

  // Batch members: the leading dimensions, collapsed into one count and one stride. Dimensions of
  // extent 1 carry no step; the others must nest (outer stride = inner stride * inner extent).
  v.batch = 1;
  std::int64_t member_stride = 0, nested = 0;
  bool seen = false, uniform = true;
  for (std::size_t i = ndim - 2; i-- > 0;) {
    v.batch *= shape[i];
    if (shape[i] == 1) continue;
    if (!seen) member_stride = strides[i];
    else if (strides[i] != nested) uniform = false;
    seen = true;
    nested = strides[i] * shape[i];
  }
  if (v.batch > 1 && !uniform)
    throw pe::Error(std::string(name) + ": batch dimensions of shape " + shape_text(shape) + " with strides " +
                    shape_text(strides) + " (in elements) are not evenly spaced; make the array contiguous first "
                    "(numpy.ascontiguousarray, tensor.contiguous())");
  v.stride = v.batch > 1 ? member_stride : 0;
  if (v.batch > 1 && v.stride < 0)
    throw pe::Error(std::string(name) + ": negative batch stride " + std::to_string(v.stride) +
                    " (a reversed view); make the array contiguous first");
  if (v.batch == 0 || v.rows == 0 || v.cols == 0) {
    v.ld = std::max<std::int64_t>(v.rows, 1);  // empty: the runtime names the shape (or the batch count)
    return v;
  }

  // The matrix: column-major when rows are adjacent (unit row stride), else row-major when columns are.
  // A dimension of extent 1 has no meaningful stride, so it never disqualifies a layout.
  const std::int64_t row_step = strides[ndim - 2], col_step = strides[ndim - 1];
  const bool unit_rows = row_step == 1 || v.rows == 1, unit_cols = col_step == 1 || v.cols == 1;
  const std::int64_t col_major_ld = v.cols == 1 ? v.rows : col_step;
  const std::int64_t row_major_ld = v.rows == 1 ? v.cols : row_step;
  if (unit_rows && col_major_ld >= v.rows) {
    v.layout = pe::Layout::col_major;
    v.ld = col_major_ld;
  } else if (unit_cols && row_major_ld >= v.cols) {
    v.layout = pe::Layout::row_major;
    v.ld = row_major_ld;
  } else {
    throw pe::Error(std::string(name) + ": a matrix of shape " + shape_text({v.rows, v.cols}) + " with strides " +
                    shape_text({row_step, col_step}) + " (in elements) is neither row- nor column-major with a "
                    "leading dimension; make it contiguous first (numpy.ascontiguousarray, tensor.contiguous())");
  }
  return v;
}

}  // namespace

Placement placement_of(const char* name, int dlpack_device_type, int dlpack_device_id) {
  if (dlpack_device_type == nb::device::cpu::value) return {pe::Device::cpu, 0};
  if (dlpack_device_type == nb::device::cuda::value) return {pe::Device::cuda, dlpack_device_id};
  throw pe::Error(std::string(name) + ": arrays on DLPack device type " + std::to_string(dlpack_device_type) +
                  " are not supported (expected CPU memory or CUDA device memory)");
}

std::string describe(const Placement& p) {
  return p.device == pe::Device::cpu ? "cpu" : "cuda:" + std::to_string(p.device_id);
}

pe::Matrix matrix_view(const char* name, const InArray& array) { return view_of<pe::Matrix>(name, array); }

pe::MutableMatrix mutable_view(const char* name, const OutArray& array) {
  return view_of<pe::MutableMatrix>(name, array);
}

template <class Array>
PlacementCheck& PlacementCheck::add(const char* name, const Array& array) {
  const Placement p = placement_of(name, array.device_type(), array.device_id());
  if (!any_) {
    any_ = true;
    first_name_ = name;
    placement_ = p;
  } else if (!(p == placement_)) {
    throw pe::Error(std::string(name) + ": array is on " + describe(p) + " but " + first_name_ + " is on " +
                    describe(placement_) + "; pass every array of one call on the same device");
  }
  return *this;
}

template PlacementCheck& PlacementCheck::add<InArray>(const char*, const InArray&);
template PlacementCheck& PlacementCheck::add<OutArray>(const char*, const OutArray&);

}  // namespace pe_python
