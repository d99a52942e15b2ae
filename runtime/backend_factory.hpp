// Where backends come from. The algorithm only sees pe::detail::Backend; this header picks one.
#pragma once

#include <memory>

#include "backend.hpp"
#include "pe/types.hpp"

namespace pe::detail {

// CBLAS/LAPACKE backend (runtime/cpu); storage f32 or f64, and the GPU formats emulated on f32 buffers:
// bf16 and f16 storage, compute tf32 (TF32 products) on f32 storage (runtime/formats.hpp rounds).
std::unique_ptr<Backend> make_cpu_backend(DType storage, ComputeMode compute);

// cuBLASLt backend on `stream` (a cudaStream_t, or null for the default stream). Defined in runtime/cuda
// when CUDA is built; otherwise it throws pe::Error("pe was built without the CUDA backend").
std::unique_ptr<Backend> make_cuda_backend(DType storage, ComputeMode compute, void* stream);

// Dispatches on the device.
std::unique_ptr<Backend> make_backend(Device device, DType storage, ComputeMode compute, void* stream);

}  // namespace pe::detail
