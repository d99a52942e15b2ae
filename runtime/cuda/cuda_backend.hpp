// The CUDA implementation of pe::detail::Backend: cuBLASLt for products (plans cached per shape),
// small kernels for everything elementwise and for the reductions, cuSOLVER (in double) for the
// exact fallbacks. Everything is issued on the caller's stream; the only host synchronisations are
// fetch_scalars(), transfers from or to pageable host memory (uploads, downloads) and the exact fallbacks.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend.hpp"
#include "backend_factory.hpp"  // declares make_cuda_backend, defined in cuda_backend.cpp
#include "lt_plan.hpp"

namespace pe::detail::gpu {

// Device memory that grows in stream order (cudaMallocAsync / cudaFreeAsync); contents are not kept.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer();
  void* ensure(std::size_t bytes, cudaStream_t stream);
  void release(cudaStream_t stream) noexcept;

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(DType storage, ComputeMode compute, cudaStream_t stream);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  DType storage() const override { return storage_; }
  ComputeMode compute() const override { return compute_; }

  Mat allocate(std::int64_t rows, std::int64_t cols, std::int64_t batch) override;
  void upload(const HostMat& src, Mat& dst) override;
  void download(const Mat& src, const HostMat& dst) override;
  void copy(const Mat& src, Mat& dst) override;
  void import_from(const Backend& from, const Mat& src, Mat& dst) override;
  void gemm(Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b, double beta, Mat& c) override;
  void axpby_identity(std::span<const double> alpha, const Mat* a, std::span<const double> beta, const Mat* b,
                      std::span<const double> gamma, Mat& c) override;
  void scale(std::span<const double> s, Mat& m) override;
  void diag_scale(const Mat* left, Mat& m, const Mat* right) override;
  void set_identity(std::span<const double> s, Mat& m) override;
  void symmetrize(Mat& m) override;
  void add_diagonal(std::span<const double> shift, Mat& m) override;
  void extract_diagonal(const Mat& m, Mat& out) override;
  void trace(const Mat& m, int slot) override;
  void max_abs_row_sum(const Mat& m, int slot) override;
  void gershgorin(const Mat& m, int lower_slot, int upper_slot) override;
  void frobenius_norm(const Mat& m, int slot) override;
  void count_nonfinite(const Mat& m, int slot) override;
  void max_abs_row_sum_minus_identity(const Mat& m, int slot) override;
  std::vector<std::vector<double>> fetch_scalars() override;
  void post_scalars() override;
  std::vector<std::vector<double>> posted_scalars() override;
  void residual(const Mat& a, const Mat& x, const Mat& b, Mat& r) override;
  bool exact_inverse_root(const Mat& a, int p, Mat& x) override;
  bool exact_solve(const Mat& a, const Mat& b, Mat& x) override;
  bool symmetric_eigen(const Mat& a, Mat& q, Mat& lambda) override;
  void divide_elementwise(const Mat& c, Mat& m) override;
  void abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y) override;
  void cholesky(Mat& m, int slot) override;
  void split_slices(const Mat& m, bool by_rows, int bits, std::span<Mat> slices, Mat& remainder,
                    int exponent_slot) override;
  void two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term) override;
  void cholesky_solve(const Mat& factor, Mat& rhs) override;
  void max_asymmetry(const Mat& m, int slot, int magnitude_slot) override;

  std::size_t cached_matmul_plans() const { return plans_.size(); }
  // D <- alpha op(A) op(B) + beta C with explicit cuBLASLt types (C may be D): the one place that
  // calls cublasLtMatmul, used by gemm, residual, the exact root and the benchmarks.
  void matmul(const LtTypes& types, Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b, double beta,
              const Mat& c, Mat& d);

 private:
  struct LtPlan;
  struct LtPlanDeleter {
    void operator()(LtPlan* plan) const noexcept;
  };

  // Reductions are queued and run together, one pass per matrix, before anything else is issued (every
  // other operation calls run_pending_reductions first, fetch_scalars included): the algorithm asks
  // four questions about the same residual per step, and each would otherwise read all of it.
  enum class ReductionKind { trace, max_abs_row_sum, max_abs_row_sum_minus_identity, gershgorin, frobenius, nonfinite };
  struct PendingReduction {
    Mat m;
    ReductionKind kind;
    int slot;
    int second_slot;  // gershgorin: the upper bound's slot
  };
  void queue_reduction(const Mat& m, ReductionKind kind, int slot, int second_slot = -1);
  void run_pending_reductions();
  std::vector<PendingReduction> pending_;

  double* slot_pointer(int slot, std::int64_t batch);  // reserves slot for `batch` members
  void ensure_solver();
  // Member k of a, converted to double at `vectors` (n x n), is replaced by its eigenvectors, its
  // eigenvalues (ascending) go to `eigenvalues` (n doubles on the device); false when syevd reports a
  // failure. Synchronises the stream (the info word).
  bool syevd_member(const Mat& a, std::int64_t k, double* vectors, double* eigenvalues);
  // Converts member k of m (storage dtype) into a packed double matrix at dst.
  void member_to_double(const Mat& m, std::int64_t k, double* dst);
  // The verification operations run on f64 storage only.
  void require_f64(const char* op) const;

  DType storage_;
  ComputeMode compute_;
  LtTypes types_;
  cudaStream_t stream_;
  cublasLtHandle_t lt_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  void* lt_workspace_ = nullptr;
  std::vector<void*> allocations_;
  std::unordered_map<GemmKey, std::unique_ptr<LtPlan, LtPlanDeleter>, GemmKeyHash> plans_;

  // Scalar slots: slots_ holds slot_capacity_ x member_capacity_ doubles, [slot][member].
  double* slots_ = nullptr;
  std::int64_t slot_capacity_ = 0, member_capacity_ = 0;
  std::vector<std::int64_t> slot_batch_;  // members written per slot since the last fetch (0: none)
  double* posted_slots_ = nullptr;          // pinned: what post_scalars (and so fetch_scalars) copies into
  std::size_t posted_slots_bytes_ = 0;
  std::vector<std::int64_t> posted_batch_;  // members per slot of the last post
  std::int64_t posted_members_ = 0;         // member_capacity_ at the last post

  ScratchBuffer reduction_scratch_, staging_, wide_, solver_work_, verify_scratch_;
};

}  // namespace pe::detail::gpu
