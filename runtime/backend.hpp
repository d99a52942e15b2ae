// The narrow interface the algorithm is written against. The algorithm (preconditioning, interval
// tracking, coupled steps, solves, Gram path) lives once in runtime/*.cpp; a backend only moves and
// multiplies numbers. CPU: CBLAS/LAPACKE (runtime/cpu). GPU: cuBLASLt plus a few kernels (runtime/cuda).
//
// Conventions
// - Matrices are column-major, in the backend's memory (host for CPU, device for CUDA), stored in the
//   backend's storage dtype. A `Mat` is a batch of `batch` equally shaped matrices, `stride` elements
//   apart (stride >= ld * cols when batch > 1). Every operation applies to all batch members at once.
// - Scalars that differ per batch member (polynomial coefficients, scalings) are passed as host spans
//   of length `batch` (or length 1, broadcast to all members).
// - Reductions do not return values: they write one double per batch member into a numbered scalar
//   slot; `fetch_scalars()` brings every slot to the host at once (one synchronisation on a GPU).
//   The algorithm batches its questions so that a step needs at most one fetch.
// - Operations are ordered as issued (a CUDA backend issues everything on its one stream).
// - Violated preconditions (shapes, null pointers) throw pe::Error; nothing is undefined behaviour.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "pe/types.hpp"

namespace pe::detail {

// The range of the largest entry (or of the infinity norm) within which frobenius_norm is accurate.
inline constexpr double kFrobeniusSafeLo = 1e-140;
inline constexpr double kFrobeniusSafeHi = 1e140;

struct Mat {
  void* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;      // leading dimension (>= rows)
  std::int64_t batch = 1;
  std::int64_t stride = 0;  // elements between batch members
};

enum class Op { N, T };

// Host-side view used to move data in and out of a backend (with conversion to/from its dtype).
struct HostMat {
  void* data = nullptr;
  DType dtype = DType::f64;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;
  std::int64_t batch = 1;
  std::int64_t stride = 0;
  Layout layout = Layout::col_major;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;          // "cpu", "cuda"
  virtual DType storage() const = 0;             // dtype matrices are stored in
  virtual ComputeMode compute() const = 0;       // how GEMMs accumulate (e.g. tf32 on fp32 storage)

  // Workspace: a rows x cols x batch matrix in the backend's storage, owned by the backend and
  // released when the backend is destroyed. The algorithm allocates all it needs before iterating.
  virtual Mat allocate(std::int64_t rows, std::int64_t cols, std::int64_t batch) = 0;

  // Moves between host views and backend matrices, converting dtype and layout.
  virtual void upload(const HostMat& src, Mat& dst) = 0;
  virtual void download(const Mat& src, const HostMat& dst) = 0;
  virtual void copy(const Mat& src, Mat& dst) = 0;
  // dst <- src where src belongs to `from`, a backend of the same kind (cpu/cuda; for CUDA the same
  // stream) with possibly another storage dtype: the bridge between precision levels (an f64 companion
  // for verification and corrections, higher-precision steps inside a low-precision run). Rounds to
  // nearest when narrowing. Shapes must match.
  virtual void import_from(const Backend& from, const Mat& src, Mat& dst) = 0;

  // C <- alpha * op(A) op(B) + beta * C (uniform alpha/beta; accumulation per compute()).
  virtual void gemm(Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b, double beta, Mat& c) = 0;

  // C <- alpha[k] * A + beta[k] * B + gamma[k] * I for batch member k. A or B may be null (term
  // skipped); C may alias A or B. Forms q(Y) = a I + b Y + c Y^2 without a GEMM.
  virtual void axpby_identity(std::span<const double> alpha, const Mat* a, std::span<const double> beta,
                              const Mat* b, std::span<const double> gamma, Mat& c) = 0;

  // M <- s[k] * M.
  virtual void scale(std::span<const double> s, Mat& m) = 0;
  // M <- diag(left) M diag(right); left/right are vectors stored as rows x 1 / cols x 1 Mats (batched).
  virtual void diag_scale(const Mat* left, Mat& m, const Mat* right) = 0;
  // M <- s[k] * I.
  virtual void set_identity(std::span<const double> s, Mat& m) = 0;
  // M <- (M + M^T) / 2 (square).
  virtual void symmetrize(Mat& m) = 0;
  // symmetrize, then the trace and Frobenius norm of the symmetrised M into their slots: the coupled
  // iteration's per-step pass. A backend may do it in one sweep (the default makes the three calls).
  virtual void symmetrize_and_measure(Mat& m, int trace_slot, int frobenius_slot) {
    symmetrize(m);
    trace(m, trace_slot);
    frobenius_norm(m, frobenius_slot);
  }
  // M <- M + shift[k] * I (square).
  virtual void add_diagonal(std::span<const double> shift, Mat& m) = 0;
  // out (n x 1 per member) <- diagonal of M; for scaling modes that need it on the device.
  virtual void extract_diagonal(const Mat& m, Mat& out) = 0;

  // Reductions into scalar slots (one double per batch member).
  virtual void trace(const Mat& m, int slot) = 0;
  virtual void max_abs_row_sum(const Mat& m, int slot) = 0;        // infinity norm
  // Gershgorin enclosure of a symmetric matrix: lower = min_i (m_ii - sum_{j!=i} |m_ij|), upper = max_i (m_ii + ...).
  virtual void gershgorin(const Mat& m, int lower_slot, int upper_slot) = 0;
  // Sums the squares in double: accurate while every entry's magnitude is at most a value in
  // [kFrobeniusSafeLo, kFrobeniusSafeHi] (no overflow; what underflows is negligible for n up to 1e6).
  // Callers whose norms fall outside divide by the infinity norm first.
  virtual void frobenius_norm(const Mat& m, int slot) = 0;
  virtual void count_nonfinite(const Mat& m, int slot) = 0;
  // Infinity norm of M - I, the cheap rigorous bound of max |1 - lambda(M)| for symmetric M.
  virtual void max_abs_row_sum_minus_identity(const Mat& m, int slot) = 0;
  // All slots written since the last fetch, indexed [slot][batch member]; slots never written are empty.
  virtual std::vector<std::vector<double>> fetch_scalars() = 0;
  // The same without waiting, for enqueued runs (and CUDA graph capture): post_scalars issues the copy of
  // every slot written since the last fetch or post into host memory the backend owns (CUDA: one
  // asynchronous copy on its stream into pinned memory, allocated by the first post, so that a warm-up
  // run leaves nothing to allocate during a capture) and resets the written slots as a fetch would.
  // posted_scalars waits for the backend's stream and returns what the last post copied, as fetch_scalars
  // would have; it may be read again after every replay of a captured post.
  virtual void post_scalars() = 0;
  virtual std::vector<std::vector<double>> posted_scalars() = 0;

  // R <- B - A X with accumulation one level above the storage (double for fp32 and fp64 on the CPU, fp64
  // for fp32 on the GPU, fp32 for bf16/fp16 on both): the residual of iterative refinement must be more
  // accurate than the apply.
  virtual void residual(const Mat& a, const Mat& x, const Mat& b, Mat& r) = 0;

  // Exact references used by the fallbacks, computed in double whatever the storage:
  // X <- A^{-1/p} for symmetric A through an eigendecomposition (LAPACK dsyevd / cuSOLVER syevd).
  // Returns false (X untouched) when A is not numerically positive definite.
  virtual bool exact_inverse_root(const Mat& a, int p, Mat& x) = 0;
  // X <- A^{-1} B through LU with partial pivoting (LAPACK dgetrf/dgetrs / cuSOLVER getrf/getrs).
  // Returns false (X untouched) when A is singular to working precision.
  virtual bool exact_solve(const Mat& a, const Mat& b, Mat& x) = 0;

  // For the Newton correction (runtime/correction):
  // A = Q diag(lambda) Q^T for symmetric A (square; q the same shape, lambda n x 1 per member), computed
  // in double (LAPACK dsyevd / cuSOLVER syevd) and stored in this backend's dtype, eigenvalues ascending.
  // Returns false (q and lambda untouched) when the eigensolver fails.
  virtual bool symmetric_eigen(const Mat& a, Mat& q, Mat& lambda) = 0;
  // M <- M ./ C elementwise (same shape; C may be one matrix shared by every member of M).
  virtual void divide_elementwise(const Mat& c, Mat& m) = 0;
  // ---- Verification of a returned root (runtime/verify, docs/certificate.md) ----------------------
  // Defined for f64 storage only, the precision the verifier computes in; other storages throw
  // pe::Error. Every rounding bound the verifier states assumes IEEE binary64 arithmetic in round to
  // nearest, any order of summation, with or without FMA; `gemm` of an f64 backend must be that too
  // (native fp64 products: no reduced-precision or emulated compute modes).
  //
  // y <- |op(M)| x + beta y, with |M| taken elementwise; x and y are n x 1 per member, beta 0 or 1, and
  // y must not alias x. In double: the verifier bounds its rounding like any dot product (gamma_n).
  virtual void abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y) = 0;
  // In place M = U^T U with U upper triangular (LAPACK dpotrf 'U' / cuSOLVER potrf), the strictly lower
  // part set to 0, for every member; the slot gets 1 where the factorisation ran to completion with
  // positive pivots and 0 where it stopped (that member's contents are then unspecified).
  virtual void cholesky(Mat& m, int slot) = 0;
  // cholesky's flag alone, for the tests that read nothing else (a proof of positive definiteness, with
  // the backward-error bound of any completed factorisation): M is overwritten with unspecified contents,
  // which spares the CPU moving its factor into place.
  virtual void cholesky_completes(Mat& m, int slot) { cholesky(m, slot); }
  // Error-free splitting (Ozaki, Ogita, Oishi, Rump 2012): per row of M (by_rows) or per column, with
  // 2^(E-1) <= max |m| < 2^E, slice i (1-based) <- fl(fl(sigma_i + r) - sigma_i) and r <- r - slice_i,
  // sigma_i = 2^(E - i*bits + 53), starting from r = M; `remainder` gets the final r. Every slice entry
  // is an integer multiple of 2^(E - i*bits) of magnitude at most (2^bits + 1) 2^(E - i*bits), every
  // step is exact, so M = sum of slices + remainder exactly and |remainder| <= min(|M|, 2^(E - k*bits))
  // after k slices. Rows (columns) of zeros give zero slices. `exponent_slot` gets min E over the
  // nonzero rows (columns), NaN if M has a non-finite entry. Needs 1 <= bits <= 26.
  virtual void split_slices(const Mat& m, bool by_rows, int bits, std::span<Mat> slices, Mat& remainder,
                            int exponent_slot) = 0;
  // Error-free accumulation: (hi, e) <- TwoSum(hi, term) (hi + e = old hi + term exactly), lo <- fl(lo + e),
  // elementwise. hi, lo and term have the same shape; term must not alias hi or lo.
  virtual void two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term) = 0;
  // In place rhs <- M^{-1} rhs for every member, from the factor `cholesky` left in `factor` (M = U^T U; LAPACK
  // dpotrs 'U' / cuSOLVER potrs); rhs is n x k per member. A factor whose factorisation failed gives
  // unspecified (possibly non-finite) values, never an error.
  virtual void cholesky_solve(const Mat& factor, Mat& rhs) = 0;
  // Any storage (the input checks read it on A as stored, not only the verifier): max_ij |m_ij - m_ji| of a
  // square M, the difference taken in double from the stored values (0 exactly when M is exactly symmetric),
  // into `slot`; max_ij |m_ij| into `magnitude_slot` when it is >= 0. NaN in both when an entry is not finite.
  virtual void max_asymmetry(const Mat& m, int slot, int magnitude_slot) = 0;
};

}  // namespace pe::detail
