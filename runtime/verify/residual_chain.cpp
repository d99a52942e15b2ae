#include "verify/residual_chain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "pe/detail/format.hpp"
#include "pe/types.hpp"
#include "verify/rounding.hpp"

namespace pe::detail::verify {
namespace {

// Slots of the backend's scalar store used by the chain; the verifier keeps below this range.
constexpr int kSlotBase = 64;
constexpr int kForwardSlot = kSlotBase, kBackwardSlot = kSlotBase + 1;
constexpr int kNormSlotBase = kSlotBase + 2;  // binary64: 2 per factor (inf and 1 norm)
// extended: 3 per product (exponents of the left factor, the right high part, the right low part)

Op flip(Op op) { return op == Op::N ? Op::T : Op::N; }

}  // namespace

int ResidualChain::slice_bits(std::int64_t n) {
  // n (2^b + 1)^2 <= 2^53  <=>  (2^b + 1)^2 <= floor(2^53 / n), exact in 64-bit integers for b <= 26.
  const std::uint64_t limit = (std::uint64_t{1} << 53) / static_cast<std::uint64_t>(std::max<std::int64_t>(n, 1));
  int bits = 26;
  while (bits > 1) {
    const std::uint64_t side = (std::uint64_t{1} << bits) + 1;
    if (side * side <= limit) break;
    --bits;
  }
  return bits;
}

ResidualChain::ResidualChain(Backend& wide, std::int64_t n, std::int64_t batch, ChainArithmetic arithmetic,
                             int max_factors)
    : be_(wide), n_(n), batch_(batch), arithmetic_(arithmetic), max_factors_(max_factors), bits_(slice_bits(n)) {
  if (wide.storage() != DType::f64)
    throw Error(std::string("verify: the residual chain needs an f64 backend, got ") + to_string(wide.storage()));
  if (n < 1 || batch < 1 || max_factors < 1)
    throw Error("verify: residual chain of " + std::to_string(max_factors) + " factors of order " + std::to_string(n) +
                " x batch " + std::to_string(batch) + ", expected all >= 1");
  const bool extended = arithmetic == ChainArithmetic::extended;
  for (int i = 0; i < 2; ++i) {
    q_hi_[i] = be_.allocate(n, n, batch);
    if (extended) q_lo_[i] = be_.allocate(n, n, batch);
  }
  if (extended) {
    for (Mat& m : left_slices_) m = be_.allocate(n, n, batch);
    for (Mat& m : right_slices_) m = be_.allocate(n, n, batch);
    left_remainder_ = be_.allocate(n, n, batch);
    right_remainder_ = be_.allocate(n, n, batch);
    low_slice_[0] = be_.allocate(n, n, batch);
    low_remainder_ = be_.allocate(n, n, batch);
    term_ = be_.allocate(n, n, batch);
  }
  const auto vector = [&] { return be_.allocate(n, 1, batch); };
  ones_ = vector();
  floor_ = vector();
  forward_ = vector();
  forward_next_ = vector();
  backward_ = vector();
  backward_next_ = vector();
  for (Mat& t : tmp_) t = vector();
  y_.resize(static_cast<std::size_t>(max_factors) + 1);
  for (Mat& y : y_) y = vector();
  const std::vector<double> one(static_cast<std::size_t>(n * batch), 1.0);
  const std::vector<double> small(one.size(), kVectorFloor);
  be_.upload(HostMat{const_cast<double*>(one.data()), DType::f64, n, 1, n, batch, n, Layout::col_major}, ones_);
  be_.upload(HostMat{const_cast<double*>(small.data()), DType::f64, n, 1, n, batch, n, Layout::col_major}, floor_);
}

void ResidualChain::abs_mv(Op op, const Mat& m, const Mat& x, Mat& y, double& relative) {
  be_.copy(floor_, y);
  be_.abs_gemv(op, m, x, 1.0, y);
  relative += gamma(n_ + 1);  // the dot products (gamma_n) and the one addition of the floor
}

void ResidualChain::combine(double alpha, const Mat& a, double beta, const Mat* b, Mat& out, double& relative) {
  const double zero = 0;
  be_.axpby_identity({&alpha, 1}, &a, {&beta, 1}, b, {&zero, 1}, out);
  const double one = 1;
  be_.axpby_identity({&one, 1}, &out, {&one, 1}, &floor_, {&zero, 1}, out);
  relative += 6 * kUnitRoundoff;  // two products, two sums, one more sum for the floor (and slack)
}

ResidualChain::Result ResidualChain::evaluate(ChainFactor start, std::span<const ChainFactor> factors) {
  const auto k = static_cast<int>(factors.size());
  if (k < 1 || k > max_factors_)
    throw Error("verify: residual chain of " + std::to_string(k) + " factors, planned for 1.." +
                std::to_string(max_factors_));
  const bool extended = arithmetic_ == ChainArithmetic::extended;
  double forward_relative = 0, backward_relative = 0;

  // y_j = |F_j|^T ... |F_k|^T 1 for j = k..1 (exact inputs only), y_{k+1} = 1.
  be_.copy(ones_, y_[static_cast<std::size_t>(k)]);
  for (int j = k - 1; j >= 0; --j) {
    const ChainFactor& f = factors[static_cast<std::size_t>(j)];
    abs_mv(flip(f.op), *f.matrix, y_[static_cast<std::size_t>(j + 1)], y_[static_cast<std::size_t>(j)],
           backward_relative);
  }
  // Both accumulators start at 0 (plus the floor, harmless for an upper bound).
  be_.copy(floor_, forward_);
  be_.copy(floor_, backward_);

  Operand q{start.matrix, nullptr, start.op};
  for (int j = 0; j < k; ++j) {
    const ChainFactor& f = factors[static_cast<std::size_t>(j)];
    Mat& out_hi = q_hi_[j % 2];
    const Mat& y_this = y_[static_cast<std::size_t>(j)];
    const Mat& y_next = y_[static_cast<std::size_t>(j + 1)];
    if (extended) {
      Mat& out_lo = q_lo_[j % 2];
      product_extended(f, q, out_hi, out_lo, y_next, y_this, kNormSlotBase + 3 * j, forward_relative,
                       backward_relative);
      q = Operand{&out_hi, &out_lo, Op::N};
    } else {
      product_binary64(f, q, out_hi, y_this, forward_relative, backward_relative);
      q = Operand{&out_hi, nullptr, Op::N};
    }
  }
  result_hi_ = q.hi;
  result_lo_ = extended ? q.lo : nullptr;

  be_.max_abs_row_sum(forward_, kForwardSlot);
  be_.max_abs_row_sum(backward_, kBackwardSlot);
  if (!extended) {
    // ||F_j||_inf and ||F_j||_1 for the underflow term of the products.
    for (int j = 0; j < k; ++j) {
      const ChainFactor& f = factors[static_cast<std::size_t>(j)];
      abs_mv(f.op, *f.matrix, ones_, tmp_[0], forward_relative);
      be_.max_abs_row_sum(tmp_[0], kNormSlotBase + 2 * j);
      abs_mv(flip(f.op), *f.matrix, ones_, tmp_[1], backward_relative);
      be_.max_abs_row_sum(tmp_[1], kNormSlotBase + 2 * j + 1);
    }
  }
  const std::vector<std::vector<double>> scalars = be_.fetch_scalars();
  const auto scalar = [&](int slot, std::int64_t member) {
    return scalars.at(static_cast<std::size_t>(slot)).at(static_cast<std::size_t>(member));
  };

  Result result;
  result.bound.assign(static_cast<std::size_t>(batch_), std::numeric_limits<double>::infinity());
  result.failure.assign(static_cast<std::size_t>(batch_), "");
  const double forward_factor = relative_error_factor(forward_relative);
  const double backward_factor = relative_error_factor(backward_relative);
  for (std::int64_t m = 0; m < batch_; ++m) {
    std::string& failure = result.failure[static_cast<std::size_t>(m)];
    double inf_norm = up(scalar(kForwardSlot, m) * forward_factor);
    double one_norm = up(scalar(kBackwardSlot, m) * backward_factor);
    if (extended) {
      // The slice products were exact only if every slice unit and every product unit is a
      // representable power of two (docs/certificate.md, "Extended products").
      for (int j = 0; j < k && failure.empty(); ++j) {
        const double left = scalar(kNormSlotBase + 3 * j, m), high = scalar(kNormSlotBase + 3 * j + 1, m);
        const double low = j == 0 ? std::numeric_limits<double>::infinity() : scalar(kNormSlotBase + 3 * j + 2, m);
        if (std::isnan(left) || std::isnan(high) || std::isnan(low)) {
          failure = "a non-finite entry in the product chain (step " + std::to_string(j + 1) + ")";
          break;
        }
        const double b = bits_;
        const bool sigma_normal = left - 3 * b + 53 >= -1021 && high - 3 * b + 53 >= -1021 && low - b + 53 >= -1021;
        const bool units_representable = left + high - 5 * b >= -1074 && left + low - 3 * b >= -1074;
        if (!sigma_normal || !units_representable)
          failure = "extended products: entries below the range of exact slicing (step " + std::to_string(j + 1) +
                    ", smallest row exponents " + format_number(left) + ", " + format_number(high) + ")";
      }
    } else {
      // Underflow in the products: at most (n + 1) eta / 2 per entry of E_j, an all-ones matrix, carried
      // to W by |F_k| ... |F_{j+1}|: its inf-norm is at most n (n + 1) eta / 2 prod_{i > j} ||F_i||_inf.
      const double eta_entry = (static_cast<double>(n_) + 1) * kSmallestSubnormal;
      double carried_inf = 1, carried_one = 1, extra_inf = 0, extra_one = 0;
      for (int j = k - 1; j >= 0; --j) {
        extra_inf = up(extra_inf + static_cast<double>(n_) * eta_entry * carried_inf);
        extra_one = up(extra_one + static_cast<double>(n_) * eta_entry * carried_one);
        carried_inf = up(carried_inf * up(scalar(kNormSlotBase + 2 * j, m) * forward_factor));
        carried_one = up(carried_one * up(scalar(kNormSlotBase + 2 * j + 1, m) * backward_factor));
      }
      inf_norm = up(inf_norm + up(extra_inf * (1 + 4 * kUnitRoundoff)));
      one_norm = up(one_norm + up(extra_one * (1 + 4 * kUnitRoundoff)));
    }
    if (!failure.empty()) continue;
    const double bound = up(std::sqrt(inf_norm * one_norm) * (1 + 2 * kUnitRoundoff));
    if (!std::isfinite(bound)) {
      failure = "the rounding bound of the product chain is not finite (" + format_number(bound) + ")";
      continue;
    }
    result.bound[static_cast<std::size_t>(m)] = bound;
  }
  return result;
}

void ResidualChain::product_binary64(ChainFactor f, const Operand& q, Mat& out, const Mat& y_this,
                                     double& forward_relative, double& backward_relative) {
  be_.gemm(f.op, q.op, 1.0, *f.matrix, *q.hi, 0.0, out);
  // L_j = gamma_n |F_j| |Q_{j-1}| (the underflow part is added as a scalar at the end).
  const double g = gamma(n_);
  // forward: z <- |F_j| (z + g |Q_{j-1}| 1)
  abs_mv(q.op, *q.hi, ones_, tmp_[0], forward_relative);
  combine(1.0, forward_, g, &tmp_[0], tmp_[1], forward_relative);
  abs_mv(f.op, *f.matrix, tmp_[1], forward_, forward_relative);
  // backward: acc += g |Q_{j-1}|^T y_j
  abs_mv(flip(q.op), *q.hi, y_this, tmp_[2], backward_relative);
  combine(1.0, backward_, g, &tmp_[2], backward_next_, backward_relative);
  be_.copy(backward_next_, backward_);
}

void ResidualChain::product_extended(ChainFactor f, const Operand& q, Mat& out_hi, Mat& out_lo, const Mat& y_next,
                                     const Mat& y_this, int exponent_slot_base, double& forward_relative,
                                     double& backward_relative) {
  const Op fop = f.op;  // the left factor is op(M): its row slices are M's row (N) or column (T) slices
  be_.split_slices(*f.matrix, fop == Op::N, bits_, left_slices_, left_remainder_, exponent_slot_base);
  // The right operand's column slices: op(H)'s columns are H's columns (N) or rows (T).
  be_.split_slices(*q.hi, q.op == Op::T, bits_, right_slices_, right_remainder_, exponent_slot_base + 1);
  const bool has_low = q.lo != nullptr;
  if (has_low) be_.split_slices(*q.lo, false, bits_, low_slice_, low_remainder_, exponent_slot_base + 2);

  // Exact slice products, summed error-free: every (a, b) with a + b <= 5 but (3, 3); the low part with
  // the first two left slices.
  const double zero = 0;
  be_.gemm(fop, q.op, 1.0, left_slices_[0], right_slices_[0], 0.0, out_hi);
  be_.set_identity({&zero, 1}, out_lo);
  int terms = 1;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      if ((a == 0 && b == 0) || (a == 2 && b == 2)) continue;
      be_.gemm(fop, q.op, 1.0, left_slices_[a], right_slices_[b], 0.0, term_);
      be_.two_sum_accumulate(out_hi, out_lo, term_);
      ++terms;
    }
  if (has_low)
    for (int a = 0; a < 2; ++a) {
      be_.gemm(fop, Op::N, 1.0, left_slices_[a], low_slice_[0], 0.0, term_);
      be_.two_sum_accumulate(out_hi, out_lo, term_);
      ++terms;
    }

  // L_j = c (36 |F||H| + 12 |F||L|)                      accumulation of the low part
  //     + |F3||H3| + |F3||L1|                             dropped slice products
  //     + |R_F| (|H| + |L|) + (|F| + |R_F|)(|R_H| + |R_L|)  remainders of the slicing
  // with c = gamma_K K u (1 + u)^K for K terms (docs/certificate.md, "Extended products").
  const double acc = up(gamma(terms) * static_cast<double>(terms) * kUnitRoundoff *
                        std::pow(1 + kUnitRoundoff, terms) * (1 + 4 * kUnitRoundoff));
  const Mat& f3 = left_slices_[2];
  const Mat& h3 = right_slices_[2];
  double& fr = forward_relative;
  double& br = backward_relative;

  // Forward probe, applied to 1:
  //   z <- |F| (z + acc (36 a + 12 b) + c + d) + |F3| (e + f) + |R_F| (a + b + c + d)
  // with a = |H|1, b = |L|1, c = |R_H|1, d = |R_L|1, e = |H3|1, f = |L1|1 (b = d = f = 0 without L).
  Mat &av = tmp_[0], &cd = tmp_[1], &ef = tmp_[2], &t = tmp_[3], &ab = tmp_[4], &accv = tmp_[5];
  Mat& w = backward_next_;  // free while the forward probe runs
  abs_mv(q.op, *q.hi, ones_, av, fr);
  abs_mv(q.op, right_remainder_, ones_, cd, fr);
  abs_mv(q.op, h3, ones_, ef, fr);
  if (has_low) {
    abs_mv(Op::N, *q.lo, ones_, t, fr);  // b
    combine(1.0, av, 1.0, &t, ab, fr);
    combine(36.0, av, 12.0, &t, accv, fr);
    abs_mv(Op::N, low_remainder_, ones_, t, fr);  // d
    combine(1.0, cd, 1.0, &t, cd, fr);
    abs_mv(Op::N, low_slice_[0], ones_, t, fr);  // f
    combine(1.0, ef, 1.0, &t, ef, fr);
  } else {
    be_.copy(av, ab);
    combine(36.0, av, 0.0, nullptr, accv, fr);
  }
  combine(1.0, forward_, acc, &accv, w, fr);
  combine(1.0, w, 1.0, &cd, w, fr);
  abs_mv(fop, *f.matrix, w, forward_next_, fr);
  abs_mv(fop, f3, ef, t, fr);
  combine(1.0, forward_next_, 1.0, &t, forward_next_, fr);
  combine(1.0, ab, 1.0, &cd, w, fr);
  abs_mv(fop, left_remainder_, w, t, fr);
  combine(1.0, forward_next_, 1.0, &t, forward_, fr);

  // Backward probe, the transposed terms with y = y_{j+1}, s = |F|^T y = y_j, s3 = |F3|^T y,
  // sR = |R_F|^T y:
  //   acc_b += |H|^T (36 acc s + sR) + |L|^T (12 acc s + sR) + (|R_H| + |R_L|)^T (s + sR) + (|H3| + |L1|)^T s3
  Mat &s3 = tmp_[0], &sr = tmp_[1], &v = tmp_[2];
  Mat& sum = forward_next_;  // free again
  abs_mv(flip(fop), f3, y_next, s3, br);
  abs_mv(flip(fop), left_remainder_, y_next, sr, br);
  be_.copy(backward_, sum);
  const auto add_term = [&](Op op, const Mat& m, const Mat& x) {
    abs_mv(op, m, x, t, br);
    combine(1.0, sum, 1.0, &t, sum, br);
  };
  combine(36.0 * acc, y_this, 1.0, &sr, v, br);
  add_term(flip(q.op), *q.hi, v);
  combine(1.0, y_this, 1.0, &sr, v, br);
  add_term(flip(q.op), right_remainder_, v);
  if (has_low) add_term(Op::T, low_remainder_, v);
  add_term(flip(q.op), h3, s3);
  if (has_low) {
    add_term(Op::T, low_slice_[0], s3);
    combine(12.0 * acc, y_this, 1.0, &sr, v, br);
    add_term(Op::T, *q.lo, v);
  }
  be_.copy(sum, backward_);
}

}  // namespace pe::detail::verify
