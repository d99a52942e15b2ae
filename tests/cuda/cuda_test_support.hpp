// Shared helpers of the CUDA backend tests: device detection, random data, host references in double.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "cuda_backend.hpp"
#include "pe/types.hpp"

namespace pe::test {

inline bool have_cuda_device() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  (void)cudaGetLastError();
  return ok;
}

#define PE_REQUIRE_CUDA_DEVICE()                                                              \
  do {                                                                                        \
    if (!::pe::test::have_cuda_device())                                                      \
      GTEST_SKIP() << "no CUDA device: cudaGetDeviceCount failed or found none";              \
  } while (false)

// One configuration of the backend under test.
struct Config {
  DType storage;
  ComputeMode compute;
  const char* name;
};

// gtest prints the parameter by name instead of its bytes.
inline void PrintTo(const Config& c, std::ostream* os) { *os << c.name; }

inline const Config kConfigs[] = {{DType::f64, ComputeMode::native, "f64"},
                                  {DType::f32, ComputeMode::native, "f32"},
                                  {DType::f32, ComputeMode::tf32, "tf32"},
                                  {DType::bf16, ComputeMode::native, "bf16"},
                                  {DType::f16, ComputeMode::native, "f16"}};

// Unit roundoff of a storage dtype: one rounding to it changes x by at most u |x|.
inline double unit_roundoff(DType dtype) {
  switch (dtype) {
    case DType::f64: return std::ldexp(1.0, -53);
    case DType::f32: return std::ldexp(1.0, -24);
    case DType::bf16: return std::ldexp(1.0, -8);   // 8 significand bits
    case DType::f16: return std::ldexp(1.0, -11);   // 11 significand bits
  }
  return 1.0;
}

// Rounding applied to GEMM inputs by the compute mode: tf32 keeps 11 significand bits (u = 2^-11);
// native modes use the stored values exactly.
inline double input_roundoff(const Config& c) { return c.compute == ComputeMode::tf32 ? std::ldexp(1.0, -11) : 0.0; }

// Unit roundoff of the accumulation: fp64 for fp64 storage, fp32 for every other storage.
inline double accumulation_roundoff(const Config& c) {
  return c.storage == DType::f64 ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
}

// Column-major packed batch of matrices in double on the host.
struct HostBatch {
  std::int64_t rows = 0, cols = 0, batch = 1;
  std::vector<double> v;
  HostBatch() = default;
  HostBatch(std::int64_t r, std::int64_t c, std::int64_t b = 1)
      : rows(r), cols(c), batch(b), v(static_cast<std::size_t>(r * c * b)) {}
  double& operator()(std::int64_t i, std::int64_t j, std::int64_t k = 0) {
    return v[static_cast<std::size_t>(i + j * rows + k * rows * cols)];
  }
  double operator()(std::int64_t i, std::int64_t j, std::int64_t k = 0) const {
    return v[static_cast<std::size_t>(i + j * rows + k * rows * cols)];
  }
  detail::HostMat view() {
    return {v.data(), DType::f64, rows, cols, rows, batch, rows * cols, Layout::col_major};
  }
};

// Fresh seed per test, printed on failure through SCOPED_TRACE by the caller.
inline std::uint64_t fresh_seed() { return std::random_device{}() * 6364136223846793005ull + std::random_device{}(); }

// Entries with |x| in [0.25, 1] and random sign: never zero, so unwritten outputs cannot pass.
inline HostBatch random_batch(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols, std::int64_t batch = 1) {
  HostBatch h(rows, cols, batch);
  std::uniform_real_distribution<double> magnitude(0.25, 1.0);
  std::bernoulli_distribution negative(0.5);
  for (double& x : h.v) x = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return h;
}

// Uploads h to a fresh backend matrix and returns the values as stored (after rounding to the
// storage dtype), so that references are computed from exactly what the device holds.
inline detail::Mat upload_stored(detail::Backend& backend, HostBatch& h) {
  detail::Mat m = backend.allocate(h.rows, h.cols, h.batch);
  backend.upload(h.view(), m);
  backend.download(m, h.view());
  return m;
}

inline HostBatch download(detail::Backend& backend, const detail::Mat& m) {
  HostBatch h(m.rows, m.cols, m.batch);
  std::fill(h.v.begin(), h.v.end(), std::nan(""));  // poison: every element must be written
  backend.download(m, h.view());
  return h;
}

// Fills a backend matrix with NaN so that elements an operation fails to write are caught.
inline void poison(detail::Backend& backend, detail::Mat& m) {
  HostBatch h(m.rows, m.cols, m.batch);
  std::fill(h.v.begin(), h.v.end(), std::nan(""));
  backend.upload(h.view(), m);
}

}  // namespace pe::test
