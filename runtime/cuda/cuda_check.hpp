// Checked calls for the CUDA runtime, cuBLAS/cuBLASLt and cuSOLVER: a failing call becomes a
// pe::Error naming the call, the status name and its description, and the file and line.
// Host-only header (no device code), so plain C++ translation units and CPU-only tests can use it.
#pragma once

#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime_api.h>
#include <cusolver_common.h>

#include <string>

namespace pe::detail::gpu {

// cuSOLVER has no status-name function; this table gives "CUSOLVER_STATUS_..." for every status.
const char* cusolver_status_name(cusolverStatus_t status);

[[noreturn]] void throw_call_failure(const char* library, const char* call, const char* status_name,
                                     const char* description, const char* file, int line);

}  // namespace pe::detail::gpu

#define PE_CUDA_TRY(call)                                                                          \
  do {                                                                                             \
    const cudaError_t pe_cuda_status_ = (call);                                                    \
    if (pe_cuda_status_ != cudaSuccess)                                                            \
      ::pe::detail::gpu::throw_call_failure("CUDA", #call, cudaGetErrorName(pe_cuda_status_),      \
                                            cudaGetErrorString(pe_cuda_status_), __FILE__, __LINE__); \
  } while (false)

// cuBLAS and cuBLASLt share cublasStatus_t.
#define PE_CUBLAS_TRY(call)                                                                        \
  do {                                                                                             \
    const cublasStatus_t pe_cublas_status_ = (call);                                               \
    if (pe_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                \
      ::pe::detail::gpu::throw_call_failure("cuBLAS", #call, cublasGetStatusName(pe_cublas_status_), \
                                            cublasGetStatusString(pe_cublas_status_), __FILE__,     \
                                            __LINE__);                                             \
  } while (false)

#define PE_CUSOLVER_TRY(call)                                                                      \
  do {                                                                                             \
    const cusolverStatus_t pe_cusolver_status_ = (call);                                           \
    if (pe_cusolver_status_ != CUSOLVER_STATUS_SUCCESS)                                            \
      ::pe::detail::gpu::throw_call_failure(                                                       \
          "cuSOLVER", #call, ::pe::detail::gpu::cusolver_status_name(pe_cusolver_status_),         \
          "see the cuSOLVER documentation", __FILE__, __LINE__);                                   \
  } while (false)

// A kernel launch reports configuration errors only through cudaGetLastError.
#define PE_CUDA_CHECK_LAUNCH() PE_CUDA_TRY(cudaGetLastError())
