// Validation of the caller's matrix views, shared by every entry point.
#pragma once

#include "pe/pe.hpp"

namespace pe::detail {

enum class Batching { allowed, single_matrix };

// Throws pe::Error naming `name` unless the view is usable: positive shape, non-null data, f32/f64,
// a leading dimension and batch stride consistent with its layout (batch 1 where `batching` says so),
// and a host view (copied in and out by any backend) or a device view on `device`.
template <class View>
void check_view(const char* name, const View& v, Device device, Batching batching);

}  // namespace pe::detail
