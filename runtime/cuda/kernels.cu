#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "pe/types.hpp"

namespace pe::detail::gpu {
namespace {

// ---- element access: every kernel computes in double and rounds once on store -------------------

__device__ __forceinline__ double to_double(float x) { return x; }
__device__ __forceinline__ double to_double(double x) { return x; }
__device__ __forceinline__ double to_double(__half x) { return __half2float(x); }
__device__ __forceinline__ double to_double(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_double(double x);
template <>
__device__ __forceinline__ float from_double<float>(double x) { return static_cast<float>(x); }
template <>
__device__ __forceinline__ double from_double<double>(double x) { return x; }
template <>
__device__ __forceinline__ __half from_double<__half>(double x) { return __double2half(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_double<__nv_bfloat16>(double x) { return __double2bfloat16(x); }

template <class F>
void with_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(__nv_bfloat16{}); return;
    case DType::f16: f(__half{}); return;
  }
  throw pe::Error("cuda backend: unknown dtype value " + std::to_string(static_cast<int>(dtype)));
}

// ---- launch geometry -----------------------------------------------------------------------------
// Element kernels: threadIdx/blockIdx.x run down the rows (coalesced in column-major storage),
// blockIdx.y picks a chunk of kColumnsPerBlock columns, blockIdx.z a batch member of this launch.
constexpr int kThreads = 256;
constexpr int kColumnsPerBlock = 16;
constexpr int kMaxGridYZ = 65535;
// Per-member scalars travel as kernel parameters (3 x 128 doubles = 3 KiB, under the 4 KiB limit):
// no separate transfer, no host synchronisation, nothing to keep alive after the launch.
constexpr int kMembersPerLaunch = 128;

struct MemberScalars {
  double v[3][kMembersPerLaunch];
};

dim3 element_grid(std::int64_t rows, std::int64_t cols, std::int64_t members) {
  const std::int64_t gx = (rows + kThreads - 1) / kThreads;
  const std::int64_t gy = std::min<std::int64_t>((cols + kColumnsPerBlock - 1) / kColumnsPerBlock, kMaxGridYZ);
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(members));
}

// Calls launch(first_member, member_count) for chunks of at most `chunk` members.
template <class F>
void for_member_chunks(std::int64_t batch, std::int64_t chunk, F&& launch) {
  for (std::int64_t first = 0; first < batch; first += chunk) launch(first, std::min(chunk, batch - first));
}

template <class T>
T* member(void* base, std::int64_t stride, std::int64_t k) {
  return static_cast<T*>(base) + k * stride;
}
template <class T>
const T* member(const void* base, std::int64_t stride, std::int64_t k) {
  return static_cast<const T*>(base) + k * stride;
}

// Stride between members of an operand that may be shared by all members (batch 1).
std::int64_t member_stride(const Mat& m) { return m.batch == 1 ? 0 : m.stride; }

// ---- reductions ----------------------------------------------------------------------------------

// Lanes past the last warp start from the combination's identity (0 for sums, the first partial for
// min/max, which is idempotent), so each warp's partial counts exactly once.
template <class Combine>
__device__ double block_reduce(double v, Combine combine) {
  __shared__ double partial[32];
  for (int offset = 16; offset > 0; offset /= 2) v = combine(v, __shfl_down_sync(0xffffffffu, v, offset));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  if (warp == 0) {
    v = lane < warps ? partial[lane] : Combine::idempotent ? partial[0] : 0.0;
    for (int offset = 16; offset > 0; offset /= 2) v = combine(v, __shfl_down_sync(0xffffffffu, v, offset));
  }
  return v;  // valid in thread 0
}

struct Sum {
  static constexpr bool idempotent = false;
  __device__ double operator()(double a, double b) const { return a + b; }
};
struct Max {
  static constexpr bool idempotent = true;
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};
struct Min {
  static constexpr bool idempotent = true;
  __device__ double operator()(double a, double b) const { return fmin(a, b); }
};

// ---- kernels -------------------------------------------------------------------------------------

template <class S, class D>
__global__ void convert_kernel(const S* src, Layout src_layout, std::int64_t src_ld, std::int64_t src_stride,
                               D* dst, Layout dst_layout, std::int64_t dst_ld, std::int64_t dst_stride,
                               std::int64_t rows, std::int64_t cols) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const S* s = src + blockIdx.z * src_stride;
  D* d = dst + blockIdx.z * dst_stride;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      const std::int64_t si = src_layout == Layout::col_major ? i + j * src_ld : i * src_ld + j;
      const std::int64_t di = dst_layout == Layout::col_major ? i + j * dst_ld : i * dst_ld + j;
      d[di] = from_double<D>(to_double(s[si]));
    }
  }
}

template <class T>
__global__ void axpby_identity_kernel(const T* a, std::int64_t lda, std::int64_t sa, const T* b, std::int64_t ldb,
                                      std::int64_t sb, T* c, std::int64_t ldc, std::int64_t sc, std::int64_t rows,
                                      std::int64_t cols, MemberScalars s) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const int k = blockIdx.z;
  const double alpha = s.v[0][k], beta = s.v[1][k], gamma = s.v[2][k];
  const T* ak = a ? a + k * sa : nullptr;
  const T* bk = b ? b + k * sb : nullptr;
  T* ck = c + k * sc;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      double v = i == j ? gamma : 0.0;
      if (ak) v += alpha * to_double(ak[i + j * lda]);
      if (bk) v += beta * to_double(bk[i + j * ldb]);
      ck[i + j * ldc] = from_double<T>(v);
    }
  }
}

template <class T>
__global__ void diag_scale_kernel(const T* left, std::int64_t sl, T* m, std::int64_t ld, std::int64_t sm,
                                  const T* right, std::int64_t sr, std::int64_t rows, std::int64_t cols) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const std::int64_t k = blockIdx.z;
  T* mk = m + k * sm;
  const double li = left ? to_double(left[k * sl + i]) : 1.0;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      const double rj = right ? to_double(right[k * sr + j]) : 1.0;
      mk[i + j * ld] = from_double<T>(li * to_double(mk[i + j * ld]) * rj);
    }
  }
}

// One block per pair of mirrored 32 x 32 tiles (I <= J): both tiles are read into shared memory
// before either is written, so the update is in place without races between blocks.
constexpr int kTile = 32;
constexpr int kTileRowsPerPass = 8;

template <class T>
__global__ void symmetrize_kernel(T* m, std::int64_t n, std::int64_t ld, std::int64_t stride) {
  __shared__ double upper[kTile][kTile + 1];
  __shared__ double lower[kTile][kTile + 1];
  // Block index -> (I, J) with I <= J, enumerating J = 0, 1, ... and I = 0 .. J.
  const std::int64_t b = blockIdx.x;
  std::int64_t tj = static_cast<std::int64_t>((sqrt(8.0 * static_cast<double>(b) + 1.0) - 1.0) / 2.0);
  while (tj * (tj + 1) / 2 > b) --tj;
  while ((tj + 1) * (tj + 2) / 2 <= b) ++tj;
  const std::int64_t ti = b - tj * (tj + 1) / 2;
  T* mk = m + blockIdx.z * stride;
  const std::int64_t r0 = ti * kTile, c0 = tj * kTile;  // tile (I, J): rows r0.., cols c0..
  const int tx = threadIdx.x;
  for (int ty = threadIdx.y; ty < kTile; ty += kTileRowsPerPass) {
    // upper[ty][tx] = m(r0 + tx, c0 + ty): column c0+ty read down its rows (coalesced).
    const std::int64_t r = r0 + tx, c = c0 + ty;
    if (r < n && c < n) upper[ty][tx] = to_double(mk[r + c * ld]);
    // lower[ty][tx] = m(c0 + tx, r0 + ty): the mirror tile, also read down its columns.
    const std::int64_t r2 = c0 + tx, c2 = r0 + ty;
    if (r2 < n && c2 < n) lower[ty][tx] = to_double(mk[r2 + c2 * ld]);
  }
  __syncthreads();
  for (int ty = threadIdx.y; ty < kTile; ty += kTileRowsPerPass) {
    // m(r0+tx, c0+ty) pairs with m(c0+ty, r0+tx) = lower[tx][ty].
    const std::int64_t r = r0 + tx, c = c0 + ty;
    if (r < n && c < n) mk[r + c * ld] = from_double<T>(0.5 * (upper[ty][tx] + lower[tx][ty]));
    // m(c0+tx, r0+ty) pairs with m(r0+ty, c0+tx) = upper[tx][ty]; same value, so the diagonal
    // tile (I == J) writes each element twice with identical bits.
    const std::int64_t r2 = c0 + tx, c2 = r0 + ty;
    if (r2 < n && c2 < n) mk[r2 + c2 * ld] = from_double<T>(0.5 * (lower[ty][tx] + upper[tx][ty]));
  }
}

template <class T>
__global__ void extract_diagonal_kernel(const T* m, std::int64_t ld, std::int64_t sm, T* out, std::int64_t so,
                                        std::int64_t n) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[blockIdx.z * so + i] = m[blockIdx.z * sm + i + i * ld];
}

// One pass over every element: row sums (|m_ij|, |m_ij - delta_ij|, off-diagonal |m_ij|) by atomics per
// row and column chunk, and per-member sums (squares, non-finite count, trace) by block reductions.
// Thread i of block (x, y, z) runs down row i of column chunk y of member z.
struct MemberSums {
  static constexpr int kSquares = 0, kNonfinite = 1, kTrace = 2, kCount = 3;
};

template <class T>
__global__ void reduction_pass_kernel(const T* m, std::int64_t ld, std::int64_t sm, std::int64_t rows, std::int64_t cols,
                                      std::int64_t columns_per_block, double* row_abs, double* row_abs_minus_identity,
                                      double* row_off_diagonal, double* member_sums) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t k = blockIdx.z;
  double abs_sum = 0.0, abs_minus_identity = 0.0, off_diagonal = 0.0, squares = 0.0, nonfinite = 0.0, trace = 0.0;
  if (i < rows) {
    const T* mk = m + k * sm;
    const std::int64_t j0 = blockIdx.y * columns_per_block;
    const std::int64_t j1 = j0 + columns_per_block < cols ? j0 + columns_per_block : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      const double x = to_double(mk[i + j * ld]);
      const double ax = fabs(x);
      abs_sum += ax;
      squares += x * x;
      nonfinite += isfinite(x) ? 0.0 : 1.0;
      if (i == j) {
        abs_minus_identity += fabs(x - 1.0);
        trace += x;
      } else {
        abs_minus_identity += ax;
        off_diagonal += ax;
      }
    }
    if (row_abs) atomicAdd(row_abs + k * rows + i, abs_sum);
    if (row_abs_minus_identity) atomicAdd(row_abs_minus_identity + k * rows + i, abs_minus_identity);
    if (row_off_diagonal) atomicAdd(row_off_diagonal + k * rows + i, off_diagonal);
  }
  double* sums = member_sums + k * MemberSums::kCount;
  squares = block_reduce(squares, Sum{});
  if (threadIdx.x == 0 && squares != 0.0) atomicAdd(sums + MemberSums::kSquares, squares);
  __syncthreads();
  nonfinite = block_reduce(nonfinite, Sum{});
  if (threadIdx.x == 0 && nonfinite != 0.0) atomicAdd(sums + MemberSums::kNonfinite, nonfinite);
  __syncthreads();
  trace = block_reduce(trace, Sum{});
  if (threadIdx.x == 0 && trace != 0.0) atomicAdd(sums + MemberSums::kTrace, trace);
}

// One block per member: maxima of the row sums, the Gershgorin bounds, and the per-member outputs.
template <class T>
__global__ void reduction_finish_kernel(const T* m, std::int64_t ld, std::int64_t sm, std::int64_t rows,
                                        const double* row_abs, const double* row_abs_minus_identity,
                                        const double* row_off_diagonal, const double* member_sums,
                                        ReductionOutputs out, std::int64_t first) {
  const std::int64_t k = first + blockIdx.x;
  double max_abs = 0.0, max_abs_minus_identity = 0.0, lower = INFINITY, upper = -INFINITY;  // row sums are >= 0
  bool nan_abs = false, nan_abs_minus_identity = false, nan_gershgorin = false;
  for (std::int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
    if (row_abs) {
      const double r = row_abs[k * rows + i];
      nan_abs |= isnan(r);
      max_abs = fmax(max_abs, r);
    }
    if (row_abs_minus_identity) {
      const double r = row_abs_minus_identity[k * rows + i];
      nan_abs_minus_identity |= isnan(r);
      max_abs_minus_identity = fmax(max_abs_minus_identity, r);
    }
    if (row_off_diagonal) {
      const double r = row_off_diagonal[k * rows + i];
      const double d = to_double(m[k * sm + i + i * ld]);
      nan_gershgorin |= isnan(r) || isnan(d);
      lower = fmin(lower, d - r);
      upper = fmax(upper, d + r);
    }
  }
  // fmax/fmin drop NaN, so it is carried separately: a NaN entry must give a NaN result.
  max_abs = block_reduce(max_abs, Max{});
  __syncthreads();
  max_abs_minus_identity = block_reduce(max_abs_minus_identity, Max{});
  __syncthreads();
  lower = block_reduce(lower, Min{});
  __syncthreads();
  upper = block_reduce(upper, Max{});
  nan_abs = __syncthreads_or(nan_abs);
  nan_abs_minus_identity = __syncthreads_or(nan_abs_minus_identity);
  nan_gershgorin = __syncthreads_or(nan_gershgorin);
  if (threadIdx.x != 0) return;
  const double nan_value = nan("");
  const double* sums = member_sums + k * MemberSums::kCount;
  if (out.max_abs_row_sum) out.max_abs_row_sum[k] = nan_abs ? nan_value : max_abs;
  if (out.max_abs_row_sum_minus_identity)
    out.max_abs_row_sum_minus_identity[k] = nan_abs_minus_identity ? nan_value : max_abs_minus_identity;
  if (out.gershgorin_lower) out.gershgorin_lower[k] = nan_gershgorin ? nan_value : lower;
  if (out.gershgorin_upper) out.gershgorin_upper[k] = nan_gershgorin ? nan_value : upper;
  if (out.frobenius) out.frobenius[k] = sqrt(sums[MemberSums::kSquares]);
  if (out.nonfinite) out.nonfinite[k] = sums[MemberSums::kNonfinite];
  if (out.trace) out.trace[k] = sums[MemberSums::kTrace];
}

template <class T>
__global__ void divide_elementwise_kernel(const T* c, std::int64_t ldc, std::int64_t sc, T* m, std::int64_t ldm,
                                          std::int64_t sm, std::int64_t rows, std::int64_t cols) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const T* ck = c + blockIdx.z * sc;
  T* mk = m + blockIdx.z * sm;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j)
      mk[i + j * ldm] = from_double<T>(to_double(mk[i + j * ldm]) / to_double(ck[i + j * ldc]));
  }
}

__global__ void power_kernel(double* v, std::int64_t count, double power) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i < count) v[i] = pow(v[i], power);
}

// ---- verification kernels (double only) -----------------------------------------------------------

// y_i = sum_j |m_ij| x_j: one thread per row, the column loop reads down coalesced columns.
__global__ void abs_gemv_n_kernel(const double* m, std::int64_t ld, std::int64_t sm, const double* x, std::int64_t sx,
                                  double* y, std::int64_t sy, std::int64_t rows, std::int64_t cols, bool accumulate) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const double* mk = m + blockIdx.z * sm;
  const double* xk = x + blockIdx.z * sx;
  double s = 0.0;
  for (std::int64_t j = 0; j < cols; ++j) s = fma(fabs(mk[i + j * ld]), xk[j], s);
  double* yk = y + blockIdx.z * sy;
  yk[i] = accumulate ? yk[i] + s : s;
}

// y_j = sum_i |m_ij| x_i: one block per column j (blockIdx.x), a block reduction over its rows.
__global__ void abs_gemv_t_kernel(const double* m, std::int64_t ld, std::int64_t sm, const double* x, std::int64_t sx,
                                  double* y, std::int64_t sy, std::int64_t rows, bool accumulate) {
  const std::int64_t j = blockIdx.x;
  const double* col = m + blockIdx.z * sm + j * ld;
  const double* xk = x + blockIdx.z * sx;
  double s = 0.0;
  for (std::int64_t i = threadIdx.x; i < rows; i += blockDim.x) s = fma(fabs(col[i]), xk[i], s);
  s = block_reduce(s, Sum{});
  if (threadIdx.x == 0) {
    double* yk = y + blockIdx.z * sy;
    yk[j] = accumulate ? yk[j] + s : s;
  }
}

struct SlicePointers {
  double* p[kMaxSlices];
  std::int64_t ld[kMaxSlices];
  std::int64_t stride[kMaxSlices];
};

// One thread per line (row or column) of one member: E with 2^(E-1) <= max|m| < 2^E (INT_MIN for a line
// of zeros; INT_MAX when the line holds a non-finite entry).
__global__ void line_exponent_kernel(const double* m, std::int64_t ld, std::int64_t sm, std::int64_t rows,
                                     std::int64_t cols, bool by_rows, int* line_exponent) {
  const std::int64_t l = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t lines = by_rows ? rows : cols, length = by_rows ? cols : rows;
  if (l >= lines) return;
  const double* mk = m + blockIdx.z * sm;
  double mx = 0.0;
  bool finite = true;
  for (std::int64_t t = 0; t < length; ++t) {
    const double v = by_rows ? mk[l + t * ld] : mk[t + l * ld];
    finite = finite && isfinite(v);
    mx = fmax(mx, fabs(v));
  }
  int e = INT_MIN;
  if (!finite) e = INT_MAX;
  else if (mx > 0.0) frexp(mx, &e);
  line_exponent[blockIdx.z * lines + l] = e;
}

// One block per member: the smallest exponent over the nonzero lines, NaN if any line is non-finite.
__global__ void min_exponent_kernel(const int* line_exponent, std::int64_t lines, double* out, std::int64_t first) {
  const std::int64_t k = first + blockIdx.x;
  double lowest = INFINITY;
  bool nonfinite = false;
  for (std::int64_t l = threadIdx.x; l < lines; l += blockDim.x) {
    const int e = line_exponent[k * lines + l];
    nonfinite |= e == INT_MAX;
    if (e != INT_MIN && e != INT_MAX) lowest = fmin(lowest, static_cast<double>(e));
  }
  lowest = block_reduce(lowest, Min{});
  nonfinite = __syncthreads_or(nonfinite);
  if (threadIdx.x == 0) out[k] = nonfinite ? nan("") : lowest;
}

// sigma + r lies in [sigma/2, 2 sigma] (|r| <= sigma/2 by construction), so fl(sigma + r) - sigma and
// r - q are exact; the _rn intrinsics keep nvcc from contracting or reassociating them.
__global__ void slice_kernel(const double* m, std::int64_t ld, std::int64_t sm, double* rem, std::int64_t ldr,
                             std::int64_t sr, SlicePointers slices, int count, std::int64_t rows, std::int64_t cols,
                             bool by_rows, int bits, const int* line_exponent) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const std::int64_t k = blockIdx.z, lines = by_rows ? rows : cols;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      const int e = line_exponent[k * lines + (by_rows ? i : j)];
      double r = m[k * sm + i + j * ld];
      for (int s = 0; s < count; ++s) {
        double q = 0.0;
        if (e != INT_MIN && e != INT_MAX) {
          const double sigma = ldexp(1.0, e - (s + 1) * bits + 53);
          q = __dsub_rn(__dadd_rn(sigma, r), sigma);
        }
        r = __dsub_rn(r, q);
        slices.p[s][k * slices.stride[s] + i + j * slices.ld[s]] = q;
      }
      rem[k * sr + i + j * ldr] = r;
    }
  }
}

__global__ void two_sum_kernel(double* hi, std::int64_t ldh, std::int64_t sh, double* lo, std::int64_t ldl,
                               std::int64_t sl, const double* term, std::int64_t ldt, std::int64_t st,
                               std::int64_t rows, std::int64_t cols) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows) return;
  const std::int64_t k = blockIdx.z;
  for (std::int64_t j0 = blockIdx.y * static_cast<std::int64_t>(kColumnsPerBlock); j0 < cols;
       j0 += static_cast<std::int64_t>(gridDim.y) * kColumnsPerBlock) {
    const std::int64_t j1 = j0 + kColumnsPerBlock < cols ? j0 + kColumnsPerBlock : cols;
    for (std::int64_t j = j0; j < j1; ++j) {
      double& h = hi[k * sh + i + j * ldh];
      const double t = term[k * st + i + j * ldt];
      const double s = __dadd_rn(h, t);  // Knuth's TwoSum: s + e == h + t exactly
      const double bp = __dsub_rn(s, h);
      const double e = __dadd_rn(__dsub_rn(h, __dsub_rn(s, bp)), __dsub_rn(t, bp));
      h = s;
      double& l = lo[k * sl + i + j * ldl];
      l = __dadd_rn(l, e);
    }
  }
}

// One thread per column j of one member: max over i >= j of |m_ij - m_ji| in double, and of |m_ij|, |m_ji|
// (NaN for both where an entry is not finite).
template <class T>
__global__ void asymmetry_line_kernel(const T* m, std::int64_t ld, std::int64_t sm, std::int64_t n,
                                      double* line_max, double* line_magnitude) {
  const std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const T* mk = m + blockIdx.z * sm;
  double worst = 0.0, largest = 0.0;
  bool nonfinite = false;
  for (std::int64_t i = j; i < n; ++i) {
    const double lower = to_double(mk[i + j * ld]), upper = to_double(mk[j + i * ld]);
    nonfinite |= !isfinite(lower) || !isfinite(upper);
    worst = fmax(worst, fabs(lower - upper));
    largest = fmax(largest, fmax(fabs(lower), fabs(upper)));
  }
  line_max[blockIdx.z * n + j] = nonfinite ? nan("") : worst;
  line_magnitude[blockIdx.z * n + j] = nonfinite ? nan("") : largest;
}

__global__ void line_max_kernel(const double* line_max, std::int64_t lines, double* out, std::int64_t first) {
  const std::int64_t k = first + blockIdx.x;
  double worst = 0.0;
  bool nan_seen = false;
  for (std::int64_t l = threadIdx.x; l < lines; l += blockDim.x) {
    const double v = line_max[k * lines + l];
    nan_seen |= isnan(v);
    worst = fmax(worst, v);
  }
  worst = block_reduce(worst, Max{});
  nan_seen = __syncthreads_or(nan_seen);
  if (threadIdx.x == 0) out[k] = nan_seen ? nan("") : worst;
}

__global__ void finish_cholesky_kernel(double* m, std::int64_t ld, std::int64_t sm, std::int64_t n, const int* info,
                                       double* out) {
  const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t k = blockIdx.z;
  if (blockIdx.y == 0 && i == 0) out[k] = info[k] == 0 ? 1.0 : 0.0;
  if (i >= n) return;
  double* mk = m + k * sm;
  for (std::int64_t j = blockIdx.y; j < i; j += gridDim.y) mk[i + j * ld] = 0.0;
}

unsigned blocks_for(std::int64_t count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

MemberScalars member_scalars(std::span<const double> alpha, std::span<const double> beta,
                             std::span<const double> gamma, std::int64_t first, std::int64_t count) {
  MemberScalars s{};
  const std::span<const double> spans[3] = {alpha, beta, gamma};
  for (int t = 0; t < 3; ++t)
    for (std::int64_t k = 0; k < count; ++k)
      s.v[t][k] = spans[t].empty() ? 0.0 : spans[t][spans[t].size() == 1 ? 0 : first + k];
  return s;
}

}  // namespace

void launch_convert(const TypedView& src, const TypedView& dst, cudaStream_t stream) {
  with_type(src.dtype, [&](auto s_tag) {
    with_type(dst.dtype, [&](auto d_tag) {
      using S = decltype(s_tag);
      using D = decltype(d_tag);
      // In the kernel, "rows" runs along threads: pick the dimension that is contiguous in the
      // destination so that stores coalesce (a row-major destination is the transposed problem).
      const bool swap = dst.layout == Layout::row_major;
      const Layout s_layout = swap ? (src.layout == Layout::col_major ? Layout::row_major : Layout::col_major)
                                   : src.layout;
      const std::int64_t rows = swap ? src.cols : src.rows;
      const std::int64_t cols = swap ? src.rows : src.cols;
      const std::int64_t s_stride = src.batch == 1 ? 0 : src.stride;
      const std::int64_t d_stride = dst.batch == 1 ? 0 : dst.stride;
      for_member_chunks(dst.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
        convert_kernel<S, D><<<element_grid(rows, cols, count), kThreads, 0, stream>>>(
            member<S>(src.data, s_stride, first), s_layout, src.ld, s_stride, member<D>(dst.data, d_stride, first),
            Layout::col_major, dst.ld, d_stride, rows, cols);
        PE_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

void launch_axpby_identity(DType dtype, std::span<const double> alpha, const Mat* a, std::span<const double> beta,
                           const Mat* b, std::span<const double> gamma, Mat& c, cudaStream_t stream) {
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t sa = a ? member_stride(*a) : 0, sb = b ? member_stride(*b) : 0, sc = member_stride(c);
    for_member_chunks(c.batch, kMembersPerLaunch, [&](std::int64_t first, std::int64_t count) {
      axpby_identity_kernel<T><<<element_grid(c.rows, c.cols, count), kThreads, 0, stream>>>(
          a ? member<T>(static_cast<const void*>(a->data), sa, first) : nullptr, a ? a->ld : 0, sa,
          b ? member<T>(static_cast<const void*>(b->data), sb, first) : nullptr, b ? b->ld : 0, sb,
          member<T>(c.data, sc, first), c.ld, sc, c.rows, c.cols,
          member_scalars(a ? alpha : std::span<const double>{}, b ? beta : std::span<const double>{}, gamma, first,
                         count));
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

void launch_diag_scale(DType dtype, const Mat* left, Mat& m, const Mat* right, cudaStream_t stream) {
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t sl = left ? member_stride(*left) : 0, sr = right ? member_stride(*right) : 0;
    const std::int64_t sm = member_stride(m);
    for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      diag_scale_kernel<T><<<element_grid(m.rows, m.cols, count), kThreads, 0, stream>>>(
          left ? member<T>(static_cast<const void*>(left->data), sl, first) : nullptr, sl,
          member<T>(m.data, sm, first), m.ld, sm,
          right ? member<T>(static_cast<const void*>(right->data), sr, first) : nullptr, sr, m.rows, m.cols);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

void launch_symmetrize(DType dtype, Mat& m, cudaStream_t stream) {
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t tiles = (m.rows + kTile - 1) / kTile;
    const std::int64_t pairs = tiles * (tiles + 1) / 2;
    const std::int64_t sm = member_stride(m);
    for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      symmetrize_kernel<T><<<dim3(static_cast<unsigned>(pairs), 1, static_cast<unsigned>(count)),
                             dim3(kTile, kTileRowsPerPass), 0, stream>>>(member<T>(m.data, sm, first), m.rows, m.ld,
                                                                         sm);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

void launch_extract_diagonal(DType dtype, const Mat& m, Mat& out, cudaStream_t stream) {
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t sm = member_stride(m), so = member_stride(out);
    for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      extract_diagonal_kernel<T><<<dim3(blocks_for(m.rows), 1, static_cast<unsigned>(count)), kThreads, 0, stream>>>(
          member<T>(static_cast<const void*>(m.data), sm, first), m.ld, sm, member<T>(out.data, so, first), so,
          m.rows);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

std::int64_t reduction_scratch_doubles(const Mat& m) { return (3 * m.rows + MemberSums::kCount) * m.batch; }

void launch_reductions(DType dtype, const Mat& m, const ReductionOutputs& out, double* scratch, cudaStream_t stream) {
  const std::int64_t rows = m.rows, batch = m.batch;
  PE_CUDA_TRY(cudaMemsetAsync(scratch, 0, sizeof(double) * reduction_scratch_doubles(m), stream));
  double* row_abs = out.max_abs_row_sum ? scratch : nullptr;
  double* row_abs_minus_identity = out.max_abs_row_sum_minus_identity ? scratch + rows * batch : nullptr;
  double* row_off_diagonal = out.gershgorin_lower || out.gershgorin_upper ? scratch + 2 * rows * batch : nullptr;
  double* member_sums = scratch + 3 * rows * batch;
  // Enough column chunks to fill the GPU even for a single member, few enough atomics per row.
  constexpr std::int64_t kColumns = 256;
  const std::int64_t chunks = std::min<std::int64_t>((m.cols + kColumns - 1) / kColumns, kMaxGridYZ);
  const std::int64_t columns_per_block = (m.cols + chunks - 1) / chunks;
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t sm = member_stride(m);
    const T* data = static_cast<const T*>(m.data);
    for_member_chunks(batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      const auto at = [first, rows](double* p) { return p ? p + first * rows : nullptr; };
      reduction_pass_kernel<T><<<dim3(blocks_for(rows), static_cast<unsigned>(chunks), static_cast<unsigned>(count)),
                                 kThreads, 0, stream>>>(data + first * sm, m.ld, sm, rows, m.cols, columns_per_block,
                                                        at(row_abs), at(row_abs_minus_identity), at(row_off_diagonal),
                                                        member_sums + first * MemberSums::kCount);
      PE_CUDA_CHECK_LAUNCH();
    });
    for_member_chunks(batch, std::int64_t{1} << 30, [&](std::int64_t first, std::int64_t count) {
      reduction_finish_kernel<T><<<static_cast<unsigned>(count), kThreads, 0, stream>>>(
          data, m.ld, sm, rows, row_abs, row_abs_minus_identity, row_off_diagonal, member_sums, out, first);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

void launch_divide_elementwise(DType dtype, const Mat& c, Mat& m, cudaStream_t stream) {
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t sc = member_stride(c), sm = member_stride(m);
    for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      divide_elementwise_kernel<T><<<element_grid(m.rows, m.cols, count), kThreads, 0, stream>>>(
          member<T>(static_cast<const void*>(c.data), sc, first), c.ld, sc, member<T>(m.data, sm, first), m.ld, sm,
          m.rows, m.cols);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
}

void launch_power(double* v, std::int64_t count, double power, cudaStream_t stream) {
  power_kernel<<<blocks_for(count), kThreads, 0, stream>>>(v, count, power);
  PE_CUDA_CHECK_LAUNCH();
}

void launch_abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y, cudaStream_t stream) {
  const std::int64_t sm = member_stride(m), sx = member_stride(x), sy = member_stride(y);
  const auto* md = static_cast<const double*>(m.data);
  const auto* xd = static_cast<const double*>(x.data);
  auto* yd = static_cast<double*>(y.data);
  for_member_chunks(y.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
    const double* mf = md + (m.batch == 1 ? 0 : first * sm);
    if (op == Op::N) {
      abs_gemv_n_kernel<<<dim3(blocks_for(m.rows), 1, static_cast<unsigned>(count)), kThreads, 0, stream>>>(
          mf, m.ld, sm, xd + first * sx, sx, yd + first * sy, sy, m.rows, m.cols, beta != 0.0);
    } else {
      abs_gemv_t_kernel<<<dim3(static_cast<unsigned>(m.cols), 1, static_cast<unsigned>(count)), kThreads, 0, stream>>>(
          mf, m.ld, sm, xd + first * sx, sx, yd + first * sy, sy, m.rows, beta != 0.0);
    }
    PE_CUDA_CHECK_LAUNCH();
  });
}

void launch_split_slices(const Mat& m, bool by_rows, int bits, const Mat* slices, int slice_count, Mat& remainder,
                         int* line_exponent, double* exponent_out, cudaStream_t stream) {
  if (slice_count > kMaxSlices)
    throw pe::Error("cuda backend split_slices: " + std::to_string(slice_count) + " slices, at most " +
                    std::to_string(kMaxSlices));
  const std::int64_t lines = by_rows ? m.rows : m.cols;
  const std::int64_t sm = member_stride(m), sr = member_stride(remainder);
  for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
    const double* md = member<double>(static_cast<const void*>(m.data), sm, first);
    int* exponents = line_exponent + first * lines;
    line_exponent_kernel<<<dim3(blocks_for(lines), 1, static_cast<unsigned>(count)), kThreads, 0, stream>>>(
        md, m.ld, sm, m.rows, m.cols, by_rows, exponents);
    PE_CUDA_CHECK_LAUNCH();
    min_exponent_kernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(exponents, lines, exponent_out + first,
                                                                              0);
    PE_CUDA_CHECK_LAUNCH();
    SlicePointers pointers{};
    for (int s = 0; s < slice_count; ++s) {
      pointers.stride[s] = member_stride(slices[s]);
      pointers.p[s] = member<double>(slices[s].data, pointers.stride[s], first);
      pointers.ld[s] = slices[s].ld;
    }
    slice_kernel<<<element_grid(m.rows, m.cols, count), kThreads, 0, stream>>>(
        md, m.ld, sm, member<double>(remainder.data, sr, first), remainder.ld, sr, pointers, slice_count, m.rows,
        m.cols, by_rows, bits, exponents);
    PE_CUDA_CHECK_LAUNCH();
  });
}

void launch_two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term, cudaStream_t stream) {
  for_member_chunks(hi.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
    two_sum_kernel<<<element_grid(hi.rows, hi.cols, count), kThreads, 0, stream>>>(
        member<double>(hi.data, member_stride(hi), first), hi.ld, member_stride(hi),
        member<double>(lo.data, member_stride(lo), first), lo.ld, member_stride(lo),
        member<double>(static_cast<const void*>(term.data), member_stride(term), first), term.ld, member_stride(term),
        hi.rows, hi.cols);
    PE_CUDA_CHECK_LAUNCH();
  });
}

void launch_max_asymmetry(DType dtype, const Mat& m, double* line_scratch, double* out, double* magnitude_out,
                          cudaStream_t stream) {
  const std::int64_t sm = member_stride(m);
  double* line_magnitude = line_scratch + m.rows * m.batch;
  with_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
      asymmetry_line_kernel<T><<<dim3(blocks_for(m.rows), 1, static_cast<unsigned>(count)), kThreads, 0, stream>>>(
          member<T>(static_cast<const void*>(m.data), sm, first), m.ld, sm, m.rows, line_scratch + first * m.rows,
          line_magnitude + first * m.rows);
      PE_CUDA_CHECK_LAUNCH();
    });
  });
  line_max_kernel<<<static_cast<unsigned>(m.batch), kThreads, 0, stream>>>(line_scratch, m.rows, out, 0);
  PE_CUDA_CHECK_LAUNCH();
  if (magnitude_out) {
    line_max_kernel<<<static_cast<unsigned>(m.batch), kThreads, 0, stream>>>(line_magnitude, m.rows, magnitude_out, 0);
    PE_CUDA_CHECK_LAUNCH();
  }
}

void launch_finish_cholesky(Mat& m, const int* info, double* out, cudaStream_t stream) {
  const std::int64_t sm = member_stride(m);
  for_member_chunks(m.batch, kMaxGridYZ, [&](std::int64_t first, std::int64_t count) {
    const unsigned column_blocks = static_cast<unsigned>(std::min<std::int64_t>(m.cols, 256));
    finish_cholesky_kernel<<<dim3(blocks_for(m.rows), column_blocks, static_cast<unsigned>(count)), kThreads, 0,
                             stream>>>(member<double>(m.data, sm, first), m.ld, sm, m.rows, info + first, out + first);
    PE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace pe::detail::gpu
