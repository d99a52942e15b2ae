#include "lt_plan.hpp"

#include <bit>
#include <string>

#include "pe/types.hpp"

namespace pe::detail::gpu {

cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
  }
  throw pe::Error("cuda backend: unknown dtype value " + std::to_string(static_cast<int>(dtype)));
}

std::size_t element_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16:
    case DType::f16: return 2;
  }
  throw pe::Error("cuda backend: unknown dtype value " + std::to_string(static_cast<int>(dtype)));
}

std::size_t element_size(cudaDataType_t type) {
  switch (type) {
    case CUDA_R_64F: return 8;
    case CUDA_R_32F: return 4;
    case CUDA_R_16BF:
    case CUDA_R_16F: return 2;
    default: break;
  }
  throw pe::Error("cuda backend: unsupported cudaDataType_t value " + std::to_string(static_cast<int>(type)));
}

LtTypes lt_types(DType storage, ComputeMode compute) {
  const cudaDataType_t data = cuda_data_type(storage);
  if (compute == ComputeMode::tf32) {
    if (storage != DType::f32)
      throw pe::Error("cuda backend: compute mode tf32 needs fp32 storage, got storage dtype code " +
                      std::to_string(static_cast<int>(storage)));
    return {data, CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F};
  }
  if (storage == DType::f64) return {data, CUBLAS_COMPUTE_64F, CUDA_R_64F};
  return {data, CUBLAS_COMPUTE_32F, CUDA_R_32F};
}

std::uint32_t member_alignment(const void* base, std::int64_t stride_bytes, std::int64_t batch) {
  std::uint64_t bits = reinterpret_cast<std::uintptr_t>(base) | 256u;
  if (batch > 1 && stride_bytes != 0) bits |= static_cast<std::uint64_t>(stride_bytes);
  return static_cast<std::uint32_t>(std::uint64_t{1} << std::countr_zero(bits));
}

std::size_t GemmKeyHash::operator()(const GemmKey& key) const noexcept {
  // FNV-1a over the fields; collisions only cost a comparison.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xffu;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<std::uint64_t>(key.op_a) << 1 | static_cast<std::uint64_t>(key.op_b));
  for (std::int64_t v : {key.m, key.n, key.k, key.lda, key.ldb, key.ldc, key.ldd, key.batch, key.stride_a,
                         key.stride_b, key.stride_c, key.stride_d})
    mix(static_cast<std::uint64_t>(v));
  mix(static_cast<std::uint64_t>(key.types.data) << 32 | static_cast<std::uint64_t>(key.types.compute));
  mix(static_cast<std::uint64_t>(key.types.scale));
  mix(static_cast<std::uint64_t>(key.align_a) << 32 | key.align_b);
  mix(static_cast<std::uint64_t>(key.align_c) << 32 | key.align_d);
  return static_cast<std::size_t>(h);
}

}  // namespace pe::detail::gpu
