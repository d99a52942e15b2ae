// The solver and certifier, templated on the multiprecision type R (instantiated in minimax_<D>.cpp).
//
// Notation: phi(y) = y q(y)^p, q(y) = c_0 + c_1 y + ... + c_d y^d, d = 1..kMaxDegree. Two facts make
// everything below cheap and exact:
//   * d/dy [y^{1/p} q(y)] = (1/p) y^{1/p-1} Q(y) and d/dy phi(y) = q(y)^{p-1} Q(y), with the same
//     polynomial Q(y) = sum_j (p j + 1) c_j y^j of degree d. So the extrema of the Remez error and of phi
//     on any interval are its ends plus the real roots of Q.
//   * Hence a range of phi is the hull of phi at the ends and near the roots of Q. We certify it with
//     outward-rounded interval arithmetic: `isolate` finds brackets outside of which Q provably keeps its
//     sign (recursively: Q' keeps its sign between its own brackets, so Q is monotone there and has a
//     root exactly where its proven signs at the ends differ), so phi is monotone between brackets; inside
//     a bracket phi is enclosed by the mean-value form phi(m) + phi'(B) (B - m).
// The same machinery gives q's range (positivity, guard G1) with q' in place of Q.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/math/constants/constants.hpp>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <nlopt.hpp>

#include "interval.hpp"
#include "pe/schedule_types.hpp"
#include "pe/types.hpp"
#include "synth.hpp"

namespace pe::synth::detail {

template <unsigned Digits>
using Real = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<Digits>,
                                           boost::multiprecision::et_off>;

// How a coefficient is rounded to a storage type.
enum class Rounding { nearest, down, up };

template <class R>
struct Impl {
  static constexpr int kCoefficients = kMaxCoefficients;
  using Coef = std::array<R, kCoefficients>;  // c_0 .. c_4, zero above the degree
  using I = Iv<R>;
  using IPoly = std::array<I, kCoefficients>;

  // ---------------------------------------------------------------- conversions
  static std::string str(const R& x) {
    return x.str(std::numeric_limits<R>::max_digits10, std::ios_base::scientific);
  }
  static R value(const Value& v) { return v.is_text ? R(v.text) : R(v.number); }
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

  // ---------------------------------------------------------------- polynomials
  static int degree_of(const Coef& c) {
    for (int j = kCoefficients - 1; j > 0; --j)
      if (c[j] != 0) return j;
    return 0;
  }
  static R eval(const Coef& c, int deg, const R& y) {
    R r = c[deg];
    for (int j = deg - 1; j >= 0; --j) r = c[j] + y * r;
    return r;
  }
  static Coef derivative(const Coef& c) {
    Coef d{};
    for (int j = 1; j < kCoefficients; ++j) d[j - 1] = c[j] * j;
    return d;
  }
  static IPoly ipoly(const Coef& c) {
    IPoly r;
    for (int j = 0; j < kCoefficients; ++j) r[j] = point(c[j]);
    return r;
  }
  static I ieval(const IPoly& c, int deg, const I& y) {
    I r = c[deg];
    for (int j = deg - 1; j >= 0; --j) r = c[j] + y * r;
    return r;
  }
  static IPoly iderivative(const IPoly& c) {
    IPoly d;
    d.fill(point(R(0)));
    for (int j = 1; j < kCoefficients; ++j) d[j - 1] = point(R(j)) * c[j];
    return d;
  }
  static int ipoly_degree(const IPoly& c) {
    for (int j = kCoefficients - 1; j > 0; --j)
      if (!(c[j].lo == 0 && c[j].hi == 0)) return j;
    return 0;
  }
  // Q(y) = sum_j (p j + 1) c_j y^j, the factor of phi' = q^{p-1} Q and of the Remez error's derivative.
  static Coef q_to_Q(const Coef& c, int p) {
    Coef Q{};
    for (int j = 0; j < kCoefficients; ++j) Q[j] = c[j] * (p * j + 1);
    return Q;
  }
  static IPoly iq_to_Q(const Coef& c, int p) {
    IPoly Q;
    for (int j = 0; j < kCoefficients; ++j) Q[j] = point(R(p * j + 1)) * point(c[j]);
    return Q;
  }
  static I phi_at(const IPoly& c, int deg, int p, const I& y) { return y * power(ieval(c, deg, y), p); }

  // ---------------------------------------------------------------- numeric real roots
  static int sign(const R& v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }

  // The root of P in (a, b) where P(a), P(b) have the opposite signs sa, -sa and P is monotone:
  // safeguarded Newton (bisection whenever a step leaves the bracket), started from the same iteration
  // in double. Accurate to 10^-(digits/2 + 4) relative: enough for the brackets of `isolate` (radius
  // 10^-(digits/2)) and for Remez references (the error at an extremum moves quadratically with it).
  static R monotone_root(const Coef& P, int deg, R a, R b, int sa) {
    const Coef dP = derivative(P);
    auto newton = [&](auto lo, auto hi, auto x, const auto& coef, const auto& dcoef, auto tol, int iterations) {
      using T = decltype(x);
      using std::abs;  // double here; R finds boost's by argument-dependent lookup
      auto ev = [&](const auto& c, int d, const T& y) {
        T r = T(c[d]);
        for (int j = d - 1; j >= 0; --j) r = T(c[j]) + y * r;
        return r;
      };
      for (int iter = 0; iter < iterations; ++iter) {
        const T fx = ev(coef, deg, x);
        if (fx == 0) break;
        if ((fx > 0 ? 1 : -1) == sa)
          lo = x;
        else
          hi = x;
        const T d = ev(dcoef, deg - 1, x);
        const T step = d != 0 ? T(x - fx / d) : T(lo - 1);
        const T next = step > lo && step < hi ? step : T((lo + hi) / 2);
        if (abs(next - x) <= tol * std::max(T(1), abs(x)) || hi - lo <= tol * std::max(T(1), abs(x))) return next;
        x = next;
      }
      return x;
    };
    std::array<double, kCoefficients> Pd{}, dPd{};
    for (int j = 0; j < kCoefficients; ++j) {
      Pd[j] = P[j].template convert_to<double>();
      dPd[j] = dP[j].template convert_to<double>();
    }
    const double ad = a.template convert_to<double>(), bd = b.template convert_to<double>();
    double start = newton(ad, bd, (ad + bd) / 2, Pd, dPd, 1e-15, 200);
    R x = R(start);
    if (!(x > a && x < b)) x = (a + b) / 2;
    static const R tol = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 / 2 + 4));
    return newton(a, b, x, P, dP, tol, 400);
  }

  // Numeric real roots of P in the open interval (a, b), ascending: between consecutive critical points
  // (the roots of P', recursively) P is monotone, so each sign change holds exactly one root.
  static std::vector<R> real_roots(const Coef& P, const R& a, const R& b) {
    const int deg = degree_of(P);
    std::vector<R> roots;
    if (deg == 0) return roots;
    std::vector<R> pts{a};
    if (deg >= 2)
      for (const R& r : real_roots(derivative(P), a, b)) pts.push_back(r);
    pts.push_back(b);
    for (std::size_t i = 0; i + 1 < pts.size(); ++i) {
      const R f0 = eval(P, deg, pts[i]), f1 = eval(P, deg, pts[i + 1]);
      if (f0 == 0 && i > 0) roots.push_back(pts[i]);  // a double root at a critical point
      if (f0 != 0 && f1 != 0 && sign(f0) != sign(f1)) roots.push_back(monotone_root(P, deg, pts[i], pts[i + 1], sign(f0)));
    }
    return roots;
  }

  // ---------------------------------------------------------------- proven root isolation
  static int isign(const I& v) { return v.lo > 0 ? 1 : v.hi < 0 ? -1 : 0; }

  static std::vector<I> merged(std::vector<I> brackets) {
    std::sort(brackets.begin(), brackets.end(), [](const I& x, const I& y) { return x.lo < y.lo; });
    std::vector<I> out;
    for (const I& b : brackets) {
      if (!out.empty() && !(out.back().hi < b.lo))
        out.back().hi = std::max(out.back().hi, b.hi);
      else
        out.push_back(b);
    }
    return out;
  }

  // Radius of a bracket around x: half the working precision's digits, relative.
  static R bracket_radius(const R& x) {
    static const R rel = pow(R(10), -static_cast<int>(std::numeric_limits<R>::digits10 / 2));
    return std::max(abs(x), R(1)) * rel;
  }

  // P is monotone on [s, t] (P' does not change sign there). Appends brackets that hold every point
  // where P may change sign, proving a strict sign of P at the ends of what remains; false when a sign
  // cannot be proven even with widened brackets.
  static bool monotone_segment(const IPoly& P, int deg, const Coef& mid, R s, R t, std::vector<I>& out) {
    auto at = [&](const R& x) { return isign(ieval(P, deg, point(x))); };
    int ss = at(s), st = at(t);
    // A sign that cannot be proven at an end (P vanishes there, to working precision): move that end
    // inward by a small bracket until it can.
    for (int side = 0; side < 2; ++side) {
      int& sg = side == 0 ? ss : st;
      if (sg != 0) continue;
      R rad = bracket_radius(side == 0 ? s : t);
      for (int widen = 0; widen < 8 && sg == 0; ++widen, rad *= 100) {
        const R moved = side == 0 ? R(s + rad) : R(t - rad);
        if (!(moved > s && moved < t)) break;
        sg = at(moved);
        if (sg != 0) {
          out.push_back(side == 0 ? I{s, moved} : I{moved, t});
          (side == 0 ? s : t) = moved;
        }
      }
      if (sg == 0) {  // the whole segment is within rounding of a root: keep it as one bracket
        out.push_back(I{s, t});
        return true;
      }
    }
    if (ss == st) return true;  // monotone with the same strict sign at both ends: no root
    const R root = monotone_root(mid, deg, s, t, ss);
    R rad = bracket_radius(root);
    for (int widen = 0; widen < 8; ++widen, rad *= 100) {
      const R lo = std::max(s, R(root - rad)), hi = std::min(t, R(root + rad));
      const int sl = lo == s ? ss : at(lo), sh = hi == t ? st : at(hi);
      if (sl == ss && sh == st) {
        out.push_back(I{lo, hi});
        return true;
      }
    }
    return false;
  }

  // Brackets (sorted, disjoint, inside [u, v]) such that P does not change sign on any gap between them
  // (or between them and u, v). nullopt when that cannot be proven.
  static std::optional<std::vector<I>> isolate(const IPoly& P, const R& u, const R& v) {
    const int deg = ipoly_degree(P);
    if (deg == 0) return std::vector<I>{};  // constant: never changes sign
    Coef mid{};
    for (int j = 0; j < kCoefficients; ++j) mid[j] = (P[j].lo + P[j].hi) / 2;
    std::vector<I> out;
    if (deg == 1) {
      if (!monotone_segment(P, deg, mid, u, v, out)) return std::nullopt;
      return merged(out);
    }
    const IPoly dP = iderivative(P);
    const auto critical = isolate(dP, u, v);
    if (!critical) return std::nullopt;
    R s = u;
    for (const I& b : *critical) {
      // On the gap before b, P' keeps its sign: P is monotone there.
      if (s < b.lo && !monotone_segment(P, deg, mid, s, b.lo, out)) return std::nullopt;
      // Over b itself: P may change sign only when its mean-value enclosure holds 0.
      const R m = (b.lo + b.hi) / 2;
      const I enclosure = ieval(P, deg, point(m)) + ieval(dP, deg - 1, b) * (b - point(m));
      if (isign(enclosure) == 0) out.push_back(b);
      s = b.hi;
    }
    if (s < v && !monotone_segment(P, deg, mid, s, v, out)) return std::nullopt;
    return merged(out);
  }

  // Proven enclosure of f on [u, v] where f is monotone between the brackets: f at u, v and at every
  // bracket end, plus the mean-value form over each bracket (df encloses f' on an interval).
  template <class F, class DF>
  static I monotone_range(const F& f, const DF& df, const std::vector<I>& brackets, const R& u, const R& v) {
    I r = hull(f(point(u)), f(point(v)));
    for (const I& br : brackets) {
      const R s = std::max(br.lo, u), t = std::min(br.hi, v);
      if (s > t) continue;
      const I piece{s, t};
      const R m = (s + t) / 2;
      r = hull(r, hull(f(point(s)), f(point(t))));
      r = hull(r, f(point(m)) + df(piece) * (piece - point(m)));
    }
    return r;
  }

  // The proven facts about one coefficient set on [0, top] that every range below reuses: brackets of
  // q' and of Q over the whole of [0, top]. On any [u, v] inside, q (phi) is monotone between the
  // clipped brackets, so a range needs only point evaluations there (isolating once instead of once per
  // interval: certify and the three guards share it).
  struct Analysis {
    int p = 0, deg = 0;
    R top;
    IPoly c, dq, Q;
    std::optional<std::vector<I>> q_brackets, Q_brackets;
  };
  static Analysis analyse(const Coef& coef, int p, const R& top) {
    Analysis a;
    a.p = p;
    a.deg = degree_of(coef);
    a.top = top;
    a.c = ipoly(coef);
    a.dq = iderivative(a.c);
    a.Q = iq_to_Q(coef, p);
    a.q_brackets = isolate(a.dq, R(0), top);
    a.Q_brackets = isolate(a.Q, R(0), top);
    return a;
  }

  // Range of q on [u, v] (inside [0, a.top]); nullopt when q' could not be isolated.
  static std::optional<I> q_range(const Analysis& a, const R& u, const R& v) {
    if (!a.q_brackets) return std::nullopt;
    return monotone_range([&](const I& y) { return ieval(a.c, a.deg, y); },
                          [&](const I& y) { return ieval(a.dq, std::max(a.deg - 1, 0), y); }, *a.q_brackets, u, v);
  }

  // Proven enclosure of phi([u, v]) (inside [0, a.top]); nullopt when q > 0 on [u, v] cannot be shown or
  // Q's sign changes could not be isolated.
  static std::optional<I> phi_range(const Analysis& a, const R& u, const R& v) {
    const auto qr = q_range(a, u, v);
    if (!qr || !(qr->lo > 0) || !a.Q_brackets) return std::nullopt;
    const int p = a.p;
    return monotone_range([&](const I& y) { return phi_at(a.c, a.deg, p, y); },
                          [&](const I& y) { return power(ieval(a.c, a.deg, y), p - 1) * ieval(a.Q, a.deg, y); },
                          *a.Q_brackets, u, v);
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

  static std::optional<Certificate> certify(const Analysis& a, const R& l) {
    const auto range = phi_range(a, l, R(1));
    if (!range || !(range->lo > 0)) return std::nullopt;
    return make_certificate(*range);
  }
  static std::optional<Certificate> certify(const Coef& coef, int p, const R& l) { return certify(analyse(coef, p, R(1)), l); }

  // G1..G3 of include/pe/schedule_types.hpp against the stored (double) image of this coefficient set
  // (a analysed up to 1 + eta).
  static GuardReport check_guards(const Analysis& a, const R& l, const Certificate& cert, const GuardSpec& g) {
    GuardReport rep;
    const R eta = R(g.eta), top = 1 + eta;
    const R lo = R(cert.image_lo_d), hi = R(cert.image_hi_d);
    const auto q_all = q_range(a, R(0), top);
    rep.g2 = q_all && q_all->lo > 0;
    if (!rep.g2) rep.failure = "G2: q > 0 on [0, 1+eta] fails";
    const auto q_below = q_range(a, R(0), l);
    const bool g1_up = q_below && q_below->lo >= 1;
    const auto below = phi_range(a, R(0), l);
    rep.g1 = g1_up && below && below->hi <= hi;
    if (!rep.g1 && rep.failure.empty())
      rep.failure = !g1_up ? "G1: q >= 1 (phi(y) >= y) on [0, l] fails" : "G1: phi <= image_hi on [0, l] fails";
    const auto above = rep.g2 ? phi_range(a, R(1), top) : std::nullopt;
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
    Coef coef;     // scaled so that phi's extremes are symmetric about 1
    Coef alpha;    // unscaled coefficients in the basis y^{1/p} x^j, x = (y - u) / (u - l)
    R delta;
    std::vector<R> reference;
    int iterations = 0;
  };

  static R ipow(const R& x, int n) {
    R r = 1;
    for (int i = 0; i < n; ++i) r *= x;
    return r;
  }
  // q = sum_j alpha_j x^j with x = (y - u) / w, in powers of y: c_i = sum_{j >= i} alpha_j C(j, i) (-u)^{j-i} / w^j.
  static Coef monomial_from_scaled(const Coef& alpha, const R& w, const R& u) {
    Coef c{};
    for (int j = 0; j < kCoefficients; ++j) {
      if (alpha[j] == 0) continue;
      R binom = 1;  // C(j, i), built from i = j downwards
      for (int i = j; i >= 0; --i) {
        c[i] += alpha[j] * binom * ipow(R(-u), j - i) / ipow(w, j);
        binom = binom * i / (j - i + 1);
      }
    }
    return c;
  }

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
  // optimum over the extended interval keeps phi inside its image on [1, 1 + eta]). The weighted
  // basis y^{1/p} y^j (j = 0..degree) is a Haar system on (0, 1 + eta], so the optimum equioscillates
  // at degree + 2 points and the exchange converges.
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
    Coef alpha{}, mono{};
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
      alpha = Coef{};
      for (int j = 0; j < n; ++j) alpha[j] = sol[j];
      h = sol[n];
      mono = monomial_from_scaled(alpha, w, u);
      // New reference: the ends plus the roots of Q inside (l, u) -- all extrema of the error.
      std::vector<R> next{l};
      for (const R& r : real_roots(q_to_Q(mono, p), l, u)) next.push_back(r);
      next.push_back(u);
      emax = -1;
      emin = 1;
      for (const R& y : next) {
        const R e = pow(y, inv_p) * eval(mono, degree, y) - 1;
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
        throw Error("pe-synth: Remez did not converge (p = " + std::to_string(p) + ", l = " + str(l) + ", degree " +
                    std::to_string(degree) + ")");
    }
    // Rescale so phi's image [s^p (1+emin)^p, s^p (1+emax)^p] is symmetric about 1.
    const R sp = 2 / (pow(1 + emin, p) + pow(1 + emax, p));
    const R s = pow(sp, inv_p);
    for (int j = 0; j < kCoefficients; ++j) out.coef[j] = mono[j] * s;
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
  using Row = std::array<double, kCoefficients>;
  // The constraint rows of the LP (basis functions at the grid points), computed once per solve: they
  // depend on p, degree, l and eta only. The LP is solved in double, so its rows are double too; only
  // x = (y - 1) / w is formed at working precision (y - 1 cancels when l is close to 1).
  struct LpGrid {
    int p = 0, n = 0;
    R l, w, inv_p;
    std::vector<R> main_pts;
    std::vector<Row> main_rows, below, above, qrows;
    Row row(const R& y, bool weighted) const {
      Row r{};
      const double wy = weighted ? std::pow(y.template convert_to<double>(), 1.0 / p) : 1.0;
      const double x = R((y - 1) / w).template convert_to<double>();
      double xj = 1;
      for (int j = 0; j < n; ++j, xj *= x) r[j] = wy * xj;
      return r;
    }
  };
  static LpGrid lp_grid(int p, int degree, const R& l, const GuardSpec& g, const Plain& plain) {
    LpGrid grid;
    grid.p = p;
    grid.n = degree + 1;
    grid.l = l;
    grid.w = 1 - l;
    grid.inv_p = R(1) / p;
    const R eta = R(g.eta);
    const int kGrid = 96;
    // Sample locations only (the certificate is computed afterwards), so double transcendentals suffice.
    const double log_l = std::log(l.template convert_to<double>());
    for (int i = 0; i <= kGrid; ++i) {
      grid.main_pts.push_back((1 + l) / 2 - (1 - l) / 2 * R(std::cos(M_PI * i / kGrid)));  // Chebyshev in y
      const R geometric = R(std::exp(log_l * (kGrid - i) / kGrid));                       // geometric in y
      grid.main_pts.push_back(std::clamp(geometric, l, R(1)));
    }
    for (const R& r : plain.reference) grid.main_pts.push_back(r);
    for (const R& y : grid.main_pts) grid.main_rows.push_back(grid.row(y, true));
    for (int i = 1; i <= 24; ++i) grid.below.push_back(grid.row(l * i / 24, true));
    for (int i = 0; i <= 24; ++i) grid.above.push_back(grid.row(1 + eta * i / 24, true));
    for (int i = 0; i <= 24; ++i) grid.qrows.push_back(grid.row((1 + eta) * i / 24, false));
    return grid;
  }

  static std::optional<Coef> guarded_lp(const LpGrid& grid, const GuardSpec& g, const Plain& plain, double margin) {
    const int n = grid.n, p = grid.p;
    const R& l = grid.l;
    const R& w = grid.w;
    const R& inv_p = grid.inv_p;
    std::vector<Row> main_rows = grid.main_rows;
    const auto& below = grid.below;
    const auto& above = grid.above;
    const auto& qrows = grid.qrows;
    const double cap_root = std::pow(g.overshoot_cap, 1.0 / p) * (1 - margin);
    const double qmin = 1e-6;

    std::vector<double> x(n + 1);
    const R scale = 1 / (1 - plain.delta);
    for (int j = 0; j < n; ++j) x[j] = R(plain.alpha[j] * scale).template convert_to<double>();
    x[n] = R((1 + plain.delta) * scale).template convert_to<double>();

    struct Data {
      std::vector<Row> rows;  // constraint: sum_j rows[j] x_j + m_coef * M + constant <= 0
      std::vector<double> m_coef, constant;
      int n;
    } data;
    data.n = n;
    auto add = [&](const Row& row, double sign, double mc, double cst) {
      Row r{};
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
      for (const Row& row : main_rows) {
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
      Coef alpha{};
      for (int j = 0; j < n; ++j) alpha[j] = R(x[j]);
      best = monomial_from_scaled(alpha, w, R(1));
      have = true;
      for (const R& r : real_roots(q_to_Q(best, p), l, R(1))) main_rows.push_back(grid.row(r, true));
    }
    if (!have) return std::nullopt;
    // Centre phi's image on 1 (the guards are scale invariant except q >= 1 on [0, l], checked later).
    const auto range = phi_range(analyse(best, p, R(1)), l, R(1));
    if (!range || !(range->lo > 0)) return std::nullopt;
    const R s = pow(2 / (range->lo + range->hi), inv_p);
    for (R& c : best) c *= s;
    return best;
  }

  // ---------------------------------------------------------------- assembling a Step
  template <class T>
  static T rounded(const R& x, Rounding mode) {
    T t = x.template convert_to<T>();
    if (mode == Rounding::down && R(t) > x) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
    if (mode == Rounding::up && R(t) < x) t = std::nextafter(t, std::numeric_limits<T>::infinity());
    return t;
  }

  struct Rounded {
    Coef coef;
    Certificate cert;
    GuardReport guards;
  };
  // The rounding patterns tried, nearest everywhere first: every combination of nearest / down / up for
  // up to three coefficients (degree <= 2), and for more (where 3^n certifications would dominate the
  // solve) one coefficient rounded down or up at a time plus all down and all up.
  static std::vector<std::array<Rounding, kCoefficients>> rounding_patterns(int n) {
    static constexpr Rounding kModes[3] = {Rounding::nearest, Rounding::down, Rounding::up};
    std::vector<std::array<Rounding, kCoefficients>> out;
    std::array<Rounding, kCoefficients> nearest;
    nearest.fill(Rounding::nearest);
    if (n <= 3) {
      int combos = 1;
      for (int i = 0; i < n; ++i) combos *= 3;
      for (int k = 0; k < combos; ++k) {
        auto pattern = nearest;
        for (int i = 0, code = k; i < n; ++i, code /= 3) pattern[i] = kModes[code % 3];
        out.push_back(pattern);
      }
      return out;
    }
    out.push_back(nearest);
    for (int i = 0; i < n; ++i)
      for (Rounding mode : {Rounding::down, Rounding::up}) {
        auto pattern = nearest;
        pattern[i] = mode;
        out.push_back(pattern);
      }
    for (Rounding mode : {Rounding::down, Rounding::up}) {
      std::array<Rounding, kCoefficients> pattern;
      pattern.fill(mode);
      out.push_back(pattern);
    }
    return out;
  }

  // The storage-type coefficients: rounded to nearest when that certifies and keeps the guards;
  // otherwise the rounding pattern with the smallest certified bound (guards first). Near a degenerate
  // optimum (e.g. q touching 0 between the ends for tiny l) rounding to nearest can lose positivity,
  // while one ulp the other way keeps it.
  template <class T>
  static std::optional<Rounded> round_to(const Coef& c, int degree, int p, const R& l, const GuardSpec& g) {
    std::optional<Rounded> best;
    auto better = [](const Rounded& a, const std::optional<Rounded>& b) {
      if (!b) return true;
      if (a.guards.ok() != b->guards.ok()) return a.guards.ok();
      return a.cert.eps_d < b->cert.eps_d;
    };
    const int n = degree + 1;
    const auto patterns = rounding_patterns(n);
    const int combos = static_cast<int>(patterns.size());
    // When eps is within rounding of 1 (tiny l), also try q shrunk by a few storage ulps, which moves
    // the image below 2 without losing positivity.
    const int shrinks = 4;
    for (int k = 0; k < combos * shrinks; ++k) {  // k = 0 is round-to-nearest everywhere
      if (k == combos && best && best->cert.eps_d < 1) break;
      const R shrink = 1 - R(k / combos) * 4 * R(std::numeric_limits<T>::epsilon());
      const auto& pattern = patterns[static_cast<std::size_t>(k % combos)];
      Coef r{};
      for (int i = 0; i < n; ++i) r[i] = R(rounded<T>(R(c[i] * shrink), pattern[i]));
      if (k > 0 && r == best->coef) continue;
      const Analysis analysis = analyse(r, p, 1 + R(g.eta));
      const auto cert = certify(analysis, l);
      if (!cert) {
        if (k == 0) best = Rounded{r, Certificate{}, GuardReport{}}, best->cert.eps_d = HUGE_VAL;
        continue;
      }
      Rounded cand{r, *cert, check_guards(analysis, l, *cert, g)};
      if (k == 0 && cand.guards.ok() && cand.cert.eps_d < 1) return cand;
      if (better(cand, best)) best = cand;
    }
    if (!best || !(best->cert.eps_d < 1)) return std::nullopt;
    return best;
  }

  // Every certificate of a step (and recheck's) comes from an analysis over [0, 1 + eta]: the same
  // brackets give the same enclosure, so verify reproduces stored bounds exactly.
  static Certificate must_certify(const Coef& c, int p, const R& l, const GuardSpec& g, const char* what) {
    auto cert = certify(analyse(c, p, 1 + R(g.eta)), l);
    if (!cert)
      throw Error(std::string("pe-synth: cannot certify the ") + what + " coefficients for p = " + std::to_string(p) +
                  ", l = " + str(l) + " (q not provably positive on [l, 1] or a degenerate extremum)");
    return *cert;
  }

  // A storage type whose coefficients no rounding certifies: the nearest rounding is kept for display,
  // with a certificate that claims nothing (bound and image infinite, guards failed).
  template <class T>
  static Rounded uncertified(const Coef& c, int degree) {
    Rounded r;
    r.coef = Coef{};
    for (int i = 0; i <= degree; ++i) r.coef[i] = R(rounded<T>(c[i], Rounding::nearest));
    r.cert.eps_d = r.cert.image_hi_d = r.cert.next_l_d = HUGE_VAL;
    r.cert.image_lo_d = 0;
    r.guards.failure = std::is_same_v<T, float> ? "float coefficients not certified" : "double coefficients not certified";
    return r;
  }

  static void fill(Step& st, const Coef& c, int p, const R& l, const GuardSpec& g) {
    st.coefficients.clear();
    for (int i = 0; i <= st.degree; ++i) st.coefficients.push_back(str(c[i]));
    st.cert = must_certify(c, p, l, g, "multiprecision");
    const auto r64 = round_to<double>(c, st.degree, p, l, g);
    const auto r32 = round_to<float>(c, st.degree, p, l, g);
    st.storage_failure.clear();
    if (!r64 || !r32)
      st.storage_failure = std::string("the ") + (!r64 ? "double" : "float") + " coefficients for p = " +
                           std::to_string(p) + ", l = " + str(l) + ", degree " + std::to_string(st.degree) +
                           " cannot be certified (no rounding keeps q provably positive on [l, 1] with a bound below 1)";
    const Rounded f64 = r64 ? *r64 : uncertified<double>(c, st.degree);
    const Rounded f32 = r32 ? *r32 : uncertified<float>(c, st.degree);
    st.coeff_f64 = {};
    st.coeff_f32 = {};
    for (int i = 0; i <= st.degree; ++i) {
      st.coeff_f64[i] = f64.coef[i].template convert_to<double>();
      st.coeff_f32[i] = f32.coef[i].template convert_to<float>();
    }
    st.cert_f64 = f64.cert;
    st.cert_f32 = f32.cert;
    st.guards_f64 = f64.guards;
    st.guards_f32 = f32.guards;
    st.overshoot = std::max(st.guards_f64.overshoot, st.guards_f32.overshoot);
  }

  static Step solve(const StepRequest& req, int digits) {
    const R l = value(req.l);
    if (!(l > 0 && l < 1)) throw Error("pe-synth: --l = " + str(l) + " is not in (0, 1)");
    Step st;
    st.p = req.p;
    st.degree = req.kind == StepKind::newton ? 1 : req.degree;
    st.digits = digits;
    st.l = str(l);
    if (req.kind == StepKind::newton) {
      Coef newton{};
      newton[0] = R(req.p + 1) / req.p;
      newton[1] = R(-1) / req.p;
      fill(st, newton, req.p, l, req.guards);
      st.eps_plain = std::isfinite(st.cert_f64.eps_d) ? st.cert_f64.eps_d : st.cert.eps_d;
      return st;
    }
    const Plain plain = remez(req.p, req.degree, l);
    st.delta = str(plain.delta);
    for (const R& r : plain.reference) st.reference.push_back(str(r));
    st.remez_iterations = plain.iterations;
    fill(st, plain.coef, req.p, l, req.guards);
    // The plain optimum's certified bound: of its doubles, or of the exact coefficients when no double
    // rounding certifies (still a proven bound of the unguarded optimum, below 1).
    st.eps_plain = std::isfinite(st.cert_f64.eps_d) ? st.cert_f64.eps_d : st.cert.eps_d;
    if (req.kind != StepKind::guarded || (st.storage_failure.empty() && st.guards_f64.ok() && st.guards_f32.ok()))
      return st;
    std::string last_failure;
    auto attempt = [&](const Coef& coef) -> std::optional<Step> {
      Step gs = st;
      try {
        fill(gs, coef, req.p, l, req.guards);
      } catch (const Error& e) {
        last_failure = e.what();
        return std::nullopt;
      }
      if (gs.storage_failure.empty() && gs.guards_f64.ok() && gs.guards_f32.ok()) {
        gs.guarded = true;
        return gs;
      }
      last_failure = !gs.storage_failure.empty() ? gs.storage_failure
                     : !gs.guards_f64.ok()       ? gs.guards_f64.failure
                                                 : gs.guards_f32.failure;
      return std::nullopt;
    };
    const LpGrid grid = lp_grid(req.p, req.degree, l, req.guards, plain);
    for (double margin : {1e-7, 1e-5, 1e-3}) {
      if (const auto coef = guarded_lp(grid, req.guards, plain, margin))
        if (auto gs = attempt(*coef)) return *gs;
    }
    // SLSQP in double can stall where the constraints are badly scaled (degree 1 near l = 1); the
    // optimum over [l, 1 + eta] is feasible for every guard except possibly q >= 1 below l.
    try {
      if (auto gs = attempt(remez(req.p, req.degree, l, 1 + R(req.guards.eta)).coef)) return *gs;
    } catch (const Error& e) {
      last_failure = e.what();
    }
    throw NoTableEntry("pe-synth: no guarded coefficients found for p = " + std::to_string(req.p) + ", degree " +
                            std::to_string(req.degree) + ", l = " + str(l) + " (plain optimum: " +
                            (st.storage_failure.empty() ? st.guards_f64.failure : st.storage_failure) +
                            "; constrained: " + last_failure + ")");
  }

  static Recheck recheck(int p, const Value& l_value, const std::vector<Value>& coefficients, const GuardSpec& g) {
    const R l = value(l_value);
    Coef c{};
    for (std::size_t i = 0; i < coefficients.size(); ++i) c[i] = value(coefficients[i]);
    Recheck out;
    const Analysis analysis = analyse(c, p, 1 + R(g.eta));
    const auto qr = q_range(analysis, l, R(1));
    out.q_positive = qr && qr->lo > 0;
    const auto cert = certify(analysis, l);
    if (!cert) return out;
    out.cert = *cert;
    out.guards = check_guards(analysis, l, out.cert, g);
    return out;
  }
};

}  // namespace pe::synth::detail
