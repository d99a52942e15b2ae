// The CPU backend: CBLAS (OpenBLAS) for products, LAPACKE for the exact references, plain loops for the
// O(n^2) elementwise work. One class template for float and double buffers.
//
// Float buffers hold f32 storage, and also the GPU formats emulated: bf16 and f16 storage (every stored
// value rounded to the format) and tf32 products on f32 storage. The emulation rounds where the CUDA
// backend (runtime/cuda) rounds:
// - element operations (axpby_identity, scale, diag_scale, set_identity, add_diagonal, symmetrize,
//   uploads, conversions, import_from, the exact references) compute in double and round once to the
//   storage, as its kernels do (to_double ... from_double, __double2bfloat16 / __double2half);
// - products take the stored (already rounded) operands, or for tf32 the operands rounded to tf32,
//   accumulate in f32 (sgemm; products of bf16, f16 or tf32 values are exact in f32), apply alpha and
//   beta in f32 and round the output once to the storage, as cuBLASLt does with CUBLAS_COMPUTE_32F
//   (bf16/f16 data) and CUBLAS_COMPUTE_32F_FAST_TF32 (f32 data);
// - residual() for bf16/f16 accumulates in f32 and rounds B - A X once, like the CUDA backend.
// Where it differs: the summation order inside the products (OpenBLAS's blocking and FMAs against the
// tensor cores' tree of partial sums), so results agree within the f32 accumulation bound, not bit for
// bit; and TF32 operands are rounded to nearest even here, while the hardware may truncate them or
// cuBLAS round them otherwise (it does not document which): on a GPU cuBLAS's behaviour is the reference.
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend_factory.hpp"
#include "formats.hpp"
#include "pe/types.hpp"
#include "zeroed_buffer.hpp"

namespace pe::detail {
namespace {

std::string describe(const char* what, const Mat& m) {
  return std::string(what) + " (" + std::to_string(m.rows) + " x " + std::to_string(m.cols) + ", ld " +
         std::to_string(m.ld) + ", batch " + std::to_string(m.batch) + ")";
}

void check_mat(const char* what, const Mat& m) {
  if (m.data == nullptr) throw Error(std::string("backend: ") + what + " has a null data pointer");
  if (m.rows < 0 || m.cols < 0 || m.batch < 1) throw Error("backend: bad shape of " + describe(what, m));
  if (m.ld < std::max<std::int64_t>(1, m.rows))
    throw Error("backend: leading dimension below rows for " + describe(what, m));
  if (m.batch > 1 && m.stride < m.ld * m.cols)
    throw Error("backend: batch stride " + std::to_string(m.stride) + " overlaps members of " + describe(what, m));
}

void check_same_shape(const char* a_name, const Mat& a, const char* b_name, const Mat& b) {
  if (a.rows != b.rows || a.cols != b.cols || a.batch != b.batch)
    throw Error(std::string("backend: shape mismatch between ") + describe(a_name, a) + " and " + describe(b_name, b));
}

void check_square(const char* what, const Mat& m) {
  if (m.rows != m.cols) throw Error("backend: expected a square matrix, got " + describe(what, m));
}

// Per-member scalar: a span of length 1 broadcasts.
double member(std::span<const double> s, std::int64_t k, const char* what) {
  if (s.empty()) throw Error(std::string("backend: empty scalar span ") + what);
  return s.size() == 1 ? s[0] : s[static_cast<std::size_t>(k)];
}

void check_span(std::span<const double> s, std::int64_t batch, const char* what) {
  if (s.size() != 1 && s.size() != static_cast<std::size_t>(batch))
    throw Error(std::string("backend: scalar span ") + what + " has length " + std::to_string(s.size()) +
                ", expected 1 or the batch count " + std::to_string(batch));
}

template <class T>
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
               const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  if (n == 1) {  // a matrix-vector product: gemv reads A once (OpenBLAS 0.3.21's gemm would pack it first)
    const auto rows = static_cast<blasint>(ta == CblasNoTrans ? m : k), cols = static_cast<blasint>(ta == CblasNoTrans ? k : m);
    const auto inc = static_cast<blasint>(tb == CblasNoTrans ? 1 : ldb);  // op(B) is B's first column or row
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemv(CblasColMajor, ta, rows, cols, alpha, a, static_cast<blasint>(lda), b, inc, beta, c, 1);
    else
      cblas_dgemv(CblasColMajor, ta, rows, cols, alpha, a, static_cast<blasint>(lda), b, inc, beta, c, 1);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasColMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
  } else {
    cblas_dgemm(CblasColMajor, ta, tb, static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k),
                alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
  }
}

template <class T>
class CpuBackend final : public Backend {
 public:
  // T = double: f64 storage. T = float: f32, bf16 or f16 storage; compute tf32 only with f32.
  CpuBackend(DType storage, ComputeMode compute)
      : storage_(storage),
        compute_(compute),
        format_(storage_format(storage)),
        product_format_(product_input_format(storage, compute)) {}

  std::string name() const override { return "cpu"; }
  DType storage() const override { return storage_; }
  ComputeMode compute() const override { return compute_; }

  Mat allocate(std::int64_t rows, std::int64_t cols, std::int64_t batch) override {
    if (rows < 0 || cols < 0 || batch < 1)
      throw Error("backend: cannot allocate " + std::to_string(rows) + " x " + std::to_string(cols) + " x " +
                  std::to_string(batch));
    const std::int64_t ld = std::max<std::int64_t>(1, rows);
    const std::int64_t stride = ld * cols;
    const auto& buf = buffers_.emplace_back(static_cast<std::size_t>(std::max<std::int64_t>(1, stride * batch)) * sizeof(T));
    return Mat{static_cast<T*>(buf.data()), rows, cols, ld, batch, stride};
  }

  void upload(const HostMat& src, Mat& dst) override {
    check_mat("upload destination", dst);
    check_host(src, dst, "upload");
    if (native() && src.layout == Layout::col_major) {
      for (std::int64_t k = 0; k < dst.batch; ++k)
        for (std::int64_t j = 0; j < dst.cols; ++j) {
          const std::int64_t first = host_index(src, k, 0, j);
          if (src.dtype == DType::f32)
            convert_run(&at(dst, k, 0, j), static_cast<const float*>(src.data) + first, dst.rows);
          else
            convert_run(&at(dst, k, 0, j), static_cast<const double*>(src.data) + first, dst.rows);
        }
      return;
    }
    for (std::int64_t k = 0; k < dst.batch; ++k)
      for (std::int64_t j = 0; j < dst.cols; ++j)
        for (std::int64_t i = 0; i < dst.rows; ++i) at(dst, k, i, j) = store(host_get(src, k, i, j));
  }

  void download(const Mat& src, const HostMat& dst) override {
    check_mat("download source", src);
    check_host(dst, src, "download");
    if (dst.layout == Layout::col_major) {
      for (std::int64_t k = 0; k < src.batch; ++k)
        for (std::int64_t j = 0; j < src.cols; ++j) {
          const std::int64_t first = host_index(dst, k, 0, j);
          if (dst.dtype == DType::f32)
            convert_run(static_cast<float*>(dst.data) + first, &at(src, k, 0, j), src.rows);
          else
            convert_run(static_cast<double*>(dst.data) + first, &at(src, k, 0, j), src.rows);
        }
      return;
    }
    for (std::int64_t k = 0; k < src.batch; ++k)
      for (std::int64_t j = 0; j < src.cols; ++j)
        for (std::int64_t i = 0; i < src.rows; ++i) host_set(dst, k, i, j, static_cast<double>(at(src, k, i, j)));
  }

  void copy(const Mat& src, Mat& dst) override {
    check_mat("copy source", src);
    check_mat("copy destination", dst);
    check_same_shape("copy source", src, "copy destination", dst);
    for (std::int64_t k = 0; k < src.batch; ++k)
      for (std::int64_t j = 0; j < src.cols; ++j)
        std::memcpy(&at(dst, k, 0, j), &at(src, k, 0, j), sizeof(T) * static_cast<std::size_t>(src.rows));
  }

  void import_from(const Backend& from, const Mat& src, Mat& dst) override {
    if (from.name() != name())
      throw Error("backend: import_from a " + from.name() + " backend into the cpu backend (expected cpu)");
    check_mat("import_from source", src);
    check_mat("import_from destination", dst);
    check_same_shape("import_from source", src, "import_from destination", dst);
    auto convert = [&](auto* typed_source) {
      for (std::int64_t k = 0; k < src.batch; ++k)
        for (std::int64_t j = 0; j < src.cols; ++j) {
          const auto* column = typed_source + k * src.stride + j * src.ld;
          if (native()) {
            convert_run(&at(dst, k, 0, j), column, src.rows);
            continue;
          }
          for (std::int64_t i = 0; i < src.rows; ++i) at(dst, k, i, j) = store(static_cast<double>(column[i]));
        }
    };
    // A cpu backend holds f64 storage in double buffers and every other storage in float buffers.
    if (from.storage() == DType::f64)
      convert(static_cast<const double*>(src.data));
    else
      convert(static_cast<const float*>(src.data));
  }

  void gemm(Op op_a, Op op_b, double alpha, const Mat& a, const Mat& b, double beta, Mat& c) override {
    check_mat("gemm A", a);
    check_mat("gemm B", b);
    check_mat("gemm C", c);
    const std::int64_t m = op_a == Op::N ? a.rows : a.cols;
    const std::int64_t ka = op_a == Op::N ? a.cols : a.rows;
    const std::int64_t kb = op_b == Op::N ? b.rows : b.cols;
    const std::int64_t n = op_b == Op::N ? b.cols : b.rows;
    if (m != c.rows || n != c.cols || ka != kb)
      throw Error("backend: gemm shapes do not match: " + describe("A", a) + ", " + describe("B", b) + ", " +
                  describe("C", c));
    for (const Mat* x : {&a, &b})
      if (x->batch != c.batch && x->batch != 1)
        throw Error("backend: gemm operand batch " + std::to_string(x->batch) + " is neither 1 nor C's batch " +
                    std::to_string(c.batch));
    if (a.data == c.data || b.data == c.data) throw Error("backend: gemm output must not alias an input");
    const bool round_inputs = product_format_ != format_;  // tf32 products of f32 storage
    for (std::int64_t k = 0; k < c.batch; ++k) {
      const T* pa = static_cast<const T*>(a.data) + (a.batch == 1 ? 0 : k * a.stride);
      const T* pb = static_cast<const T*>(b.data) + (b.batch == 1 ? 0 : k * b.stride);
      T* pc = static_cast<T*>(c.data) + k * c.stride;
      if (m == 0 || n == 0) continue;
      std::int64_t lda = a.ld, ldb = b.ld;
      if (round_inputs) {
        const bool same = pa == pb && a.rows == b.rows && a.cols == b.cols && a.ld == b.ld;
        pa = rounded_operand(a, pa, product_a_);
        lda = std::max<std::int64_t>(1, a.rows);
        pb = same ? pa : rounded_operand(b, pb, product_b_);
        ldb = std::max<std::int64_t>(1, b.rows);
      }
      blas_gemm<T>(op_a == Op::N ? CblasNoTrans : CblasTrans, op_b == Op::N ? CblasNoTrans : CblasTrans, m, n, ka,
                   static_cast<T>(alpha), pa, lda, pb, ldb, static_cast<T>(beta), pc, c.ld);
      round_member(c, k);  // the f32 accumulator's output, rounded once to the storage
    }
  }

  void axpby_identity(std::span<const double> alpha, const Mat* a, std::span<const double> beta, const Mat* b,
                      std::span<const double> gamma, Mat& c) override {
    check_mat("axpby_identity C", c);
    check_span(gamma, c.batch, "gamma");
    if (a) {
      check_mat("axpby_identity A", *a);
      check_same_shape("A", *a, "C", c);
      check_span(alpha, c.batch, "alpha");
    }
    if (b) {
      check_mat("axpby_identity B", *b);
      check_same_shape("B", *b, "C", c);
      check_span(beta, c.batch, "beta");
    }
    for (std::int64_t k = 0; k < c.batch; ++k) {
      const double al = a ? member(alpha, k, "alpha") : 0.0;
      const double be = b ? member(beta, k, "beta") : 0.0;
      const double ga = member(gamma, k, "gamma");
      if (!native()) {
        for (std::int64_t j = 0; j < c.cols; ++j)
          for (std::int64_t i = 0; i < c.rows; ++i) {
            double v = i == j ? ga : 0.0;
            if (a) v += al * static_cast<double>(at(*a, k, i, j));
            if (b) v += be * static_cast<double>(at(*b, k, i, j));
            at(c, k, i, j) = store(v);
          }
        continue;
      }
      // The same sums without a per-element rounding mode or branch, so that the columns vectorise: the
      // diagonal entry is formed first (C may alias A or B), then the column, then the diagonal stored.
      // Each sum starts from 0.0 as above (so a -0 term gives +0, bit for bit the general path).
      for (std::int64_t j = 0; j < c.cols; ++j) {
        T* cj = &at(c, k, 0, j);
        const T* aj = a ? &at(*a, k, 0, j) : nullptr;
        const T* bj = b ? &at(*b, k, 0, j) : nullptr;
        double diagonal = ga;
        if (j < c.rows) {
          if (aj) diagonal += al * static_cast<double>(aj[j]);
          if (bj) diagonal += be * static_cast<double>(bj[j]);
        }
        const std::int64_t rows = c.rows;
        if (aj && bj) {
          for (std::int64_t i = 0; i < rows; ++i) {
            double v = 0.0;
            v += al * static_cast<double>(aj[i]);
            v += be * static_cast<double>(bj[i]);
            cj[i] = static_cast<T>(v);
          }
        } else if (aj || bj) {
          const T* xj = aj ? aj : bj;
          const double f = aj ? al : be;
          for (std::int64_t i = 0; i < rows; ++i) {
            double v = 0.0;
            v += f * static_cast<double>(xj[i]);
            cj[i] = static_cast<T>(v);
          }
        } else {
          for (std::int64_t i = 0; i < rows; ++i) cj[i] = T(0);
        }
        if (j < rows) cj[j] = static_cast<T>(diagonal);
      }
    }
  }

  void scale(std::span<const double> s, Mat& m) override {
    check_mat("scale M", m);
    check_span(s, m.batch, "s");
    for (std::int64_t k = 0; k < m.batch; ++k) {
      const double f = member(s, k, "s");
      if (native()) {
        for (std::int64_t j = 0; j < m.cols; ++j) {
          T* column = &at(m, k, 0, j);
          for (std::int64_t i = 0; i < m.rows; ++i) column[i] = static_cast<T>(f * static_cast<double>(column[i]));
        }
        continue;
      }
      for_each(m, k, [&](T& v, std::int64_t, std::int64_t) { v = store(f * static_cast<double>(v)); });
    }
  }

  void diag_scale(const Mat* left, Mat& m, const Mat* right) override {
    check_mat("diag_scale M", m);
    if (left && (left->rows != m.rows || left->cols != 1 || (left->batch != m.batch && left->batch != 1)))
      throw Error("backend: diag_scale left vector " + describe("left", *left) + " does not fit " + describe("M", m));
    if (right && (right->rows != m.cols || right->cols != 1 || (right->batch != m.batch && right->batch != 1)))
      throw Error("backend: diag_scale right vector " + describe("right", *right) + " does not fit " +
                  describe("M", m));
    for (std::int64_t k = 0; k < m.batch; ++k) {
      const T* l = left ? static_cast<const T*>(left->data) + (left->batch == 1 ? 0 : k * left->stride) : nullptr;
      const T* r = right ? static_cast<const T*>(right->data) + (right->batch == 1 ? 0 : k * right->stride) : nullptr;
      for_each(m, k, [&](T& v, std::int64_t i, std::int64_t j) {
        const double li = l ? static_cast<double>(l[i]) : 1.0, rj = r ? static_cast<double>(r[j]) : 1.0;
        v = store(li * static_cast<double>(v) * rj);
      });
    }
  }

  void set_identity(std::span<const double> s, Mat& m) override {
    check_mat("set_identity M", m);
    check_span(s, m.batch, "s");
    for (std::int64_t k = 0; k < m.batch; ++k) {
      const T f = store(member(s, k, "s"));
      for_each(m, k, [f](T& v, std::int64_t i, std::int64_t j) { v = i == j ? f : T(0); });
    }
  }

  void symmetrize(Mat& m) override {
    check_mat("symmetrize M", m);
    check_square("symmetrize M", m);
    symmetric_sweep(m, nullptr);
  }

  void symmetrize_and_measure(Mat& m, int trace_slot, int frobenius_slot) override {
    check_mat("symmetrize_and_measure M", m);
    check_square("symmetrize_and_measure M", m);
    std::vector<double> trace(static_cast<std::size_t>(m.batch)), norm(trace.size());
    symmetric_sweep(m, [&](std::int64_t k, double diagonal_sum, double sum_of_squares) {
      trace[static_cast<std::size_t>(k)] = diagonal_sum;
      norm[static_cast<std::size_t>(k)] = std::sqrt(sum_of_squares);
    });
    slot_ref(trace_slot) = std::move(trace);
    slot_ref(frobenius_slot) = std::move(norm);
  }

  void add_diagonal(std::span<const double> shift, Mat& m) override {
    check_mat("add_diagonal M", m);
    check_square("add_diagonal M", m);
    check_span(shift, m.batch, "shift");
    for (std::int64_t k = 0; k < m.batch; ++k)
      for (std::int64_t i = 0; i < m.rows; ++i)
        at(m, k, i, i) = store(static_cast<double>(at(m, k, i, i)) + member(shift, k, "shift"));
  }

  void extract_diagonal(const Mat& m, Mat& out) override {
    check_mat("extract_diagonal M", m);
    check_mat("extract_diagonal out", out);
    check_square("extract_diagonal M", m);
    if (out.rows != m.rows || out.cols != 1 || out.batch != m.batch)
      throw Error("backend: extract_diagonal output " + describe("out", out) + " does not fit " + describe("M", m));
    for (std::int64_t k = 0; k < m.batch; ++k)
      for (std::int64_t i = 0; i < m.rows; ++i) at(out, k, i, 0) = at(m, k, i, i);
  }

  void trace(const Mat& m, int slot) override {
    check_mat("trace M", m);
    check_square("trace M", m);
    reduce(slot, m, [&](std::int64_t k) {
      double s = 0;
      for (std::int64_t i = 0; i < m.rows; ++i) s += static_cast<double>(at(m, k, i, i));
      return s;
    });
  }

  void max_abs_row_sum(const Mat& m, int slot) override {
    check_mat("max_abs_row_sum M", m);
    reduce(slot, m, [&](std::int64_t k) { return max_row_sum(m, k, false); });
  }

  void gershgorin(const Mat& m, int lower_slot, int upper_slot) override {
    check_mat("gershgorin M", m);
    check_square("gershgorin M", m);
    std::vector<double> lo(static_cast<std::size_t>(m.batch)), hi(lo.size());
    std::vector<double> radius(static_cast<std::size_t>(m.rows));
    for (std::int64_t k = 0; k < m.batch; ++k) {
      std::fill(radius.begin(), radius.end(), 0.0);
      // Above and below the diagonal as two runs (no branch in the loop; the same sums in the same order).
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const T* column = &at(m, k, 0, j);
        double* r = radius.data();
        for (std::int64_t i = 0; i < j; ++i) r[i] += std::abs(static_cast<double>(column[i]));
        for (std::int64_t i = j + 1; i < m.rows; ++i) r[i] += std::abs(static_cast<double>(column[i]));
      }
      double l = std::numeric_limits<double>::infinity(), h = -l;
      for (std::int64_t i = 0; i < m.rows; ++i) {
        const double d = static_cast<double>(at(m, k, i, i));
        l = std::min(l, d - radius[static_cast<std::size_t>(i)]);
        h = std::max(h, d + radius[static_cast<std::size_t>(i)]);
        if (std::isnan(d) || std::isnan(radius[static_cast<std::size_t>(i)])) l = h = std::nan("");
      }
      lo[static_cast<std::size_t>(k)] = l;
      hi[static_cast<std::size_t>(k)] = h;
    }
    slot_ref(lower_slot) = std::move(lo);
    slot_ref(upper_slot) = std::move(hi);
  }

  void frobenius_norm(const Mat& m, int slot) override {
    check_mat("frobenius_norm M", m);
    reduce(slot, m, [&](std::int64_t k) {
      // Independent partial sums per column, so the loop is not one long chain of dependent additions.
      SumOfSquares s;
      for (std::int64_t j = 0; j < m.cols; ++j) s.add(&at(m, k, 0, j), m.rows);
      return std::sqrt(s.total());
    });
  }

  void count_nonfinite(const Mat& m, int slot) override {
    check_mat("count_nonfinite M", m);
    reduce(slot, m, [&](std::int64_t k) {
      // |v| <= max fails exactly for infinities and NaN, and unlike isfinite it vectorises.
      std::int64_t count = 0;
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const T* column = &at(m, k, 0, j);
        for (std::int64_t i = 0; i < m.rows; ++i) count += !(std::abs(column[i]) <= std::numeric_limits<T>::max());
      }
      return static_cast<double>(count);
    });
  }

  void max_abs_row_sum_minus_identity(const Mat& m, int slot) override {
    check_mat("max_abs_row_sum_minus_identity M", m);
    check_square("max_abs_row_sum_minus_identity M", m);
    reduce(slot, m, [&](std::int64_t k) { return max_row_sum(m, k, true); });
  }

  std::vector<std::vector<double>> fetch_scalars() override {
    std::vector<std::vector<double>> out;
    for (auto& [slot, values] : slots_) {
      if (out.size() <= static_cast<std::size_t>(slot)) out.resize(static_cast<std::size_t>(slot) + 1);
      out[static_cast<std::size_t>(slot)] = std::move(values);
    }
    slots_.clear();
    return out;
  }
  // Synchronous: the values are final when posted.
  void post_scalars() override { posted_ = fetch_scalars(); }
  std::vector<std::vector<double>> posted_scalars() override { return posted_; }

  void residual(const Mat& a, const Mat& x, const Mat& b, Mat& r) override {
    check_mat("residual A", a);
    check_mat("residual X", x);
    check_mat("residual B", b);
    check_mat("residual R", r);
    check_same_shape("B", b, "R", r);
    if (a.rows != b.rows || a.cols != x.rows || x.cols != b.cols || a.batch != r.batch || x.batch != r.batch)
      throw Error("backend: residual shapes do not match: " + describe("A", a) + ", " + describe("X", x) + ", " +
                  describe("B", b));
    if (format_ == Format::bf16 || format_ == Format::f16) {
      // One level above bf16/f16 is f32: accumulate B - A X in f32 and round once, as the CUDA backend.
      if constexpr (std::is_same_v<T, float>) residual_in_f32(a, x, b, r);
      return;
    }
    // f32 and f64 storage: accumulate in double (one level above f32).
    for (std::int64_t k = 0; k < r.batch; ++k) {
      std::vector<double> da = to_double(a, k), dx = to_double(x, k), db = to_double(b, k);
      if (a.rows > 0 && b.cols > 0)
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(a.rows),
                    static_cast<blasint>(b.cols), static_cast<blasint>(a.cols), -1.0, da.data(),
                    static_cast<blasint>(std::max<std::int64_t>(1, a.rows)), dx.data(),
                    static_cast<blasint>(std::max<std::int64_t>(1, x.rows)), 1.0, db.data(),
                    static_cast<blasint>(std::max<std::int64_t>(1, b.rows)));
      from_double(db, r, k);
    }
  }

  bool exact_inverse_root(const Mat& a, int p, Mat& x) override {
    check_mat("exact_inverse_root A", a);
    check_mat("exact_inverse_root X", x);
    check_square("exact_inverse_root A", a);
    check_same_shape("A", a, "X", x);
    if (p < 1) throw Error("backend: exact_inverse_root needs p >= 1, got " + std::to_string(p));
    const std::int64_t n = a.rows;
    std::vector<std::vector<double>> results;
    for (std::int64_t k = 0; k < a.batch; ++k) {
      std::vector<double> q = to_double(a, k), w(static_cast<std::size_t>(n));
      if (n == 0) {
        results.push_back({});
        continue;
      }
      const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n), q.data(),
                                             static_cast<lapack_int>(n), w.data());
      if (info != 0) return false;
      // Numerically positive definite: the smallest eigenvalue must stand above the eigensolver's own
      // backward error (about n * eps * |lambda_max|), else its -1/p power is noise.
      const double lambda_max = std::max(std::abs(w.front()), std::abs(w.back()));
      if (!(w.front() > static_cast<double>(n) * std::numeric_limits<double>::epsilon() * lambda_max)) return false;
      std::vector<double> qs(q);  // Q diag(lambda^{-1/(2p)}), then X = (Q D)(Q D)^T
      for (std::int64_t j = 0; j < n; ++j) {
        const double f = std::pow(w[static_cast<std::size_t>(j)], -0.5 / p);
        for (std::int64_t i = 0; i < n; ++i) qs[static_cast<std::size_t>(i + j * n)] *= f;
      }
      std::vector<double> out(static_cast<std::size_t>(n * n));
      cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(n),
                  static_cast<blasint>(n), 1.0, qs.data(), static_cast<blasint>(n), qs.data(),
                  static_cast<blasint>(n), 0.0, out.data(), static_cast<blasint>(n));
      results.push_back(std::move(out));
    }
    for (std::int64_t k = 0; k < a.batch; ++k) from_double(results[static_cast<std::size_t>(k)], x, k);
    return true;
  }

  bool exact_solve(const Mat& a, const Mat& b, Mat& x) override {
    check_mat("exact_solve A", a);
    check_mat("exact_solve B", b);
    check_mat("exact_solve X", x);
    check_square("exact_solve A", a);
    check_same_shape("B", b, "X", x);
    if (a.rows != b.rows || a.batch != b.batch)
      throw Error("backend: exact_solve shapes do not match: " + describe("A", a) + ", " + describe("B", b));
    const std::int64_t n = a.rows;
    std::vector<std::vector<double>> results;
    for (std::int64_t k = 0; k < a.batch; ++k) {
      std::vector<double> lu = to_double(a, k), rhs = to_double(b, k);
      std::vector<lapack_int> piv(static_cast<std::size_t>(std::max<std::int64_t>(1, n)));
      if (n > 0 && b.cols > 0) {
        if (LAPACKE_dgetrf(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(n), lu.data(),
                           static_cast<lapack_int>(n), piv.data()) != 0)
          return false;
        if (LAPACKE_dgetrs(LAPACK_COL_MAJOR, 'N', static_cast<lapack_int>(n), static_cast<lapack_int>(b.cols),
                           lu.data(), static_cast<lapack_int>(n), piv.data(), rhs.data(),
                           static_cast<lapack_int>(n)) != 0)
          return false;
      }
      results.push_back(std::move(rhs));
    }
    for (std::int64_t k = 0; k < a.batch; ++k) from_double(results[static_cast<std::size_t>(k)], x, k);
    return true;
  }

  bool symmetric_eigen(const Mat& a, Mat& q, Mat& lambda) override {
    check_mat("symmetric_eigen A", a);
    check_mat("symmetric_eigen Q", q);
    check_mat("symmetric_eigen lambda", lambda);
    check_square("symmetric_eigen A", a);
    check_same_shape("A", a, "Q", q);
    if (lambda.rows != a.rows || lambda.cols != 1 || lambda.batch != a.batch)
      throw Error("backend: symmetric_eigen eigenvalues " + describe("lambda", lambda) + " do not fit " + describe("A", a));
    const std::int64_t n = a.rows;
    std::vector<std::vector<double>> vectors, values;
    for (std::int64_t k = 0; k < a.batch; ++k) {
      std::vector<double> v = to_double(a, k), w(static_cast<std::size_t>(std::max<std::int64_t>(1, n)));
      if (n > 0 && LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n), v.data(),
                                  static_cast<lapack_int>(n), w.data()) != 0)
        return false;
      vectors.push_back(std::move(v));
      values.push_back(std::move(w));
    }
    for (std::int64_t k = 0; k < a.batch; ++k) {
      from_double(vectors[static_cast<std::size_t>(k)], q, k);
      from_double(values[static_cast<std::size_t>(k)], lambda, k);
    }
    return true;
  }

  void divide_elementwise(const Mat& c, Mat& m) override {
    check_mat("divide_elementwise C", c);
    check_mat("divide_elementwise M", m);
    if (c.rows != m.rows || c.cols != m.cols || (c.batch != m.batch && c.batch != 1))
      throw Error("backend: divide_elementwise divisor " + describe("C", c) + " does not fit " + describe("M", m));
    for (std::int64_t k = 0; k < m.batch; ++k) {
      const std::int64_t ck = c.batch == 1 ? 0 : k;
      for_each(m, k, [&](T& v, std::int64_t i, std::int64_t j) {
        v = store(static_cast<double>(v) / static_cast<double>(at(c, ck, i, j)));
      });
    }
  }

  // ---- verification operations (f64 storage only: the float instantiation throws) ---------------

  void abs_gemv(Op op, const Mat& m, const Mat& x, double beta, Mat& y) override {
    if constexpr (std::is_same_v<T, double>)
      abs_gemv_impl(op, m, x, beta, y);
    else
      throw_needs_f64("abs_gemv");
  }
  void cholesky(Mat& m, int slot) override {
    if constexpr (std::is_same_v<T, double>)
      cholesky_impl(m, slot, true);
    else
      throw_needs_f64("cholesky");
  }
  void cholesky_completes(Mat& m, int slot) override {
    if constexpr (std::is_same_v<T, double>)
      cholesky_impl(m, slot, false);
    else
      throw_needs_f64("cholesky_completes");
  }
  void split_slices(const Mat& m, bool by_rows, int bits, std::span<Mat> slices, Mat& remainder,
                    int exponent_slot) override {
    if constexpr (std::is_same_v<T, double>)
      split_slices_impl(m, by_rows, bits, slices, remainder, exponent_slot);
    else
      throw_needs_f64("split_slices");
  }
  void two_sum_accumulate(Mat& hi, Mat& lo, const Mat& term) override {
    if constexpr (std::is_same_v<T, double>)
      two_sum_accumulate_impl(hi, lo, term);
    else
      throw_needs_f64("two_sum_accumulate");
  }
  void cholesky_solve(const Mat& factor, Mat& rhs) override {
    if constexpr (std::is_same_v<T, double>)
      cholesky_solve_impl(factor, rhs);
    else
      throw_needs_f64("cholesky_solve");
  }
  void max_asymmetry(const Mat& m, int slot, int magnitude_slot) override {
    check_mat("max_asymmetry M", m);
    check_square("max_asymmetry M", m);
    std::vector<double> magnitude(static_cast<std::size_t>(m.batch), 0.0);
    reduce(slot, m, [&](std::int64_t k) {
      double worst = 0, largest = 0;
      bool finite = true;
      for (std::int64_t j0 = 0; j0 < m.cols; j0 += kMirrorTile)
        for (std::int64_t i0 = j0; i0 < m.rows; i0 += kMirrorTile) {
          const std::int64_t j1 = std::min(j0 + kMirrorTile, m.cols), i1 = std::min(i0 + kMirrorTile, m.rows);
          for (std::int64_t j = j0; j < j1; ++j)
            for (std::int64_t i = std::max(i0, j); i < i1; ++i) {
              const double lower = static_cast<double>(at(m, k, i, j)), upper = static_cast<double>(at(m, k, j, i));
              finite = finite && std::isfinite(lower) && std::isfinite(upper);
              worst = std::max(worst, std::abs(lower - upper));
              largest = std::max({largest, std::abs(lower), std::abs(upper)});
            }
        }
      magnitude[static_cast<std::size_t>(k)] = finite ? largest : std::nan("");
      return finite ? worst : std::nan("");
    });
    if (magnitude_slot >= 0) slot_ref(magnitude_slot) = std::move(magnitude);
  }

 private:
  [[noreturn]] static void throw_needs_f64(const char* op) {
    throw Error(std::string("backend: ") + op + " needs f64 storage (the verification backend), this one stores f32");
  }
  // The bodies of the verification operations, instantiated for double storage only.
  void abs_gemv_impl(Op op, const Mat& m, const Mat& x, double beta, Mat& y) {
    check_mat("abs_gemv M", m);
    check_mat("abs_gemv x", x);
    check_mat("abs_gemv y", y);
    const std::int64_t out_rows = op == Op::N ? m.rows : m.cols, inner = op == Op::N ? m.cols : m.rows;
    if (x.rows != inner || x.cols != 1 || y.rows != out_rows || y.cols != 1 || x.batch != y.batch ||
        (m.batch != 1 && m.batch != y.batch))
      throw Error("backend: abs_gemv shapes do not match: " + describe("M", m) + ", " + describe("x", x) + ", " +
                  describe("y", y));
    if (beta != 0.0 && beta != 1.0) throw Error("backend: abs_gemv beta is " + std::to_string(beta) + ", expected 0 or 1");
    if (x.data == y.data) throw Error("backend: abs_gemv output y must not alias x");
    for (std::int64_t k = 0; k < y.batch; ++k) {
      const std::int64_t mk = m.batch == 1 ? 0 : k;
      double* out = &at(y, k, 0, 0);
      const double* in = &at(x, k, 0, 0);
      if (op == Op::T) {  // y_j = sum_i |m_ij| x_i: one contiguous column per output
        for (std::int64_t j = 0; j < m.cols; ++j) {
          const double* col = &at(m, mk, 0, j);
          double s = 0;
          for (std::int64_t i = 0; i < m.rows; ++i) s += std::abs(col[i]) * in[i];
          out[j] = beta == 0.0 ? s : out[j] + s;
        }
      } else {  // y_i = sum_j |m_ij| x_j, accumulated column by column (contiguous reads)
        std::vector<double>& acc = scratch_vector(static_cast<std::size_t>(m.rows));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t j = 0; j < m.cols; ++j) {
          const double* col = &at(m, mk, 0, j);
          const double xj = in[j];
          for (std::int64_t i = 0; i < m.rows; ++i) acc[static_cast<std::size_t>(i)] += std::abs(col[i]) * xj;
        }
        for (std::int64_t i = 0; i < m.rows; ++i) out[i] = beta == 0.0 ? acc[static_cast<std::size_t>(i)] : out[i] + acc[static_cast<std::size_t>(i)];
      }
    }
  }

  // With `upper_factor` the factor `cholesky` promises (dpotrf 'U', the strictly lower part zeroed);
  // without it only the flag, from OpenBLAS's faster lower variant (dpotrf 'L': 0.35 against 0.5 ms at
  // n = 256, 92 against 100 ms at n = 2048, and no zeroing). Moving an 'L' factor into place instead cost
  // more than it saved from n = 1536 up (a transpose of n^2 / 2 entries). Any completed Cholesky
  // factorisation has the same backward-error bound whatever the order of its inner products (Higham,
  // Thm 10.3), which is all the flag's users rely on.
  void cholesky_impl(Mat& m, int slot, bool upper_factor) {
    check_mat("cholesky M", m);
    check_square("cholesky M", m);
    reduce(slot, m, [&](std::int64_t k) {
      double* base = &at(m, k, 0, 0);
      const lapack_int info =
          m.rows == 0 ? 0
                      : LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, upper_factor ? 'U' : 'L', static_cast<lapack_int>(m.rows),
                                            base, static_cast<lapack_int>(m.ld));
      if (upper_factor)
        for (std::int64_t j = 0; j < m.cols; ++j)
          for (std::int64_t i = j + 1; i < m.rows; ++i) at(m, k, i, j) = 0.0;
      return info == 0 ? 1.0 : 0.0;
    });
  }

  void split_slices_impl(const Mat& m, bool by_rows, int bits, std::span<Mat> slices, Mat& remainder,
                    int exponent_slot) {
    check_mat("split_slices M", m);
    check_mat("split_slices remainder", remainder);
    check_same_shape("split_slices M", m, "split_slices remainder", remainder);
    for (const Mat& s : slices) {
      check_mat("split_slices slice", s);
      check_same_shape("split_slices M", m, "split_slices slice", s);
    }
    if (bits < 1 || bits > 26) throw Error("backend: split_slices bits is " + std::to_string(bits) + ", expected 1..26");
    const std::int64_t lines = by_rows ? m.rows : m.cols;
    std::vector<int>& exponent = scratch_exponents(static_cast<std::size_t>(lines));
    reduce(exponent_slot, m, [&](std::int64_t k) {
      // E per line with 2^(E-1) <= max|m| < 2^E (frexp's exponent); INT_MIN marks a line of zeros.
      std::vector<double>& line_max = scratch_vector(static_cast<std::size_t>(lines));
      std::fill(line_max.begin(), line_max.end(), 0.0);
      bool finite = true;
      for (std::int64_t j = 0; j < m.cols; ++j)
        for (std::int64_t i = 0; i < m.rows; ++i) {
          const double v = at(m, k, i, j);
          finite = finite && std::isfinite(v);
          double& mx = line_max[static_cast<std::size_t>(by_rows ? i : j)];
          mx = std::max(mx, std::abs(v));
        }
      double min_exponent = std::numeric_limits<double>::infinity();
      for (std::int64_t l = 0; l < lines; ++l) {
        int e = 0;
        const double mx = line_max[static_cast<std::size_t>(l)];
        if (mx > 0 && std::isfinite(mx)) {
          std::frexp(mx, &e);
          min_exponent = std::min(min_exponent, static_cast<double>(e));
        }
        exponent[static_cast<std::size_t>(l)] = mx > 0 && std::isfinite(mx) ? e : std::numeric_limits<int>::min();
      }
      for (std::int64_t j = 0; j < m.cols; ++j)
        for (std::int64_t i = 0; i < m.rows; ++i) {
          const int e = exponent[static_cast<std::size_t>(by_rows ? i : j)];
          double r = at(m, k, i, j);
          for (std::size_t s = 0; s < slices.size(); ++s) {
            double q = 0;
            if (e != std::numeric_limits<int>::min()) {
              // sigma + r lands in [sigma/2, 2 sigma], so both roundings below are exact (Sterbenz).
              const double sigma = std::ldexp(1.0, e - static_cast<int>(s + 1) * bits + 53);
              q = (sigma + r) - sigma;
            }
            r -= q;
            at(slices[s], k, i, j) = q;
          }
          at(remainder, k, i, j) = r;
        }
      return finite ? min_exponent : std::nan("");
    });
  }

  void two_sum_accumulate_impl(Mat& hi, Mat& lo, const Mat& term) {
    check_mat("two_sum_accumulate hi", hi);
    check_mat("two_sum_accumulate lo", lo);
    check_mat("two_sum_accumulate term", term);
    check_same_shape("two_sum_accumulate hi", hi, "two_sum_accumulate lo", lo);
    check_same_shape("two_sum_accumulate hi", hi, "two_sum_accumulate term", term);
    if (term.data == hi.data || term.data == lo.data || hi.data == lo.data)
      throw Error("backend: two_sum_accumulate needs distinct hi, lo and term");
    for (std::int64_t k = 0; k < hi.batch; ++k)
      for (std::int64_t j = 0; j < hi.cols; ++j)
        for (std::int64_t i = 0; i < hi.rows; ++i) {
          double& h = at(hi, k, i, j);
          const double t = at(term, k, i, j);
          const double s = h + t;  // Knuth's TwoSum: s + e == h + t exactly
          const double bp = s - h;
          const double e = (h - (s - bp)) + (t - bp);
          h = s;
          at(lo, k, i, j) += e;
        }
  }

  void cholesky_solve_impl(const Mat& factor, Mat& rhs) {
    check_mat("cholesky_solve factor", factor);
    check_square("cholesky_solve factor", factor);
    check_mat("cholesky_solve rhs", rhs);
    if (rhs.rows != factor.rows || rhs.batch != factor.batch)
      throw Error("backend: cholesky_solve shapes do not match: " + describe("factor", factor) + ", " +
                  describe("rhs", rhs));
    for (std::int64_t k = 0; k < rhs.batch; ++k) {
      if (rhs.rows == 0 || rhs.cols == 0) continue;
      if (rhs.cols == 1) {
        // One vector (inverse iteration): R^T R x = b as two triangular solves; dpotrs would go through dtrsm,
        // which packs the whole factor on every call (a third of the solve's time at n = 256).
        const auto n = static_cast<blasint>(factor.rows);
        cblas_dtrsv(CblasColMajor, CblasUpper, CblasTrans, CblasNonUnit, n, &at(factor, k, 0, 0),
                    static_cast<blasint>(factor.ld), &at(rhs, k, 0, 0), 1);
        cblas_dtrsv(CblasColMajor, CblasUpper, CblasNoTrans, CblasNonUnit, n, &at(factor, k, 0, 0),
                    static_cast<blasint>(factor.ld), &at(rhs, k, 0, 0), 1);
        continue;
      }
      LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'U', static_cast<lapack_int>(factor.rows), static_cast<lapack_int>(rhs.cols),
                            &at(factor, k, 0, 0), static_cast<lapack_int>(factor.ld), &at(rhs, k, 0, 0),
                            static_cast<lapack_int>(rhs.ld));
    }
  }

  // Host scratch for the row-wise loops, kept between calls so that verification allocates once.
  std::vector<double>& scratch_vector(std::size_t size) {
    if (scratch_.size() < size) scratch_.resize(size);
    return scratch_;
  }
  std::vector<int>& scratch_exponents(std::size_t size) {
    if (exponents_.size() < size) exponents_.resize(size);
    return exponents_;
  }

  static T& at(const Mat& m, std::int64_t k, std::int64_t i, std::int64_t j) {
    return static_cast<T*>(m.data)[k * m.stride + i + j * m.ld];
  }
  template <class F>
  static void for_each(Mat& m, std::int64_t k, F&& f) {
    for (std::int64_t j = 0; j < m.cols; ++j)
      for (std::int64_t i = 0; i < m.rows; ++i) f(at(m, k, i, j), i, j);
  }
  // A sum of squares in double over contiguous runs, in kLanes independent partial sums: one dependent
  // chain of additions is latency-bound (n = 256, f64: 65 us against 19 us in 8 lanes; n = 1024: 2x).
  struct SumOfSquares {
    static constexpr int kLanes = 8;
    double lane[kLanes] = {};
    void add(const T* x, std::int64_t count) {
      std::int64_t i = 0;
      for (; i + kLanes <= count; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(x[i + l]) * static_cast<double>(x[i + l]);
      for (; i < count; ++i) lane[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    }
    double total() const {
      double t = 0;
      for (double v : lane) t += v;
      return t;
    }
  };

  // The tile width of the loops that visit the lower triangle with its mirror image (symmetric_sweep,
  // max_asymmetry). Small: a tile's mirror is read with a stride of ld, and for power-of-two ld the lines
  // of a large tile fall into a few cache sets and evict each other (64-wide tiles ran 4-5x slower than
  // 16-wide ones at n = 256, 1.7x at n = 512 and 1024, and the same at n = 1000).
  static constexpr std::int64_t kMirrorTile = 16;

  // M <- (M + M^T) / 2 in tiles of the lower triangle with their mirror images, each value rounded once to
  // the storage format; with `measured`, measured(k, trace, sum of squares) of every symmetrised member.
  template <class Measured = std::nullptr_t>
  void symmetric_sweep(Mat& m, Measured measured) {
    constexpr bool measure = !std::is_same_v<Measured, std::nullptr_t>;
    auto sweep = [&](auto round) {
      for (std::int64_t k = 0; k < m.batch; ++k) {
        SumOfSquares squares;
        double diagonal_sum = 0;
        for (std::int64_t jb = 0; jb < m.cols; jb += kMirrorTile)
          for (std::int64_t ib = jb; ib < m.rows; ib += kMirrorTile)
            for (std::int64_t j = jb; j < std::min(jb + kMirrorTile, m.cols); ++j) {
              if (ib == jb) {
                const double d = static_cast<double>(at(m, k, j, j));
                diagonal_sum += d;
                if constexpr (measure) squares.lane[0] += d * d;
              }
              T* column = &at(m, k, 0, j);
              T* row = &at(m, k, j, 0);
              double pairs[2] = {0, 0};
              for (std::int64_t i = std::max(ib, j + 1); i < std::min(ib + kMirrorTile, m.rows); ++i) {
                const T v = round(0.5 * (static_cast<double>(column[i]) + static_cast<double>(row[i * m.ld])));
                column[i] = v;
                row[i * m.ld] = v;
                if constexpr (measure) pairs[i & 1] += static_cast<double>(v) * static_cast<double>(v);
              }
              if constexpr (measure) squares.lane[2 + (j & 3)] += 2 * (pairs[0] + pairs[1]);
            }
        if constexpr (measure) measured(k, diagonal_sum, squares.total());
      }
    };
    // The rounding mode is decided once, outside the loops (a per-element branch there costs about as much
    // as the loads).
    if (native())
      sweep([](double v) { return static_cast<T>(v); });
    else
      sweep([this](double v) { return store(v); });
  }

  static double max_row_sum(const Mat& m, std::int64_t k, bool minus_identity) {
    std::vector<double> sums(static_cast<std::size_t>(m.rows), 0.0);
    for (std::int64_t j = 0; j < m.cols; ++j)
      for (std::int64_t i = 0; i < m.rows; ++i)
        sums[static_cast<std::size_t>(i)] +=
            std::abs(static_cast<double>(at(m, k, i, j)) - (minus_identity && i == j ? 1.0 : 0.0));
    double best = 0;
    for (double s : sums) best = std::isnan(s) ? s : std::max(best, s);
    return best;
  }
  static std::vector<double> to_double(const Mat& m, std::int64_t k) {
    std::vector<double> out(static_cast<std::size_t>(std::max<std::int64_t>(1, m.rows * m.cols)));
    for (std::int64_t j = 0; j < m.cols; ++j)
      for (std::int64_t i = 0; i < m.rows; ++i)
        out[static_cast<std::size_t>(i + j * m.rows)] = static_cast<double>(at(m, k, i, j));
    return out;
  }
  void from_double(const std::vector<double>& v, Mat& m, std::int64_t k) const {
    for (std::int64_t j = 0; j < m.cols; ++j)
      for (std::int64_t i = 0; i < m.rows; ++i) at(m, k, i, j) = store(v[static_cast<std::size_t>(i + j * m.rows)]);
  }

  // R <- B - A X with f32 accumulation, rounded once to the storage (bf16/f16 in float buffers). The
  // operands are read in place (already rounded); the sum goes through a packed f32 buffer, so R may
  // alias B.
  void residual_in_f32(const Mat& a, const Mat& x, const Mat& b, Mat& r) const {
    const auto ld = [](std::int64_t v) { return static_cast<blasint>(std::max<std::int64_t>(1, v)); };
    std::vector<float> sum(static_cast<std::size_t>(std::max<std::int64_t>(1, b.rows * b.cols)));
    for (std::int64_t k = 0; k < r.batch; ++k) {
      for (std::int64_t j = 0; j < b.cols; ++j)
        for (std::int64_t i = 0; i < b.rows; ++i) sum[static_cast<std::size_t>(i + j * b.rows)] = at(b, k, i, j);
      if (a.rows > 0 && b.cols > 0 && a.cols > 0)
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(a.rows),
                    static_cast<blasint>(b.cols), static_cast<blasint>(a.cols), -1.0f, &at(a, k, 0, 0), ld(a.ld),
                    &at(x, k, 0, 0), ld(x.ld), 1.0f, sum.data(), ld(b.rows));
      for (std::int64_t j = 0; j < r.cols; ++j)
        for (std::int64_t i = 0; i < r.rows; ++i)
          at(r, k, i, j) = store(static_cast<double>(sum[static_cast<std::size_t>(i + j * r.rows)]));
    }
  }

  // Whether values are stored as T itself (f32, f64), with no emulated format's rounding on top.
  bool native() const {
    if constexpr (std::is_same_v<T, double>) {
      return true;
    } else {
      return format_ == Format::f32;
    }
  }
  // A value computed in double, rounded once to the storage format.
  T store(double v) const {
    if constexpr (std::is_same_v<T, double>) {
      return v;
    } else {
      return format_ == Format::f32 ? static_cast<float>(v) : static_cast<float>(round_to(format_, v));
    }
  }
  // Member k of a product's output, from the f32 accumulator to the storage format (bf16/f16).
  void round_member(Mat& m, std::int64_t k) const {
    if (format_ == Format::f32 || format_ == Format::f64) return;
    for_each(m, k, [this](T& v, std::int64_t, std::int64_t) { v = round_to(format_, v); });
  }
  // The operand's member at `data` rounded to the product input format (tf32), packed (ld = rows) into
  // `scratch`, which keeps its capacity from call to call.
  const T* rounded_operand(const Mat& m, const T* data, std::vector<T>& scratch) const {
    scratch.resize(static_cast<std::size_t>(std::max<std::int64_t>(1, m.rows * m.cols)));
    for (std::int64_t j = 0; j < m.cols; ++j)
      for (std::int64_t i = 0; i < m.rows; ++i)
        scratch[static_cast<std::size_t>(i + j * m.rows)] = round_to(product_format_, data[i + j * m.ld]);
    return scratch.data();
  }

  static void check_host(const HostMat& h, const Mat& m, const char* what) {
    if (h.data == nullptr) throw Error(std::string("backend: ") + what + " host matrix has a null data pointer");
    if (h.dtype != DType::f32 && h.dtype != DType::f64)
      throw Error(std::string("backend: ") + what + " host dtype " + to_string(h.dtype) +
                  " is not supported by the CPU backend (expected f32 or f64)");
    if (h.rows != m.rows || h.cols != m.cols || h.batch != m.batch)
      throw Error(std::string("backend: ") + what + " host matrix shape " + std::to_string(h.rows) + " x " +
                  std::to_string(h.cols) + " x " + std::to_string(h.batch) + " does not match " + describe("it", m));
    const std::int64_t inner = h.layout == Layout::col_major ? h.rows : h.cols;
    if (h.ld < std::max<std::int64_t>(1, inner))
      throw Error(std::string("backend: ") + what + " host leading dimension " + std::to_string(h.ld) +
                  " is below " + std::to_string(inner));
    const std::int64_t outer = h.layout == Layout::col_major ? h.cols : h.rows;
    if (h.batch > 1 && h.stride < h.ld * outer)
      throw Error(std::string("backend: ") + what + " host batch stride " + std::to_string(h.stride) +
                  " overlaps members");
  }
  static std::int64_t host_index(const HostMat& h, std::int64_t k, std::int64_t i, std::int64_t j) {
    return k * h.stride + (h.layout == Layout::col_major ? i + j * h.ld : i * h.ld + j);
  }
  // count contiguous values through double, one rounding at the final cast: what the per-entry paths do
  // for a native storage, in a loop that vectorises.
  template <class D, class S>
  static void convert_run(D* dst, const S* src, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) dst[i] = static_cast<D>(static_cast<double>(src[i]));
  }
  static double host_get(const HostMat& h, std::int64_t k, std::int64_t i, std::int64_t j) {
    const std::int64_t idx = host_index(h, k, i, j);
    return h.dtype == DType::f32 ? static_cast<double>(static_cast<const float*>(h.data)[idx])
                                 : static_cast<const double*>(h.data)[idx];
  }
  static void host_set(const HostMat& h, std::int64_t k, std::int64_t i, std::int64_t j, double v) {
    const std::int64_t idx = host_index(h, k, i, j);
    if (h.dtype == DType::f32)
      static_cast<float*>(h.data)[idx] = static_cast<float>(v);
    else
      static_cast<double*>(h.data)[idx] = v;
  }

  std::vector<double>& slot_ref(int slot) {
    if (slot < 0) throw Error("backend: negative scalar slot " + std::to_string(slot));
    return slots_[slot];
  }
  template <class F>
  void reduce(int slot, const Mat& m, F&& f) {
    std::vector<double> values(static_cast<std::size_t>(m.batch));
    for (std::int64_t k = 0; k < m.batch; ++k) values[static_cast<std::size_t>(k)] = f(k);
    slot_ref(slot) = std::move(values);
  }

  const DType storage_;
  const ComputeMode compute_;
  const Format format_;          // what every stored value is rounded to
  const Format product_format_;  // what GEMM operands are rounded to (tf32 for compute tf32)
  std::vector<T> product_a_, product_b_;  // rounded GEMM operands (tf32)
  std::list<ZeroedBuffer> buffers_;
  std::map<int, std::vector<double>> slots_;
  std::vector<std::vector<double>> posted_;
  std::vector<double> scratch_;
  std::vector<int> exponents_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(DType storage, ComputeMode compute) {
  if (compute != ComputeMode::native && compute != ComputeMode::tf32)
    throw Error("compute mode value " + std::to_string(static_cast<int>(compute)) +
                " is unknown (expected native or tf32)");
  if (compute == ComputeMode::tf32 && storage != DType::f32)
    throw Error(std::string("compute mode tf32 (TF32 products, emulated on the CPU) needs f32 storage, got ") +
                to_string(storage));
  switch (storage) {
    case DType::f32:
    case DType::bf16:
    case DType::f16:
      return std::make_unique<CpuBackend<float>>(storage, compute);
    case DType::f64:
      return std::make_unique<CpuBackend<double>>(storage, compute);
  }
  throw Error("storage dtype value " + std::to_string(static_cast<int>(storage)) +
              " is unknown (expected f32, f64, bf16 or f16)");
}

}  // namespace pe::detail
