// Caller arrays (anything nanobind's ndarray accepts: NumPy, PyTorch, JAX, CuPy, DLPack and
// buffer-protocol objects) as pe::Matrix / pe::MutableMatrix views, without copying.
#pragma once

#include <nanobind/ndarray.h>

#include <string>

#include "pe/pe.hpp"

namespace pe_python {

namespace nb = nanobind;

// Inputs may be read-only (JAX arrays, read-only NumPy views); outputs must be writable. Both accept
// any dtype, shape, strides and device here: views.cpp checks them with messages that name the argument.
using InArray = nb::ndarray<nb::ro>;
using OutArray = nb::ndarray<>;

// Where an array lives: the pe device and, for CUDA, the device ordinal.
struct Placement {
  pe::Device device = pe::Device::cpu;
  int device_id = 0;
  bool operator==(const Placement&) const = default;
};

Placement placement_of(const char* name, int dlpack_device_type, int dlpack_device_id);
std::string describe(const Placement& placement);  // "cpu" | "cuda:1"

// The last two dimensions are the matrix; leading dimensions (any number) are batch members, which
// must sit one uniform stride apart (so that they form pe's Matrix::batch / Matrix::stride). The matrix
// itself is row-major (unit column stride) or column-major (unit row stride) with any leading
// dimension; anything else (two non-unit strides, negative strides, broadcast batch members of stride 0
// with more than one member) is a pe::Error naming the argument and its strides, never a hidden copy.
// A dtype pe has no name for (integers, complex, bool, ...) is a TypeError; f16/bf16 views are passed
// on, and the runtime names what it supports.
pe::Matrix matrix_view(const char* name, const InArray& array);
pe::MutableMatrix mutable_view(const char* name, const OutArray& array);

// Every array of one call lives in one place: the first one's (a host array among device arrays would
// be copied by the runtime, but the Python layer allocates outputs where the inputs are, so a mix is a
// caller mistake worth naming).
class PlacementCheck {
 public:
  template <class Array>
  PlacementCheck& add(const char* name, const Array& array);
  Placement placement() const { return placement_; }

 private:
  bool any_ = false;
  std::string first_name_;
  Placement placement_;
};

}  // namespace pe_python
