// Outward-rounded interval arithmetic over a Boost.Multiprecision binary float.
//
// cpp_bin_float rounds every operation to nearest, so the exact result lies within half an ulp of the
// computed one; widening each computed bound by 2 * |r| * epsilon (>= 1 ulp after its own rounding)
// therefore encloses the exact result. Values coming in as points are exact.
#pragma once

#include <algorithm>
#include <limits>

namespace pe::synth::detail {

template <class R>
struct Iv {
  R lo, hi;
};

template <class R>
R round_down(const R& r) {
  static const R two_eps = 2 * std::numeric_limits<R>::epsilon();
  return r - abs(r) * two_eps;
}
template <class R>
R round_up(const R& r) {
  static const R two_eps = 2 * std::numeric_limits<R>::epsilon();
  return r + abs(r) * two_eps;
}

template <class R>
Iv<R> point(const R& x) {
  return {x, x};
}
template <class R>
Iv<R> hull(const Iv<R>& a, const Iv<R>& b) {
  return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
}
template <class R>
Iv<R> operator+(const Iv<R>& a, const Iv<R>& b) {
  return {round_down(R(a.lo + b.lo)), round_up(R(a.hi + b.hi))};
}
template <class R>
Iv<R> operator-(const Iv<R>& a, const Iv<R>& b) {
  return {round_down(R(a.lo - b.hi)), round_up(R(a.hi - b.lo))};
}
template <class R>
Iv<R> operator*(const Iv<R>& a, const Iv<R>& b) {
  const R p1 = a.lo * b.lo, p2 = a.lo * b.hi, p3 = a.hi * b.lo, p4 = a.hi * b.hi;
  return {round_down(std::min(std::min(p1, p2), std::min(p3, p4))),
          round_up(std::max(std::max(p1, p2), std::max(p3, p4)))};
}
// Requires 0 not in b (callers check).
template <class R>
Iv<R> operator/(const Iv<R>& a, const Iv<R>& b) {
  const R p1 = a.lo / b.lo, p2 = a.lo / b.hi, p3 = a.hi / b.lo, p4 = a.hi / b.hi;
  return {round_down(std::min(std::min(p1, p2), std::min(p3, p4))),
          round_up(std::max(std::max(p1, p2), std::max(p3, p4)))};
}
// x^n by binary powering (an enclosure: each product rounds outward). An even power of an interval
// holding 0 is widened to include negative values by the product rule; callers only raise intervals of
// positive values (q > 0 is proven first), where this is exact up to the rounding.
template <class R>
Iv<R> power(const Iv<R>& x, int n) {
  Iv<R> r = point(R(1)), base = x;
  bool first = true;
  for (int v = n; v > 0; v >>= 1) {
    if (v & 1) {
      r = first ? base : r * base;
      first = false;
    }
    if (v > 1) base = base * base;
  }
  return r;
}
template <class R>
bool contains_zero(const Iv<R>& x) {
  return x.lo <= 0 && x.hi >= 0;
}

}  // namespace pe::synth::detail
