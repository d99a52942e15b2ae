// The solver and certifier, templated on the multiprecision type R (instantiated in minimax_<D>.cpp).
//
// Notation: phi(y) = y q(y)^p, q(y) = a + b y + c y^2. Two facts make everything below cheap and exact:
//   * d/dy [y^{1/p} q(y)] = (1/p) y^{1/p-1} Q(y) and d/dy phi(y) = q(y)^{p-1} Q(y), with the same
//     quadratic Q(y) = a + (p+1) b y + (2p+1) c y^2. So the extrema of the Remez error and of phi on any
//     interval are its ends plus the (at most two) roots of Q, known in closed form.
//   * Hence a range of phi is the hull of phi at the ends and near the roots of Q. We certify it with
//     outward-rounded interval arithmetic: each root is bracketed by a sign change of Q (so every real
//     root of the quadratic is accounted for and phi is monotone between brackets), and inside a
//     bracket phi is enclosed by the mean-value form phi(m) + phi'(B) (B - m).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/math/constants/constants.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <nlopt.hpp>

#include "interval.hpp"
#include "pe/types.hpp"
#include "synth.hpp"

namespace pe::synth::detail {

template <unsigned Digits>
using Real = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<Digits>,
                                           boost::multiprecision::et_off>;

template <class R>
struct Impl {
  using Coef = std::array<R, 3>;
  using I = Iv<R>;

  // ---------------------------------------------------------------- conversions
  static std::string str(const R& x) {
    return x.str(std::numeric_limits<R>::max_digits10, std::ios_base::scientific);
  }
  static R value(const Value& v) { return v.text.empty() ? R(v.number) : R(v.text); }
  // Decimal strings that are bounds: nudged outward by 1e-(digits-8), far more than printing with
  // digits-3 significant digits can move them.
  static const R& nudge() {
    static const R n = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 - 8));
    return n;
  }
  static constexpr int kBoundDigits = std::numeric_limits<R>::digits10 - 3;
  static std::string str_up(const R& x) { return R(x + abs(x) * nudge()).str(kBoundDigits, std::ios_base::scientific); }
  static std::string str_down(const R& x) {
    return R(x - abs(x) * nudge()).str(kBoundDigits, std::ios_base::scientific);
  }
  static double to_double_up(const R& x) {
    double d = x.template convert_to<double>();
    if (R(d) < x) d = std::nextafter(d, HUGE_VAL);
    return d;
  }
  static double to_double_down(const R& x) {
    double d = x.template convert_to<double>();
    if (R(d) > x) d = std::nextafter(d, -HUGE_VAL);
    return d;
  }

  // ---------------------------------------------------------------- polynomials (interval)
  static std::array<I, 3> icoef(const Coef& c) { return {point(c[0]), point(c[1]), point(c[2])}; }
  static I q_at(const std::array<I, 3>& c, const I& y) { return c[0] + y * (c[1] + y * c[2]); }
  // Q(y) = a + (p+1) b y + (2p+1) c y^2
  static std::array<I, 3> dcoef(const std::array<I, 3>& c, int p) {
    return {c[0], point(R(p + 1)) * c[1], point(R(2 * p + 1)) * c[2]};
  }
  static I phi_at(const std::array<I, 3>& c, int p, const I& y) { return y * power(q_at(c, y), p); }

  // Range of q on [u, v]: the ends, plus the vertex value when the vertex may lie inside.
  static I q_range(const Coef& coef, const R& u, const R& v) {
    const auto c = icoef(coef);
    I r = hull(q_at(c, point(u)), q_at(c, point(v)));
    if (coef[2] != 0) {
      const I two_c = point(R(2)) * c[2];
      const I vertex = point(R(0)) - c[1] / two_c;
      if (vertex.hi >= u && vertex.lo <= v) {
        const I value = c[0] - (c[1] * c[1]) / (point(R(2)) * two_c);
        r = hull(r, value);
      }
    }
    return r;
  }

  // Numeric real roots of A + B y + C y^2 (point coefficients), ascending.
  static std::vector<R> real_roots(const R& A, const R& B, const R& C) {
    std::vector<R> roots;
    if (C == 0) {
      if (B != 0) roots.push_back(-A / B);
      return roots;
    }
    const R disc = B * B - 4 * A * C;
    if (disc < 0) return roots;
    const R sq = sqrt(disc);
    const R qq = -(B + (B >= 0 ? sq : R(-sq))) / 2;
    if (qq != 0) {
      roots.push_back(qq / C);
      roots.push_back(A / qq);
    } else {
      roots.push_back(R(0));
      roots.push_back(R(0));
    }
    std::sort(roots.begin(), roots.end());
    return roots;
  }

  // Proven enclosure of phi([u, v]); nullopt when q > 0 on [u, v] cannot be shown or a root of Q
  // cannot be bracketed (degenerate double root).
  static std::optional<I> phi_range(const Coef& coef, int p, const R& u, const R& v) {
    if (!(q_range(coef, u, v).lo > 0)) return std::nullopt;
    const auto c = icoef(coef);
    const auto d = dcoef(c, p);
    I r = hull(phi_at(c, p, point(u)), phi_at(c, p, point(v)));
    if (p == 0) return r;
    // Every real root of Q must sit in a verified bracket.
    const R A = coef[0], B = R(p + 1) * coef[1], C = R(2 * p + 1) * coef[2];
    std::vector<I> brackets;
    std::vector<R> roots;
    if (C != 0) {
      const I disc = d[1] * d[1] - point(R(4)) * d[0] * d[2];
      if (disc.hi < 0) return r;   // no real root: phi monotone
      if (!(disc.lo > 0)) {
        // (Nearly) a double root: every real root lies within sqrt(disc) / (2|C|) of the vertex.
        const I vertex = point(R(0)) - d[1] / (point(R(2)) * d[2]);
        const R rho = round_up(R(sqrt(std::max(disc.hi, R(0))) / (2 * abs(C)))) * (1 + R("1e-30"));
        brackets.push_back({vertex.lo - rho, vertex.hi + rho});
      } else {
        roots = real_roots(A, B, C);
      }
    } else if (B == 0) {
      return r;  // Q is the constant a
    } else {
      roots = real_roots(A, B, C);
    }
    static const R rel = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 / 2));
    for (const R& root : roots) {
      const R rad = std::max(abs(root), R(1)) * rel;
      const I br{root - rad, root + rad};
      const I qa = q_at(d, point(br.lo)), qb = q_at(d, point(br.hi));
      const bool sign_change = (qa.hi < 0 && qb.lo > 0) || (qa.lo > 0 && qb.hi < 0);
      if (!sign_change) return std::nullopt;
      if (!brackets.empty() && !(brackets.back().hi < br.lo)) return std::nullopt;
      brackets.push_back(br);
    }
    for (const I& br : brackets) {
      const R s = std::max(br.lo, u), t = std::min(br.hi, v);
      if (s > t) continue;
      const I piece{s, t};
      R mid = (s + t) / 2;
      const I dphi = power(q_at(c, piece), p - 1) * q_at(d, piece);
      const I enclosure = phi_at(c, p, point(mid)) + dphi * (piece - point(mid));
      r = hull(r, enclosure);
    }
    return r;
  }

  // ---------------------------------------------------------------- certificates and guards
  static Certificate make_certificate(const I& image_in) {
    const I image{std::min(image_in.lo, R(1)), std::max(image_in.hi, R(1))};
    const I one = point(R(1));
    const R eps = std::max((one - point(image.lo)).hi, (point(image.hi) - one).hi);
    Certificate cert;
    cert.eps = str_up(eps);
    cert.image_lo = str_down(image.lo);
    cert.image_hi = str_up(image.hi);
    cert.eps_d = to_double_up(eps);
    cert.image_lo_d = to_double_down(image.lo);
    cert.image_hi_d = to_double_up(image.hi);
    const R next = (point(image.lo) / point(image.hi)).lo;
    cert.next_l = str_down(next);
    // From the stored (outward-rounded) double image, so a chain of stored steps is self-consistent.
    cert.next_l_d = to_double_down((point(R(cert.image_lo_d)) / point(R(cert.image_hi_d))).lo);
    return cert;
  }

  static std::optional<Certificate> certify(const Coef& coef, int p, const R& l) {
    const auto range = phi_range(coef, p, l, R(1));
    if (!range || !(range->lo > 0)) return std::nullopt;
    return make_certificate(*range);
  }

  // G1..G3 of include/pe/schedule_types.hpp against the stored (double) image of this coefficient set.
  static GuardReport check_guards(const Coef& coef, int p, const R& l, const Certificate& cert, const GuardSpec& g) {
    GuardReport rep;
    const R eta = R(g.eta), top = 1 + eta;
    const R lo = R(cert.image_lo_d), hi = R(cert.image_hi_d);
    rep.g2 = q_range(coef, R(0), top).lo > 0;
    if (!rep.g2) rep.failure = "G2: q > 0 on [0, 1+eta] fails";
    const bool g1_up = q_range(coef, R(0), l).lo >= 1;
    const auto below = phi_range(coef, p, R(0), l);
    rep.g1 = g1_up && below && below->hi <= hi;
    if (!rep.g1 && rep.failure.empty())
      rep.failure = !g1_up ? "G1: q >= 1 (phi(y) >= y) on [0, l] fails" : "G1: phi <= image_hi on [0, l] fails";
    const auto above = rep.g2 ? phi_range(coef, p, R(1), top) : std::nullopt;
    if (above) {
      rep.overshoot = to_double_up((point(above->hi) / point(hi)).hi);
      rep.g3 = above->lo >= lo && rep.overshoot <= g.overshoot_cap;
    }
    if (!rep.g3 && rep.failure.empty())
      rep.failure = !above ? "G3: phi on [1, 1+eta] cannot be enclosed"
                           : (above->lo < lo ? "G3: phi < image_lo on [1, 1+eta]" : "G3: overshoot above the cap");
    return rep;
  }

  // ---------------------------------------------------------------- Remez on min max |y^{1/p} q(y) - 1|
  struct Plain {
    Coef coef;            // scaled so that phi's extremes are symmetric about 1
    std::array<R, 3> alpha;  // unscaled coefficients in the basis y^{1/p} x^j, x = (y - 1) / (1 - l)
    R delta;
    std::vector<R> reference;
    int iterations = 0;
  };

  static Coef monomial_from_scaled(const std::array<R, 3>& alpha, const R& w, const R& u = R(1)) {
    // q = alpha0 + alpha1 x + alpha2 x^2 with x = (y - u) / w
    const R w2 = w * w;
    return {alpha[0] - alpha[1] * u / w + alpha[2] * u * u / w2, alpha[1] / w - 2 * alpha[2] * u / w2, alpha[2] / w2};
  }

  static R q_point(const Coef& c, const R& y) { return c[0] + y * (c[1] + y * c[2]); }

  static std::vector<R> solve_linear(std::vector<std::vector<R>> m, std::vector<R> rhs) {
    const std::size_t n = rhs.size();
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t piv = k;
      for (std::size_t i = k + 1; i < n; ++i)
        if (abs(m[i][k]) > abs(m[piv][k])) piv = i;
      if (m[piv][k] == 0) throw Error("pe-synth: singular Remez system (internal)");
      std::swap(m[k], m[piv]);
      std::swap(rhs[k], rhs[piv]);
      for (std::size_t i = k + 1; i < n; ++i) {
        const R f = m[i][k] / m[k][k];
        for (std::size_t j = k; j < n; ++j) m[i][j] -= f * m[k][j];
        rhs[i] -= f * rhs[k];
      }
    }
    std::vector<R> x(n);
    for (std::size_t k = n; k-- > 0;) {
      R s = rhs[k];
      for (std::size_t j = k + 1; j < n; ++j) s -= m[k][j] * x[j];
      x[k] = s / m[k][k];
    }
    return x;
  }

  // On [l, u]; u = 1 is the step's own problem, u = 1 + eta the fallback for guarded entries (the
  // optimum over the extended interval keeps phi inside its image on [1, 1 + eta]).
  static Plain remez(int p, int degree, const R& l, const R& u = R(1)) {
    const int n = degree + 1, m = n + 1;
    const R w = u - l, inv_p = R(1) / p;
    const R pi = boost::math::constants::pi<R>();
    std::vector<R> ref(m);
    for (int i = 0; i < m; ++i) ref[i] = (u + l) / 2 - (u - l) / 2 * cos(pi * i / (m - 1));
    ref.front() = l;
    ref.back() = u;
    // Levelled to 20 digits short of the working precision (1e-30 relative at 50 digits; Remez converges
    // quadratically, so this costs one extra iteration at most), or to the noise floor of the error
    // evaluation when delta itself is tiny (l close to 1).
    const R tol = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 - 20));
    const R floor = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 - 10));
    Plain out;
    std::array<R, 3> alpha{};
    Coef mono{};
    R h = 0, emax = 0, emin = 0;
    for (int iter = 1; iter <= 60; ++iter) {
      std::vector<std::vector<R>> mat(m, std::vector<R>(m));
      std::vector<R> rhs(m, R(1));
      for (int i = 0; i < m; ++i) {
        const R wy = pow(ref[i], inv_p), x = (ref[i] - u) / w;
        R xj = 1;
        for (int j = 0; j < n; ++j, xj *= x) mat[i][j] = wy * xj;
        mat[i][n] = (i % 2 == 0) ? R(1) : R(-1);
      }
      const std::vector<R> sol = solve_linear(mat, rhs);
      alpha = {sol[0], sol[1], n > 2 ? sol[2] : R(0)};
      h = sol[n];
      mono = monomial_from_scaled(alpha, w, u);
      // New reference: the ends plus the roots of Q inside (l, u) -- all extrema of the error.
      std::vector<R> next{l};
      for (const R& r : real_roots(mono[0], R(p + 1) * mono[1], R(2 * p + 1) * mono[2]))
        if (r > l && r < u) next.push_back(r);
      next.push_back(u);
      emax = -1;
      emin = 1;
      for (const R& y : next) {
        const R e = pow(y, inv_p) * q_point(mono, y) - 1;
        emax = std::max(emax, e);
        emin = std::min(emin, e);
      }
      out.iterations = iter;
      if (static_cast<int>(next.size()) != m)
        throw Error("pe-synth: Remez lost the alternation (p = " + std::to_string(p) + ", l = " + str(l) +
                    ", degree " + std::to_string(degree) + ")");
      const R worst = std::max(emax, R(-emin));
      const bool done = worst - abs(h) <= std::max(abs(h) * tol, floor);
      ref = next;
      if (done) break;
      if (iter == 60)
        throw Error("pe-synth: Remez did not converge (p = " + std::to_string(p) + ", l = " + str(l) + ")");
    }
    // Rescale so phi's image [s^p (1+emin)^p, s^p (1+emax)^p] is symmetric about 1.
    const R sp = 2 / (pow(1 + emin, p) + pow(1 + emax, p));
    const R s = pow(sp, inv_p);
    out.coef = {mono[0] * s, mono[1] * s, mono[2] * s};
    out.alpha = alpha;
    out.delta = std::max(emax, R(-emin));
    out.reference = ref;
    return out;
  }

  // ---------------------------------------------------------------- the guarded (constrained) optimum
  // Epigraph LP in (alpha, M): minimise M subject to 1 <= g <= M on [l, 1] (g = y^{1/p} q), g <= M on
  // [0, l] (G1), 1 <= g <= cap^{1/p} M on [1, 1+eta] (G3) and q >= qmin on [0, 1+eta] (G2), every
  // constraint evaluated in multiprecision on a grid and handed to NLopt (SLSQP) in double. The grid
  // on [l, 1] is refined with the exact extrema of the iterate. The result is certified afterwards.
  static std::optional<Coef> guarded_lp(int p, int degree, const R& l, const GuardSpec& g, const Plain& plain,
                                        double margin) {
    const int n = degree + 1;
    const R w = 1 - l, inv_p = R(1) / p, eta = R(g.eta);
    auto basis_row = [&](const R& y, bool weighted) {
      std::array<double, 3> row{};
      const R wy = weighted ? pow(y, inv_p) : R(1);
      const R x = (y - 1) / w;
      R xj = 1;
      for (int j = 0; j < n; ++j, xj *= x) row[j] = R(wy * xj).template convert_to<double>();
      return row;
    };
    std::vector<R> main_pts;
    const int kGrid = 96;
    const R pi = boost::math::constants::pi<R>();
    for (int i = 0; i <= kGrid; ++i) {
      main_pts.push_back((1 + l) / 2 - (1 - l) / 2 * cos(pi * i / kGrid));       // Chebyshev in y
      main_pts.push_back(exp(log(l) * (kGrid - i) / kGrid));                     // geometric in y
    }
    for (const R& r : plain.reference) main_pts.push_back(r);
    std::vector<std::array<double, 3>> below, above, qrows;
    for (int i = 1; i <= 24; ++i) below.push_back(basis_row(l * i / 24, true));
    for (int i = 0; i <= 24; ++i) above.push_back(basis_row(1 + eta * i / 24, true));
    for (int i = 0; i <= 24; ++i) qrows.push_back(basis_row((1 + eta) * i / 24, false));
    const double cap_root = std::pow(g.overshoot_cap, 1.0 / p) * (1 - margin);
    const double qmin = 1e-6;

    std::vector<double> x(n + 1);
    const R scale = 1 / (1 - plain.delta);
    for (int j = 0; j < n; ++j) x[j] = R(plain.alpha[j] * scale).template convert_to<double>();
    x[n] = R((1 + plain.delta) * scale).template convert_to<double>();

    struct Data {
      std::vector<std::array<double, 3>> rows;  // constraint: sum_j rows[j] x_j + m_coef * M + constant <= 0
      std::vector<double> m_coef, constant;
      int n;
    } data;
    data.n = n;
    auto add = [&](const std::array<double, 3>& row, double sign, double mc, double cst) {
      std::array<double, 3> r{};
      for (int j = 0; j < n; ++j) r[j] = sign * row[j];
      data.rows.push_back(r);
      data.m_coef.push_back(mc);
      data.constant.push_back(cst);
    };
    Coef best{};
    bool have = false;
    for (int round = 0; round < 4; ++round) {
      data.rows.clear();
      data.m_coef.clear();
      data.constant.clear();
      for (const R& y : main_pts) {
        const auto row = basis_row(y, true);
        add(row, -1, 0, 1);   // 1 - g <= 0
        add(row, 1, -1, 0);   // g - M <= 0
      }
      for (const auto& row : below) add(row, 1, -1, 0);
      // G3 below: g >= 1 + margin (M - 1) + 1e-14 on [1, 1+eta], so the double LP's own tolerance and the
      // rounding of the coefficients do not push phi under image_lo (the minimum often sits at 1+eta).
      for (const auto& row : above) {
        add(row, 1, -cap_root, 0);
        add(row, -1, margin, 1 - margin + 1e-14);
      }
      for (const auto& row : qrows) add(row, -1, 0, qmin);

      nlopt::opt opt(nlopt::LD_SLSQP, static_cast<unsigned>(n + 1));
      auto objective = [](unsigned nv, const double* xv, double* grad, void*) -> double {
        if (grad) {
          for (unsigned j = 0; j < nv; ++j) grad[j] = 0;
          grad[nv - 1] = 1;
        }
        return xv[nv - 1];
      };
      opt.set_min_objective(objective, nullptr);
      auto constraints = [](unsigned mcount, double* result, unsigned nv, const double* xv, double* grad,
                            void* ptr) {
        const Data& d = *static_cast<const Data*>(ptr);
        for (unsigned i = 0; i < mcount; ++i) {
          double v = d.constant[i] + d.m_coef[i] * xv[nv - 1];
          for (int j = 0; j < d.n; ++j) v += d.rows[i][j] * xv[j];
          result[i] = v;
          if (grad) {
            for (int j = 0; j < d.n; ++j) grad[i * nv + j] = d.rows[i][j];
            grad[i * nv + nv - 1] = d.m_coef[i];
          }
        }
      };
      std::vector<double> tols(data.rows.size(), 1e-15);
      opt.add_inequality_mconstraint(constraints, &data, tols);
      opt.set_xtol_rel(1e-14);
      opt.set_maxeval(2000);
      double value = 0;
      try {
        opt.optimize(x, value);
      } catch (const std::exception&) {
        // SLSQP reports roundoff-limited stops as exceptions; the iterate is still usable and is
        // certified (or rejected) below.
      }
      std::array<R, 3> alpha{R(x[0]), R(x[1]), n > 2 ? R(x[2]) : R(0)};
      best = monomial_from_scaled(alpha, w);
      have = true;
      for (const R& r : real_roots(best[0], R(p + 1) * best[1], R(2 * p + 1) * best[2]))
        if (r > l && r < 1) main_pts.push_back(r);
    }
    if (!have) return std::nullopt;
    // Centre phi's image on 1 (the guards are scale invariant except q >= 1 on [0, l], checked later).
    const auto range = phi_range(best, p, l, R(1));
    if (!range || !(range->lo > 0)) return std::nullopt;
    const R s = pow(2 / (range->lo + range->hi), inv_p);
    return Coef{best[0] * s, best[1] * s, best[2] * s};
  }

  // ---------------------------------------------------------------- assembling a Step
  // Rounding a coefficient to the storage type T: nearest, or the neighbour below / above.
  template <class T>
  static T rounded(const R& x, int mode) {
    T t = x.template convert_to<T>();
    if (mode == 1 && R(t) > x) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
    if (mode == 2 && R(t) < x) t = std::nextafter(t, std::numeric_limits<T>::infinity());
    return t;
  }

  struct Rounded {
    Coef coef;
    Certificate cert;
    GuardReport guards;
  };
  // The storage-type coefficients: rounded to nearest when that certifies and keeps the guards;
  // otherwise the combination of directed roundings with the smallest certified bound (guards first).
  // Near a degenerate optimum (e.g. q touching 0 between the ends for tiny l) rounding to nearest can
  // lose positivity, while one ulp the other way keeps it.
  template <class T>
  static std::optional<Rounded> round_to(const Coef& c, int p, const R& l, const GuardSpec& g) {
    std::optional<Rounded> best;
    auto better = [](const Rounded& a, const std::optional<Rounded>& b) {
      if (!b) return true;
      if (a.guards.ok() != b->guards.ok()) return a.guards.ok();
      return a.cert.eps_d < b->cert.eps_d;
    };
    const int n = c[2] == 0 ? 2 : 3;
    int combos = 1;
    for (int i = 0; i < n; ++i) combos *= 3;
    // When eps is within rounding of 1 (tiny l), also try q shrunk by a few storage ulps, which moves
    // the image below 2 without losing positivity.
    const int shrinks = 4;
    for (int k = 0; k < combos * shrinks; ++k) {  // k = 0 is round-to-nearest everywhere
      if (k == combos && best && best->cert.eps_d < 1) break;
      const R shrink = 1 - R(k / combos) * 4 * R(std::numeric_limits<T>::epsilon());
      Coef r = c;
      for (int i = 0, code = k % combos; i < n; ++i, code /= 3) r[i] = R(rounded<T>(R(c[i] * shrink), code % 3));
      if (k > 0 && r == best->coef) continue;
      const auto cert = certify(r, p, l);
      if (!cert) {
        if (k == 0) best = Rounded{r, Certificate{}, GuardReport{}}, best->cert.eps_d = HUGE_VAL;
        continue;
      }
      Rounded cand{r, *cert, check_guards(r, p, l, *cert, g)};
      if (k == 0 && cand.guards.ok() && cand.cert.eps_d < 1) return cand;
      if (better(cand, best)) best = cand;
    }
    if (!best || !(best->cert.eps_d < 1)) return std::nullopt;
    return best;
  }

  static Certificate must_certify(const Coef& c, int p, const R& l, const char* what) {
    auto cert = certify(c, p, l);
    if (!cert)
      throw Error(std::string("pe-synth: cannot certify the ") + what + " coefficients for p = " + std::to_string(p) +
                  ", l = " + str(l) + " (q not provably positive on [l, 1] or a degenerate extremum)");
    return *cert;
  }

  static void fill(Step& st, const Coef& c, int p, const R& l, const GuardSpec& g) {
    for (int i = 0; i < 3; ++i) st.coefficients[i] = str(c[i]);
    st.cert = must_certify(c, p, l, "multiprecision");
    const auto r64 = round_to<double>(c, p, l, g);
    const auto r32 = round_to<float>(c, p, l, g);
    if (!r64 || !r32)
      throw Error(std::string("pe-synth: cannot certify the ") + (!r64 ? "double" : "float") +
                  " coefficients for p = " + std::to_string(p) + ", l = " + str(l) +
                  " (no rounding keeps q provably positive on [l, 1] with a bound below 1)");
    for (int i = 0; i < 3; ++i) {
      st.coeff_f64[i] = r64->coef[i].template convert_to<double>();
      st.coeff_f32[i] = r32->coef[i].template convert_to<float>();
    }
    st.cert_f64 = r64->cert;
    st.cert_f32 = r32->cert;
    st.guards_f64 = r64->guards;
    st.guards_f32 = r32->guards;
    st.overshoot = std::max(st.guards_f64.overshoot, st.guards_f32.overshoot);
  }

  static Step solve(const StepRequest& req, int digits) {
    const R l = value(req.l);
    if (!(l > 0 && l < 1)) throw Error("pe-synth: --l = " + str(l) + " is not in (0, 1)");
    Step st;
    st.p = req.p;
    st.degree = req.degree;
    st.digits = digits;
    st.l = str(l);
    if (req.kind == StepKind::newton) {
      fill(st, Coef{R(req.p + 1) / req.p, R(-1) / req.p, R(0)}, req.p, l, req.guards);
      st.eps_plain = st.cert_f64.eps_d;
      return st;
    }
    const Plain plain = remez(req.p, req.degree, l);
    st.delta = str(plain.delta);
    for (const R& r : plain.reference) st.reference.push_back(str(r));
    st.remez_iterations = plain.iterations;
    fill(st, plain.coef, req.p, l, req.guards);
    st.eps_plain = st.cert_f64.eps_d;
    if (req.kind != StepKind::guarded || (st.guards_f64.ok() && st.guards_f32.ok())) return st;
    std::string last_failure;
    auto attempt = [&](const Coef& coef) -> std::optional<Step> {
      Step gs = st;
      try {
        fill(gs, coef, req.p, l, req.guards);
      } catch (const Error& e) {
        last_failure = e.what();
        return std::nullopt;
      }
      if (gs.guards_f64.ok() && gs.guards_f32.ok()) {
        gs.guarded = true;
        return gs;
      }
      last_failure = !gs.guards_f64.ok() ? gs.guards_f64.failure : gs.guards_f32.failure;
      return std::nullopt;
    };
    for (double margin : {1e-7, 1e-5, 1e-3}) {
      if (const auto coef = guarded_lp(req.p, req.degree, l, req.guards, plain, margin))
        if (auto gs = attempt(*coef)) return *gs;
    }
    // SLSQP in double can stall where the constraints are badly scaled (degree 1 near l = 1); the
    // optimum over [l, 1 + eta] is feasible for every guard except possibly q >= 1 below l.
    try {
      if (auto gs = attempt(remez(req.p, req.degree, l, 1 + R(req.guards.eta)).coef)) return *gs;
    } catch (const Error& e) {
      last_failure = e.what();
    }
    throw NoGuardedSolution("pe-synth: no guarded coefficients found for p = " + std::to_string(req.p) + ", degree " +
                std::to_string(req.degree) + ", l = " + str(l) + " (plain optimum: " + st.guards_f64.failure +
                "; constrained: " + last_failure + ")");
  }

  static Recheck recheck(int p, const Value& l_value, const std::array<Value, 3>& coefficients, const GuardSpec& g) {
    const R l = value(l_value);
    const Coef c{value(coefficients[0]), value(coefficients[1]), value(coefficients[2])};
    Recheck out;
    out.q_positive = q_range(c, l, R(1)).lo > 0;
    const auto cert = certify(c, p, l);
    if (!cert) return out;
    out.cert = *cert;
    out.guards = check_guards(c, p, l, out.cert, g);
    return out;
  }
};

}  // namespace pe::synth::detail
