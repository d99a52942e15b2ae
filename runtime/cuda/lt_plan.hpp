// Pure host logic of the cuBLASLt path: which cuBLASLt types a (storage, compute mode) pair maps
// to, and the key under which a matmul's descriptors, layouts and heuristic result are cached.
// Nothing here touches a device, so it is tested without a GPU.
#pragma once

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "backend.hpp"

namespace pe::detail::gpu {

struct LtTypes {
  cudaDataType_t data;          // A, B, C, D element type
  cublasComputeType_t compute;  // accumulation
  cudaDataType_t scale;         // type of alpha and beta
  bool operator==(const LtTypes&) const = default;
};

// fp64 -> 64F; fp32 -> 32F or 32F_FAST_TF32; bf16/fp16 -> 32F accumulation with fp32 scale.
// Throws pe::Error for tf32 on anything but fp32 storage.
LtTypes lt_types(DType storage, ComputeMode compute);
std::size_t element_size(DType dtype);
std::size_t element_size(cudaDataType_t type);  // of the four types above
cudaDataType_t cuda_data_type(DType dtype);

// Largest power of two (capped at 256, what cuBLASLt asks about) dividing the address of every
// batch member: base address and, when batched, the stride in bytes.
std::uint32_t member_alignment(const void* base, std::int64_t stride_bytes, std::int64_t batch);

struct GemmKey {
  Op op_a = Op::N, op_b = Op::N;
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldc = 0, ldd = 0;
  std::int64_t batch = 1;
  std::int64_t stride_a = 0, stride_b = 0, stride_c = 0, stride_d = 0;  // 0 broadcasts a member
  LtTypes types{};
  std::uint32_t align_a = 0, align_b = 0, align_c = 0, align_d = 0;
  bool operator==(const GemmKey&) const = default;
};

struct GemmKeyHash {
  std::size_t operator()(const GemmKey& key) const noexcept;
};

}  // namespace pe::detail::gpu
