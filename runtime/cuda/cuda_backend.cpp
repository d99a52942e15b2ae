#include "cuda_backend.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cuda_check.hpp"
#include "kernels.hpp"
#include "pe/types.hpp"
#include "shape_checks.hpp"

namespace pe::detail {

std::unique_ptr<Backend> make_cuda_backend(DType storage, ComputeMode compute, void* stream) {
  return std::make_unique<gpu::CudaBackend>(storage, compute, static_cast<cudaStream_t>(stream));
}

namespace gpu {
namespace {

// cuBLASLt's recommendation for Hopper; enough for every algorithm it offers up to sm_90.
constexpr std::size_t kLtWorkspaceBytes = std::size_t{32} << 20;
constexpr int kMaxSlots = 1024;

cublasOperation_t to_cublas(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

TypedView view_of(const Mat& m, DType dtype) {
  return {m.data, dtype, Layout::col_major, m.rows, m.cols, m.ld, m.batch, m.stride};
}
TypedView view_of(const HostMat& m) { return {m.data, m.dtype, m.layout, m.rows, m.cols, m.ld, m.batch, m.stride}; }

// A host view may hold device memory when the public API is called with device = cuda.
bool is_device_memory(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();  // an unregistered host pointer on old drivers: clear, treat as host
    return false;
  }
  return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}

// Copies `batch` members of an inner x outer block (inner contiguous) between pitched layouts,
// in one 2D copy when the members are evenly packed on both sides.
void copy_members_2d(void* dst, std::int64_t dst_ld, std::int64_t dst_stride, const void* src, std::int64_t src_ld,
                     std::int64_t src_stride, std::int64_t inner, std::int64_t outer, std::int64_t batch,
                     std::size_t element_bytes, cudaStream_t stream) {
  const bool merged = batch == 1 || (dst_stride == dst_ld * outer && src_stride == src_ld * outer);
  const std::int64_t height = merged ? outer * batch : outer;
  const std::int64_t copies = merged ? 1 : batch;
  for (std::int64_t k = 0; k < copies; ++k)
    PE_CUDA_TRY(cudaMemcpy2DAsync(static_cast<char*>(dst) + k * dst_stride * element_bytes, dst_ld * element_bytes,
                                  static_cast<const char*>(src) + k * src_stride * element_bytes,
                                  src_ld * element_bytes, inner * element_bytes, height, cudaMemcpyDefault, stream));
}

void check_slot(const char* op, int slot) {
  if (slot < 0 || slot >= kMaxSlots)
    throw pe::Error(std::string("cuda backend ") + op + ": argument 'slot' is " + std::to_string(slot) +
                    ", expected 0 <= slot < " + std::to_string(kMaxSlots));
}

Mat packed(double* data, std::int64_t rows, std::int64_t cols, std::int64_t batch = 1) {
  return {data, rows, cols, rows, batch, rows * cols};
}

Mat member_of(const Mat& m, std::int64_t k, std::size_t element_bytes) {
  Mat one = m;
  if (m.batch > 1) one.data = static_cast<char*>(m.data) + k * m.stride * element_bytes;
  one.batch = 1;
  one.stride = m.rows * m.cols;
  return one;
}

// A buffer a captured graph holds a pointer to must not move, and an allocation inside a capture would
// belong to the graph: growth during a capture is refused with what to do instead.
void refuse_growth_in_capture(cudaStream_t stream, const char* what) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  PE_CUDA_TRY(cudaStreamIsCapturing(stream, &status));
  if (status != cudaStreamCaptureStatusNone)
    throw pe::Error(std::string("cuda backend: ") + what + " would grow during a stream capture; run one enqueue " +
                    "on the plan outside the capture first (it sizes every buffer)");
}

}  // namespace

// ---- ScratchBuffer --------------------------------------------------------------------------------

ScratchBuffer::~ScratchBuffer() {
  if (ptr_) (void)cudaFree(ptr_);
}

void* ScratchBuffer::ensure(std::size_t bytes, cudaStream_t stream) {
  if (bytes <= bytes_) return ptr_;
  refuse_growth_in_capture(stream, "a scratch buffer");
  release(stream);
  PE_CUDA_TRY(cudaMallocAsync(&ptr_, bytes, stream));
  bytes_ = bytes;
  return ptr_;
}

void ScratchBuffer::release(cudaStream_t stream) noexcept {
  if (ptr_) (void)cudaFreeAsync(ptr_, stream);
  ptr_ = nullptr;
  bytes_ = 0;
}

// ---- cuBLASLt plans -------------------------------------------------------------------------------

struct CudaBackend::LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

void CudaBackend::LtPlanDeleter::operator()(LtPlan* plan) const noexcept {
  for (cublasLtMatrixLayout_t layout : {plan->a, plan->b, plan->c, plan->d})
    if (layout) (void)cublasLtMatrixLayoutDestroy(layout);
  if (plan->desc) (void)cublasLtMatmulDescDestroy(plan->desc);
  delete plan;
}

void CudaBackend::matmul(const LtTypes& types, Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b,
                         double beta, const Mat& c, Mat& d) {
  run_pending_reductions();
  const std::int64_t es = static_cast<std::int64_t>(element_size(types.data));
  const GemmDims dims = check_gemm(op_a, op_b, a, b, d, es);
  if (c.rows != d.rows || c.cols != d.cols || (c.batch != d.batch && c.batch != 1))
    throw pe::Error("cuda backend matmul: argument 'c' does not match the output shape");
  const auto stride_of = [&](const Mat& m) { return m.batch == 1 ? std::int64_t{0} : m.stride; };
  GemmKey key;
  key.op_a = op_a;
  key.op_b = op_b;
  key.m = dims.m;
  key.n = dims.n;
  key.k = dims.k;
  key.lda = a.ld;
  key.ldb = b.ld;
  key.ldc = c.ld;
  key.ldd = d.ld;
  key.batch = d.batch;
  key.stride_a = stride_of(a);
  key.stride_b = stride_of(b);
  key.stride_c = stride_of(c);
  key.stride_d = stride_of(d);
  key.types = types;
  key.align_a = member_alignment(a.data, key.stride_a * es, d.batch);
  key.align_b = member_alignment(b.data, key.stride_b * es, d.batch);
  key.align_c = member_alignment(c.data, key.stride_c * es, d.batch);
  key.align_d = member_alignment(d.data, key.stride_d * es, d.batch);

  auto found = plans_.find(key);
  if (found == plans_.end()) {
    std::unique_ptr<LtPlan, LtPlanDeleter> plan(new LtPlan);
    PE_CUBLAS_TRY(cublasLtMatmulDescCreate(&plan->desc, types.compute, types.scale));
    const cublasOperation_t ta = to_cublas(op_a), tb = to_cublas(op_b);
    PE_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    PE_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    const auto make_layout = [&](cublasLtMatrixLayout_t& layout, std::int64_t rows, std::int64_t cols,
                                 std::int64_t ld, std::int64_t stride) {
      PE_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&layout, types.data, static_cast<std::uint64_t>(rows),
                                               static_cast<std::uint64_t>(cols), ld));
      if (key.batch > 1) {
        const std::int32_t count = static_cast<std::int32_t>(key.batch);
        PE_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                       sizeof(count)));
        PE_CUBLAS_TRY(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                       sizeof(stride)));
      }
    };
    make_layout(plan->a, a.rows, a.cols, a.ld, key.stride_a);
    make_layout(plan->b, b.rows, b.cols, b.ld, key.stride_b);
    make_layout(plan->c, c.rows, c.cols, c.ld, key.stride_c);
    make_layout(plan->d, d.rows, d.cols, d.ld, key.stride_d);

    cublasLtMatmulPreference_t preference = nullptr;
    PE_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&preference));
    cublasLtMatmulHeuristicResult_t result{};
    int found_count = 0;
    try {
      const std::uint64_t workspace = kLtWorkspaceBytes;
      PE_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                         &workspace, sizeof(workspace)));
      const std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint32_t> alignments[] = {
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
          {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_d}};
      for (const auto& [attribute, value] : alignments)
        PE_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value)));
      PE_CUBLAS_TRY(cublasLtMatmulAlgoGetHeuristic(lt_, plan->desc, plan->a, plan->b, plan->c, plan->d, preference,
                                                   1, &result, &found_count));
    } catch (...) {
      (void)cublasLtMatmulPreferenceDestroy(preference);
      throw;
    }
    (void)cublasLtMatmulPreferenceDestroy(preference);
    if (found_count < 1)
      throw pe::Error("cuda backend gemm: cuBLASLt offers no algorithm for m=" + std::to_string(key.m) +
                      " n=" + std::to_string(key.n) + " k=" + std::to_string(key.k) +
                      " batch=" + std::to_string(key.batch));
    plan->algo = result.algo;
    found = plans_.emplace(key, std::move(plan)).first;
  }
  const LtPlan& plan = *found->second;
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const bool double_scale = types.scale == CUDA_R_64F;
  PE_CUBLAS_TRY(cublasLtMatmul(lt_, plan.desc, double_scale ? static_cast<const void*>(&alpha) : &alpha_f, a.data,
                               plan.a, b.data, plan.b, double_scale ? static_cast<const void*>(&beta) : &beta_f,
                               c.data, plan.c, d.data, plan.d, &plan.algo, lt_workspace_, kLtWorkspaceBytes,
                               stream_));
}

// ---- construction ---------------------------------------------------------------------------------

CudaBackend::CudaBackend(DType storage, ComputeMode compute, cudaStream_t stream)
    : storage_(storage), compute_(compute), types_(lt_types(storage, compute)), stream_(stream) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    (void)cudaGetLastError();
    throw pe::Error(std::string("cuda backend: no usable CUDA device (cudaGetDeviceCount: ") +
                    cudaGetErrorName(status) + ", " + std::to_string(devices) + " devices)");
  }
  try {
    PE_CUBLAS_TRY(cublasLtCreate(&lt_));
    PE_CUDA_TRY(cudaMalloc(&lt_workspace_, kLtWorkspaceBytes));
  } catch (...) {
    if (lt_workspace_) (void)cudaFree(lt_workspace_);
    if (lt_) (void)cublasLtDestroy(lt_);
    throw;
  }
}

CudaBackend::~CudaBackend() {
  // Work still queued may use these buffers: wait for it, then free everything.
  (void)cudaStreamSynchronize(stream_);
  plans_.clear();
  for (ScratchBuffer* buffer : {&reduction_scratch_, &staging_, &wide_, &solver_work_, &verify_scratch_})
    buffer->release(stream_);
  (void)cudaStreamSynchronize(stream_);
  for (void* p : allocations_) (void)cudaFree(p);
  if (slots_) (void)cudaFree(slots_);
  if (posted_slots_) (void)cudaFreeHost(posted_slots_);
  if (lt_workspace_) (void)cudaFree(lt_workspace_);
  if (solver_) (void)cusolverDnDestroy(solver_);
  if (lt_) (void)cublasLtDestroy(lt_);
}

Mat CudaBackend::allocate(std::int64_t rows, std::int64_t cols, std::int64_t batch) {
  if (rows < 1 || cols < 1 || batch < 1)
    throw pe::Error("cuda backend allocate: shape " + std::to_string(rows) + " x " + std::to_string(cols) + " x " +
                    std::to_string(batch) + ", expected every dimension >= 1");
  const std::size_t bytes =
      static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * static_cast<std::size_t>(batch) *
      element_size(storage_);
  void* p = nullptr;
  PE_CUDA_TRY(cudaMalloc(&p, bytes));
  allocations_.push_back(p);
  return {p, rows, cols, rows, batch, rows * cols};
}

// ---- data movement --------------------------------------------------------------------------------

void CudaBackend::upload(const HostMat& src, Mat& dst) {
  run_pending_reductions();
  check_host_mat("upload", "src", src);
  check_mat("upload", "dst", dst);
  check_same_shape("upload", "src", src, "dst", dst);
  if (is_device_memory(src.data)) {
    launch_convert(view_of(src), view_of(dst, storage_), stream_);
    return;
  }
  const bool col = src.layout == Layout::col_major;
  const std::int64_t inner = col ? src.rows : src.cols, outer = col ? src.cols : src.rows;
  const std::size_t es = element_size(src.dtype);
  if (src.dtype == storage_ && col) {  // no conversion: straight into place
    copy_members_2d(dst.data, dst.ld, dst.stride, src.data, src.ld, src.stride, inner, outer, src.batch, es, stream_);
    return;
  }
  void* stage = staging_.ensure(static_cast<std::size_t>(inner * outer * src.batch) * es, stream_);
  copy_members_2d(stage, inner, inner * outer, src.data, src.ld, src.stride, inner, outer, src.batch, es, stream_);
  TypedView staged = view_of(src);
  staged.data = stage;
  staged.ld = inner;
  staged.stride = inner * outer;
  launch_convert(staged, view_of(dst, storage_), stream_);
}

void CudaBackend::download(const Mat& src, const HostMat& dst) {
  run_pending_reductions();
  check_mat("download", "src", src);
  check_host_mat("download", "dst", dst);
  check_same_shape("download", "dst", dst, "src", src);
  if (is_device_memory(dst.data)) {
    launch_convert(view_of(src, storage_), view_of(dst), stream_);
    return;
  }
  const bool col = dst.layout == Layout::col_major;
  const std::int64_t inner = col ? dst.rows : dst.cols, outer = col ? dst.cols : dst.rows;
  const std::size_t es = element_size(dst.dtype);
  if (dst.dtype == storage_ && col) {
    copy_members_2d(dst.data, dst.ld, dst.stride, src.data, src.ld, src.stride, inner, outer, src.batch, es, stream_);
  } else {
    void* stage = staging_.ensure(static_cast<std::size_t>(inner * outer * dst.batch) * es, stream_);
    TypedView staged = view_of(dst);
    staged.data = stage;
    staged.ld = inner;
    staged.stride = inner * outer;
    launch_convert(view_of(src, storage_), staged, stream_);
    copy_members_2d(dst.data, dst.ld, dst.stride, stage, inner, inner * outer, inner, outer, dst.batch, es, stream_);
  }
  // The caller reads host memory after return (pinned memory would otherwise still be in flight).
  PE_CUDA_TRY(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(const Mat& src, Mat& dst) {
  run_pending_reductions();
  check_mat("copy", "src", src);
  check_mat("copy", "dst", dst);
  check_same_shape("copy", "src", src, "dst", dst);
  launch_convert(view_of(src, storage_), view_of(dst, storage_), stream_);
}

void CudaBackend::import_from(const Backend& from, const Mat& src, Mat& dst) {
  const auto* other = dynamic_cast<const CudaBackend*>(&from);
  if (other == nullptr)
    throw pe::Error("cuda backend import_from: the source backend is " + from.name() + ", expected cuda");
  if (other->stream_ != stream_)
    throw pe::Error("cuda backend import_from: the source backend runs on another stream (expected the same one)");
  run_pending_reductions();
  check_mat("import_from", "src", src);
  check_mat("import_from", "dst", dst);
  check_same_shape("import_from", "src", src, "dst", dst);
  launch_convert(view_of(src, other->storage_), view_of(dst, storage_), stream_);
}

// ---- products and elementwise ---------------------------------------------------------------------

void CudaBackend::gemm(Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b, double beta, Mat& c) {
  matmul(types_, op_a, op_b, alpha, a, b, beta, c, c);
}

void CudaBackend::axpby_identity(std::span<const double> alpha, const Mat* a, std::span<const double> beta,
                                 const Mat* b, std::span<const double> gamma, Mat& c) {
  run_pending_reductions();
  check_mat("axpby_identity", "c", c);
  if (a) {
    check_mat("axpby_identity", "a", *a);
    if (a->rows != c.rows || a->cols != c.cols) check_same_shape("axpby_identity", "a", *a, "c", c);
    check_batch_compatible("axpby_identity", "a", *a, c.batch);
    check_member_scalars("axpby_identity", "alpha", alpha, c.batch);
  }
  if (b) {
    check_mat("axpby_identity", "b", *b);
    if (b->rows != c.rows || b->cols != c.cols) check_same_shape("axpby_identity", "b", *b, "c", c);
    check_batch_compatible("axpby_identity", "b", *b, c.batch);
    check_member_scalars("axpby_identity", "beta", beta, c.batch);
  }
  check_member_scalars("axpby_identity", "gamma", gamma, c.batch);
  launch_axpby_identity(storage_, alpha, a, beta, b, gamma, c, stream_);
}

void CudaBackend::scale(std::span<const double> s, Mat& m) {
  run_pending_reductions();
  check_mat("scale", "m", m);
  check_member_scalars("scale", "s", s, m.batch);
  const double zero = 0.0;
  launch_axpby_identity(storage_, s, &m, {}, nullptr, {&zero, 1}, m, stream_);
}

void CudaBackend::set_identity(std::span<const double> s, Mat& m) {
  run_pending_reductions();
  check_mat("set_identity", "m", m);
  check_member_scalars("set_identity", "s", s, m.batch);
  launch_axpby_identity(storage_, {}, nullptr, {}, nullptr, s, m, stream_);
}

void CudaBackend::add_diagonal(std::span<const double> shift, Mat& m) {
  run_pending_reductions();
  check_mat("add_diagonal", "m", m);
  check_square("add_diagonal", "m", m);
  check_member_scalars("add_diagonal", "shift", shift, m.batch);
  const double one = 1.0;
  launch_axpby_identity(storage_, {&one, 1}, &m, {}, nullptr, shift, m, stream_);
}

void CudaBackend::diag_scale(const Mat* left, Mat& m, const Mat* right) {
  run_pending_reductions();
  check_mat("diag_scale", "m", m);
  const auto check_vector = [&](const char* arg, const Mat* v, std::int64_t length) {
    if (!v) return;
    check_mat("diag_scale", arg, *v);
    if (v->rows != length || v->cols != 1)
      throw pe::Error(std::string("cuda backend diag_scale: argument '") + arg + "' is " + std::to_string(v->rows) +
                      " x " + std::to_string(v->cols) + ", expected " + std::to_string(length) + " x 1");
    check_batch_compatible("diag_scale", arg, *v, m.batch);
  };
  check_vector("left", left, m.rows);
  check_vector("right", right, m.cols);
  launch_diag_scale(storage_, left, m, right, stream_);
}

void CudaBackend::symmetrize(Mat& m) {
  run_pending_reductions();
  check_mat("symmetrize", "m", m);
  check_square("symmetrize", "m", m);
  launch_symmetrize(storage_, m, stream_);
}

void CudaBackend::extract_diagonal(const Mat& m, Mat& out) {
  run_pending_reductions();
  check_mat("extract_diagonal", "m", m);
  check_square("extract_diagonal", "m", m);
  check_mat("extract_diagonal", "out", out);
  if (out.rows != m.rows || out.cols != 1 || out.batch != m.batch)
    throw pe::Error("cuda backend extract_diagonal: argument 'out' is " + std::to_string(out.rows) + " x " +
                    std::to_string(out.cols) + " x " + std::to_string(out.batch) + ", expected " +
                    std::to_string(m.rows) + " x 1 x " + std::to_string(m.batch));
  launch_extract_diagonal(storage_, m, out, stream_);
}

// ---- reductions -----------------------------------------------------------------------------------

double* CudaBackend::slot_pointer(int slot, std::int64_t batch) {
  if (slot >= slot_capacity_ || batch > member_capacity_) {
    refuse_growth_in_capture(stream_, "the scalar slots");
    // Every slot at once: the buffer then grows only with the batch, which a plan's backend never changes, so
    // a captured graph's pointers into it stay valid after the warm-up run.
    const std::int64_t slots = kMaxSlots;
    const std::int64_t members = std::max<std::int64_t>({member_capacity_, batch, 1});
    double* grown = nullptr;
    PE_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void**>(&grown), sizeof(double) * slots * members, stream_));
    if (slots_) {  // keep what was written since the last fetch
      PE_CUDA_TRY(cudaMemcpy2DAsync(grown, sizeof(double) * members, slots_, sizeof(double) * member_capacity_,
                                    sizeof(double) * member_capacity_, slot_capacity_, cudaMemcpyDeviceToDevice,
                                    stream_));
      PE_CUDA_TRY(cudaFreeAsync(slots_, stream_));
    }
    slots_ = grown;
    slot_capacity_ = slots;
    member_capacity_ = members;
    slot_batch_.resize(static_cast<std::size_t>(slots), 0);
  }
  slot_batch_[static_cast<std::size_t>(slot)] = batch;
  return slots_ + slot * member_capacity_;
}

void CudaBackend::queue_reduction(const Mat& m, ReductionKind kind, int slot, int second_slot) {
  pending_.push_back({m, kind, slot, second_slot});
}

void CudaBackend::run_pending_reductions() {
  const auto same_matrix = [](const Mat& a, const Mat& b) {
    return a.data == b.data && a.rows == b.rows && a.cols == b.cols && a.ld == b.ld && a.batch == b.batch &&
           (a.batch == 1 || a.stride == b.stride);
  };
  std::vector<bool> done(pending_.size(), false);
  for (std::size_t first = 0; first < pending_.size(); ++first) {
    if (done[first]) continue;
    // One group: this matrix's requests, each kind once (a repeated kind waits for the next group).
    const Mat m = pending_[first].m;
    std::vector<std::size_t> group;
    std::vector<ReductionKind> kinds;
    int max_slot = 0;
    for (std::size_t r = first; r < pending_.size(); ++r) {
      const PendingReduction& request = pending_[r];
      if (done[r] || !same_matrix(request.m, m) ||
          std::find(kinds.begin(), kinds.end(), request.kind) != kinds.end())
        continue;
      group.push_back(r);
      kinds.push_back(request.kind);
      max_slot = std::max({max_slot, request.slot, request.second_slot});
      done[r] = true;
    }
    slot_pointer(max_slot, m.batch);  // grow first: the pointers below stay valid
    ReductionOutputs out;
    for (std::size_t r : group) {
      const PendingReduction& request = pending_[r];
      double* target = slot_pointer(request.slot, m.batch);
      switch (request.kind) {
        case ReductionKind::trace: out.trace = target; break;
        case ReductionKind::max_abs_row_sum: out.max_abs_row_sum = target; break;
        case ReductionKind::max_abs_row_sum_minus_identity: out.max_abs_row_sum_minus_identity = target; break;
        case ReductionKind::gershgorin:
          out.gershgorin_lower = target;
          out.gershgorin_upper = slot_pointer(request.second_slot, m.batch);
          break;
        case ReductionKind::frobenius: out.frobenius = target; break;
        case ReductionKind::nonfinite: out.nonfinite = target; break;
      }
    }
    auto* scratch = static_cast<double*>(
        reduction_scratch_.ensure(sizeof(double) * static_cast<std::size_t>(reduction_scratch_doubles(m)), stream_));
    launch_reductions(storage_, m, out, scratch, stream_);
  }
  pending_.clear();
}

void CudaBackend::trace(const Mat& m, int slot) {
  check_mat("trace", "m", m);
  check_square("trace", "m", m);
  check_slot("trace", slot);
  queue_reduction(m, ReductionKind::trace, slot);
}

void CudaBackend::max_abs_row_sum(const Mat& m, int slot) {
  check_mat("max_abs_row_sum", "m", m);
  check_slot("max_abs_row_sum", slot);
  queue_reduction(m, ReductionKind::max_abs_row_sum, slot);
}

void CudaBackend::max_abs_row_sum_minus_identity(const Mat& m, int slot) {
  check_mat("max_abs_row_sum_minus_identity", "m", m);
  check_square("max_abs_row_sum_minus_identity", "m", m);
  check_slot("max_abs_row_sum_minus_identity", slot);
  queue_reduction(m, ReductionKind::max_abs_row_sum_minus_identity, slot);
}

void CudaBackend::gershgorin(const Mat& m, int lower_slot, int upper_slot) {
  check_mat("gershgorin", "m", m);
  check_square("gershgorin", "m", m);
  check_slot("gershgorin", lower_slot);
  check_slot("gershgorin", upper_slot);
  if (lower_slot == upper_slot)
    throw pe::Error("cuda backend gershgorin: arguments 'lower_slot' and 'upper_slot' are both " +
                    std::to_string(lower_slot) + ", expected two different slots");
  queue_reduction(m, ReductionKind::gershgorin, lower_slot, upper_slot);
}

void CudaBackend::frobenius_norm(const Mat& m, int slot) {
  check_mat("frobenius_norm", "m", m);
  check_slot("frobenius_norm", slot);
  queue_reduction(m, ReductionKind::frobenius, slot);
}

void CudaBackend::count_nonfinite(const Mat& m, int slot) {
  check_mat("count_nonfinite", "m", m);
  check_slot("count_nonfinite", slot);
  queue_reduction(m, ReductionKind::nonfinite, slot);
}

// A fetch is a post that waits: one copy of the written slots into the pinned buffer, then the read.
std::vector<std::vector<double>> CudaBackend::fetch_scalars() {
  post_scalars();
  return posted_scalars();
}

void CudaBackend::post_scalars() {
  run_pending_reductions();
  std::int64_t used = 0;
  for (std::int64_t s = 0; s < static_cast<std::int64_t>(slot_batch_.size()); ++s)
    if (slot_batch_[static_cast<std::size_t>(s)] > 0) used = s + 1;
  posted_batch_.assign(slot_batch_.begin(), slot_batch_.begin() + used);
  posted_members_ = member_capacity_;
  std::fill(slot_batch_.begin(), slot_batch_.end(), 0);
  if (used == 0) return;
  const std::size_t bytes = sizeof(double) * static_cast<std::size_t>(used * member_capacity_);
  const std::size_t capacity = sizeof(double) * static_cast<std::size_t>(slot_capacity_ * member_capacity_);
  if (capacity > posted_slots_bytes_) {
    refuse_growth_in_capture(stream_, "the posted scalars' pinned buffer");
    // Room for every slot (a captured copy's destination must not move), made by the warm-up run that
    // precedes a capture: cudaMallocHost is not capturable.
    if (posted_slots_) PE_CUDA_TRY(cudaFreeHost(posted_slots_));
    posted_slots_ = nullptr;
    posted_slots_bytes_ = 0;
    PE_CUDA_TRY(cudaMallocHost(reinterpret_cast<void**>(&posted_slots_), capacity));
    posted_slots_bytes_ = capacity;
  }
  PE_CUDA_TRY(cudaMemcpyAsync(posted_slots_, slots_, bytes, cudaMemcpyDeviceToHost, stream_));
}

std::vector<std::vector<double>> CudaBackend::posted_scalars() {
  if (posted_batch_.empty()) return {};  // nothing was copied: nothing to wait for
  PE_CUDA_TRY(cudaStreamSynchronize(stream_));
  std::vector<std::vector<double>> result(posted_batch_.size());
  for (std::size_t s = 0; s < posted_batch_.size(); ++s) {
    const double* first = posted_slots_ + static_cast<std::int64_t>(s) * posted_members_;
    result[s].assign(first, first + posted_batch_[s]);
  }
  return result;
}

// ---- residual and exact paths ---------------------------------------------------------------------

void CudaBackend::member_to_double(const Mat& m, std::int64_t k, double* dst) {
  const Mat one = member_of(m, k, element_size(storage_));
  launch_convert(view_of(one, storage_), view_of(packed(dst, m.rows, m.cols), DType::f64), stream_);
}

void CudaBackend::residual(const Mat& a, const Mat& x, const Mat& b, Mat& r) {
  run_pending_reductions();
  const std::int64_t es = static_cast<std::int64_t>(element_size(storage_));
  check_gemm(Op::N, Op::N, a, x, r, es);
  check_mat("residual", "b", b);
  check_same_shape("residual", "b", b, "r", r);
  if (storage_ == DType::f64) {
    matmul(types_, Op::N, Op::N, -1.0, a, x, 1.0, b, r);
    return;
  }
  if (storage_ != DType::f32) {  // bf16 / fp16: fp32 accumulation, B - A X rounded once
    matmul(lt_types(storage_, ComputeMode::native), Op::N, Op::N, -1.0, a, x, 1.0, b, r);
    return;
  }
  // fp32 storage (native or tf32 products elsewhere): the residual is formed in fp64.
  const std::int64_t na = a.rows * a.cols * a.batch, nx = x.rows * x.cols * x.batch, nb = b.rows * b.cols * b.batch;
  auto* wide = static_cast<double*>(wide_.ensure(sizeof(double) * (na + nx + nb), stream_));
  Mat a64 = packed(wide, a.rows, a.cols, a.batch), x64 = packed(wide + na, x.rows, x.cols, x.batch);
  Mat b64 = packed(wide + na + nx, b.rows, b.cols, b.batch);
  launch_convert(view_of(a, DType::f32), view_of(a64, DType::f64), stream_);
  launch_convert(view_of(x, DType::f32), view_of(x64, DType::f64), stream_);
  launch_convert(view_of(b, DType::f32), view_of(b64, DType::f64), stream_);
  matmul(lt_types(DType::f64, ComputeMode::native), Op::N, Op::N, -1.0, a64, x64, 1.0, b64, b64);
  launch_convert(view_of(b64, DType::f64), view_of(r, DType::f32), stream_);
}

void CudaBackend::ensure_solver() {
  if (!solver_) PE_CUSOLVER_TRY(cusolverDnCreate(&solver_));
  PE_CUSOLVER_TRY(cusolverDnSetStream(solver_, stream_));
}

bool CudaBackend::syevd_member(const Mat& a, std::int64_t k, double* vectors, double* eigenvalues) {
  ensure_solver();
  const int n = static_cast<int>(a.rows);
  int lwork = 0;
  PE_CUSOLVER_TRY(cusolverDnDsyevd_bufferSize(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, nullptr,
                                              n, nullptr, &lwork));
  auto* work = static_cast<double*>(solver_work_.ensure(sizeof(double) * (1 + static_cast<std::size_t>(lwork)), stream_));
  int* info = reinterpret_cast<int*>(work);  // solver_work: [info | work]
  member_to_double(a, k, vectors);
  PE_CUSOLVER_TRY(cusolverDnDsyevd(solver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, vectors, n,
                                   eigenvalues, work + 1, lwork, info));
  int host_info = 0;
  PE_CUDA_TRY(cudaMemcpyAsync(&host_info, info, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  PE_CUDA_TRY(cudaStreamSynchronize(stream_));
  return host_info == 0;
}

bool CudaBackend::exact_inverse_root(const Mat& a, int p, Mat& x) {
  run_pending_reductions();
  check_mat("exact_inverse_root", "a", a);
  check_square("exact_inverse_root", "a", a);
  check_mat("exact_inverse_root", "x", x);
  check_same_shape("exact_inverse_root", "x", x, "a", a);
  if (p < 1) throw pe::Error("cuda backend exact_inverse_root: argument 'p' is " + std::to_string(p) + ", expected >= 1");
  if (a.rows > std::numeric_limits<int>::max() / a.rows)
    throw pe::Error("cuda backend exact_inverse_root: n = " + std::to_string(a.rows) + " is too large for cuSOLVER");
  const int n = static_cast<int>(a.rows);
  const std::int64_t nn = a.rows * a.rows;
  // wide: [vectors n x n | roots n x n x batch | eigenvalues n]
  auto* wide = static_cast<double*>(wide_.ensure(sizeof(double) * (nn * (1 + a.batch) + a.rows), stream_));
  double* vectors = wide;
  double* roots = wide + nn;
  double* eigenvalues = wide + nn * (1 + a.batch);
  std::vector<double> host_eigenvalues(static_cast<std::size_t>(n));
  const LtTypes f64 = lt_types(DType::f64, ComputeMode::native);
  for (std::int64_t k = 0; k < a.batch; ++k) {
    if (!syevd_member(a, k, vectors, eigenvalues)) return false;
    PE_CUDA_TRY(cudaMemcpyAsync(host_eigenvalues.data(), eigenvalues, sizeof(double) * n, cudaMemcpyDeviceToHost,
                                stream_));
    PE_CUDA_TRY(cudaStreamSynchronize(stream_));
    // Ascending order. Positive definite to working precision: lambda_min > n eps lambda_max.
    const double lo = host_eigenvalues.front(), hi = host_eigenvalues.back();
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(hi > 0.0) ||
        !(lo > static_cast<double>(n) * std::numeric_limits<double>::epsilon() * hi))
      return false;
    // A^{-1/p} = V diag(lambda^{-1/p}) V^T = W W^T with W = V diag(lambda^{-1/(2p)}).
    launch_power(eigenvalues, n, -0.5 / p, stream_);
    Mat v = packed(vectors, n, n);
    Mat scaling = packed(eigenvalues, n, 1);
    launch_diag_scale(DType::f64, nullptr, v, &scaling, stream_);
    Mat root = packed(roots + k * nn, n, n);
    matmul(f64, Op::N, Op::T, 1.0, v, v, 0.0, root, root);
  }
  launch_convert(view_of(packed(roots, n, n, a.batch), DType::f64), view_of(x, storage_), stream_);
  return true;
}

bool CudaBackend::exact_solve(const Mat& a, const Mat& b, Mat& x) {
  run_pending_reductions();
  check_mat("exact_solve", "a", a);
  check_square("exact_solve", "a", a);
  check_mat("exact_solve", "b", b);
  check_mat("exact_solve", "x", x);
  check_same_shape("exact_solve", "x", x, "b", b);
  check_batch_compatible("exact_solve", "a", a, b.batch);
  if (b.rows != a.rows)
    throw pe::Error("cuda backend exact_solve: argument 'b' has " + std::to_string(b.rows) + " rows, expected " +
                    std::to_string(a.rows) + " (the order of 'a')");
  if (a.rows > std::numeric_limits<int>::max() / a.rows || b.cols > std::numeric_limits<int>::max())
    throw pe::Error("cuda backend exact_solve: n = " + std::to_string(a.rows) + " is too large for cuSOLVER");
  ensure_solver();
  const int n = static_cast<int>(a.rows), m = static_cast<int>(b.cols);
  const std::int64_t nn = a.rows * a.rows, nm = b.rows * b.cols;
  int lwork = 0;
  PE_CUSOLVER_TRY(cusolverDnDgetrf_bufferSize(solver_, n, n, nullptr, n, &lwork));
  // wide: [LU n x n | solutions n x m x batch]; solver_work: [diagonal n | work | pivots n + info]
  auto* wide = static_cast<double*>(wide_.ensure(sizeof(double) * (nn + nm * b.batch), stream_));
  double* lu = wide;
  double* solutions = wide + nn;
  const std::int64_t pivot_doubles = (a.rows + 2) / 2 + 1;
  auto* work = static_cast<double*>(solver_work_.ensure(sizeof(double) * (a.rows + lwork + pivot_doubles), stream_));
  double* diagonal = work;
  double* lwork_area = work + a.rows;
  int* pivots = reinterpret_cast<int*>(work + a.rows + lwork);
  int* info = pivots + n;
  std::vector<double> host_diagonal(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < b.batch; ++k) {
    if (k == 0 || a.batch > 1) {
      member_to_double(a, k, lu);
      PE_CUSOLVER_TRY(cusolverDnDgetrf(solver_, n, n, lu, n, lwork_area, pivots, info));
      Mat lu_mat = packed(lu, n, n), diag = packed(diagonal, n, 1);
      launch_extract_diagonal(DType::f64, lu_mat, diag, stream_);
      int host_info = 0;
      PE_CUDA_TRY(cudaMemcpyAsync(&host_info, info, sizeof(int), cudaMemcpyDeviceToHost, stream_));
      PE_CUDA_TRY(cudaMemcpyAsync(host_diagonal.data(), diagonal, sizeof(double) * n, cudaMemcpyDeviceToHost,
                                  stream_));
      PE_CUDA_TRY(cudaStreamSynchronize(stream_));
      if (host_info != 0) return false;
      // Singular to working precision: a pivot below n eps times the largest one (or not finite).
      double largest = 0.0, smallest = std::numeric_limits<double>::infinity();
      for (double d : host_diagonal) {
        if (!std::isfinite(d)) return false;
        largest = std::max(largest, std::abs(d));
        smallest = std::min(smallest, std::abs(d));
      }
      if (!(smallest > static_cast<double>(n) * std::numeric_limits<double>::epsilon() * largest)) return false;
    }
    double* solution = solutions + k * nm;
    member_to_double(b, k, solution);
    PE_CUSOLVER_TRY(cusolverDnDgetrs(solver_, CUBLAS_OP_N, n, m, lu, n, pivots, solution, n, info));
  }
  launch_convert(view_of(packed(solutions, b.rows, b.cols, b.batch), DType::f64), view_of(x, storage_), stream_);
  return true;
}

// ---- Newton correction support -------------------------------------------------------------------

bool CudaBackend::symmetric_eigen(const Mat& a, Mat& q, Mat& lambda) {
  run_pending_reductions();
  check_mat("symmetric_eigen", "a", a);
  check_square("symmetric_eigen", "a", a);
  check_mat("symmetric_eigen", "q", q);
  check_same_shape("symmetric_eigen", "q", q, "a", a);
  check_mat("symmetric_eigen", "lambda", lambda);
  if (lambda.rows != a.rows || lambda.cols != 1 || lambda.batch != a.batch)
    throw pe::Error("cuda backend symmetric_eigen: argument 'lambda' is " + std::to_string(lambda.rows) + " x " +
                    std::to_string(lambda.cols) + " x " + std::to_string(lambda.batch) + ", expected " +
                    std::to_string(a.rows) + " x 1 x " + std::to_string(a.batch));
  if (a.rows > std::numeric_limits<int>::max() / a.rows)
    throw pe::Error("cuda backend symmetric_eigen: n = " + std::to_string(a.rows) + " is too large for cuSOLVER");
  if (a.rows == 0) return true;
  const int n = static_cast<int>(a.rows);
  const std::int64_t nn = a.rows * a.rows;
  // wide: [vectors n x n x batch | eigenvalues n x batch]. Every member is decomposed before anything is
  // written, so a failure leaves q and lambda untouched.
  auto* wide = static_cast<double*>(wide_.ensure(sizeof(double) * (nn + a.rows) * a.batch, stream_));
  double* vectors = wide;
  double* values = wide + nn * a.batch;
  for (std::int64_t k = 0; k < a.batch; ++k)
    if (!syevd_member(a, k, vectors + k * nn, values + k * a.rows)) return false;
  launch_convert(view_of(packed(vectors, n, n, a.batch), DType::f64), view_of(q, storage_), stream_);
  launch_convert(view_of(packed(values, n, 1, a.batch), DType::f64), view_of(lambda, storage_), stream_);
  return true;
}

void CudaBackend::divide_elementwise(const Mat& c, Mat& m) {
  run_pending_reductions();
  check_mat("divide_elementwise", "c", c);
  check_mat("divide_elementwise", "m", m);
  if (c.rows != m.rows || c.cols != m.cols) check_same_shape("divide_elementwise", "c", c, "m", m);
  check_batch_compatible("divide_elementwise", "c", c, m.batch);
  launch_divide_elementwise(storage_, c, m, stream_);
}

// ---- verification operations ----------------------------------------------------------------------

void CudaBackend::require_f64(const char* op) const {
  if (storage_ != DType::f64)
    throw pe::Error(std::string("cuda backend ") + op + ": needs f64 storage (the verification backend), this one stores " +
                    to_string(storage_));
}

void CudaBackend::abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y) {
  require_f64("abs_gemv");
  run_pending_reductions();
  check_mat("abs_gemv", "m", m);
  check_mat("abs_gemv", "x", x);
  check_mat("abs_gemv", "y", y);
  const std::int64_t out_rows = op == Op::N ? m.rows : m.cols, inner = op == Op::N ? m.cols : m.rows;
  if (x.rows != inner || x.cols != 1 || x.batch != y.batch)
    throw pe::Error("cuda backend abs_gemv: argument 'x' is " + std::to_string(x.rows) + " x " + std::to_string(x.cols) +
                    " x " + std::to_string(x.batch) + ", expected " + std::to_string(inner) + " x 1 x " +
                    std::to_string(y.batch));
  if (y.rows != out_rows || y.cols != 1)
    throw pe::Error("cuda backend abs_gemv: argument 'y' is " + std::to_string(y.rows) + " x " + std::to_string(y.cols) +
                    ", expected " + std::to_string(out_rows) + " x 1");
  check_batch_compatible("abs_gemv", "m", m, y.batch);
  if (beta != 0.0 && beta != 1.0)
    throw pe::Error("cuda backend abs_gemv: argument 'beta' is " + std::to_string(beta) + ", expected 0 or 1");
  if (spans_overlap(x, y, 8)) throw pe::Error("cuda backend abs_gemv: argument 'y' overlaps 'x'");
  launch_abs_gemv(op, m, x, beta, y, stream_);
}

void CudaBackend::cholesky(Mat& m, int slot) {
  require_f64("cholesky");
  run_pending_reductions();
  check_mat("cholesky", "m", m);
  check_square("cholesky", "m", m);
  check_slot("cholesky", slot);
  if (m.rows > std::numeric_limits<int>::max() || m.ld > std::numeric_limits<int>::max())
    throw pe::Error("cuda backend cholesky: n = " + std::to_string(m.rows) + " is too large for cuSOLVER");
  ensure_solver();
  const int n = static_cast<int>(m.rows), ld = static_cast<int>(m.ld);
  int lwork = 0;
  PE_CUSOLVER_TRY(
      cusolverDnDpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_UPPER, n, static_cast<double*>(m.data), ld, &lwork));
  // solver_work: [work lwork doubles | info, one int per member]
  const std::size_t info_doubles = static_cast<std::size_t>((m.batch + 1) / 2);
  auto* work = static_cast<double*>(
      solver_work_.ensure(sizeof(double) * (static_cast<std::size_t>(lwork) + info_doubles), stream_));
  int* info = reinterpret_cast<int*>(work + lwork);
  for (std::int64_t k = 0; k < m.batch; ++k) {
    double* member_data = static_cast<double*>(m.data) + k * m.stride;
    // Upper: column-major U with M = U^T U, the layout LAPACK's dpotrf('U') gives on the CPU.
    PE_CUSOLVER_TRY(cusolverDnDpotrf(solver_, CUBLAS_FILL_MODE_UPPER, n, member_data, ld, work, lwork, info + k));
  }
  launch_finish_cholesky(m, info, slot_pointer(slot, m.batch), stream_);
}

void CudaBackend::split_slices(const Mat& m, bool by_rows, int bits, std::span<Mat> slices, Mat& remainder,
                               int exponent_slot) {
  require_f64("split_slices");
  run_pending_reductions();
  check_mat("split_slices", "m", m);
  check_mat("split_slices", "remainder", remainder);
  check_same_shape("split_slices", "remainder", remainder, "m", m);
  for (const Mat& s : slices) {
    check_mat("split_slices", "slices", s);
    check_same_shape("split_slices", "slices", s, "m", m);
  }
  check_slot("split_slices", exponent_slot);
  if (bits < 1 || bits > 26)
    throw pe::Error("cuda backend split_slices: argument 'bits' is " + std::to_string(bits) + ", expected 1..26");
  const std::int64_t lines = by_rows ? m.rows : m.cols;
  auto* exponents = static_cast<int*>(
      verify_scratch_.ensure(sizeof(int) * static_cast<std::size_t>(lines * m.batch), stream_));
  launch_split_slices(m, by_rows, bits, slices.data(), static_cast<int>(slices.size()), remainder, exponents,
                      slot_pointer(exponent_slot, m.batch), stream_);
}

void CudaBackend::two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term) {
  require_f64("two_sum_accumulate");
  run_pending_reductions();
  check_mat("two_sum_accumulate", "hi", hi);
  check_mat("two_sum_accumulate", "lo", lo);
  check_mat("two_sum_accumulate", "term", term);
  check_same_shape("two_sum_accumulate", "lo", lo, "hi", hi);
  check_same_shape("two_sum_accumulate", "term", term, "hi", hi);
  if (spans_overlap(hi, lo, 8) || spans_overlap(hi, term, 8) || spans_overlap(lo, term, 8))
    throw pe::Error("cuda backend two_sum_accumulate: arguments 'hi', 'lo' and 'term' must not overlap");
  launch_two_sum_accumulate(hi, lo, term, stream_);
}

void CudaBackend::max_asymmetry(const Mat& m, int slot, int magnitude_slot) {
  run_pending_reductions();
  check_mat("max_asymmetry", "m", m);
  check_square("max_asymmetry", "m", m);
  check_slot("max_asymmetry", slot);
  if (magnitude_slot >= 0) check_slot("max_asymmetry", magnitude_slot);
  if (magnitude_slot == slot)
    throw pe::Error("cuda backend max_asymmetry: arguments 'slot' and 'magnitude_slot' are both " +
                    std::to_string(slot) + ", expected two different slots");
  auto* lines = static_cast<double*>(
      verify_scratch_.ensure(sizeof(double) * static_cast<std::size_t>(2 * m.rows * m.batch), stream_));
  slot_pointer(std::max(slot, magnitude_slot), m.batch);  // grow first: the pointers below stay valid
  double* magnitude = magnitude_slot >= 0 ? slot_pointer(magnitude_slot, m.batch) : nullptr;
  launch_max_asymmetry(storage_, m, lines, slot_pointer(slot, m.batch), magnitude, stream_);
}

void CudaBackend::cholesky_solve(const Mat& factor, Mat& rhs) {
  require_f64("cholesky_solve");
  run_pending_reductions();
  check_mat("cholesky_solve", "factor", factor);
  check_square("cholesky_solve", "factor", factor);
  check_mat("cholesky_solve", "rhs", rhs);
  if (rhs.rows != factor.rows || rhs.batch != factor.batch)
    throw pe::Error("cuda backend cholesky_solve: argument 'rhs' is " + std::to_string(rhs.rows) + " x " +
                    std::to_string(rhs.cols) + " x " + std::to_string(rhs.batch) + ", expected " +
                    std::to_string(factor.rows) + " rows and " + std::to_string(factor.batch) + " members");
  if (factor.ld > std::numeric_limits<int>::max() || rhs.ld > std::numeric_limits<int>::max() ||
      rhs.cols > std::numeric_limits<int>::max())
    throw pe::Error("cuda backend cholesky_solve: n = " + std::to_string(factor.rows) + " is too large for cuSOLVER");
  ensure_solver();
  // potrs reports only invalid arguments in its info word (a failed factor gives non-finite values).
  auto* info = static_cast<int*>(solver_work_.ensure(sizeof(int), stream_));
  for (std::int64_t k = 0; k < rhs.batch; ++k)
    PE_CUSOLVER_TRY(cusolverDnDpotrs(solver_, CUBLAS_FILL_MODE_UPPER, static_cast<int>(factor.rows),
                                     static_cast<int>(rhs.cols), static_cast<const double*>(factor.data) + k * factor.stride,
                                     static_cast<int>(factor.ld), static_cast<double*>(rhs.data) + k * rhs.stride,
                                     static_cast<int>(rhs.ld), info));
}

}  // namespace gpu
}  // namespace pe::detail
