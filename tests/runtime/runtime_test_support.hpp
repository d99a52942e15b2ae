// Shared helpers of the runtime tests: random SPD inputs, the double reference, and the error bound the
// tracked interval implies.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "pe/pe.hpp"
#include "reference.hpp"
#include "schedules.hpp"

namespace pe_test {

// The runtime's default schedule source is the table pe-synth generates into schedules/; a build made
// before it exists has none, and everything that iterates skips (the loader and backend tests still run).
inline bool have_compiled_tables() {
  try {
    pe::detail::compiled_schedules();
    return true;
  } catch (const pe::Error&) {
    return false;
  }
}
#define PE_REQUIRE_TABLES()                  \
  if (!pe_test::have_compiled_tables())      \
  GTEST_SKIP() << "no compiled schedule tables (schedules/pe_schedules.hpp is not generated in this build)"

using pe::reference::Spectrum;

inline std::vector<double> spd(std::int64_t n, double kappa, Spectrum kind, std::uint64_t seed) {
  return pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, kind), seed);
}

// If every eigenvalue y of X^p A lies in [1 - eps, 1 + eps] and X commutes with A, then X = X* Y^{1/p}
// with X* = A^{-1/p}, so ||X - X*||_F / ||X*||_F <= max |y^{1/p} - 1| = 1 - (1 - eps)^{1/p}; the same
// holds for Z = X B since X - X* = (Y^{1/p} - I) X* and ||E M||_F <= ||E||_2 ||M||_F.
inline double predicted_relative_error(double eps, int p) {
  return eps >= 1 ? 1.0 : 1 - std::pow(1 - eps, 1.0 / p);
}

// Rounding allowance on top of the exact-arithmetic bound, for `steps` coupled steps in unit roundoff u.
// The relative condition number of A -> A^{-1/p} is kappa / p (the Frechet derivative's divided
// difference at lambda_min, (1/p) lambda_min^{-1/p-1}, times ||A|| / ||A^{-1/p}||): merely storing A
// moves the root by up to u kappa / p, and every step's rounding acts as a backward perturbation of
// the same order. Well-conditioned inputs are limited instead by the products themselves, about
// sqrt(n) u each (Higham & Mary's probabilistic bound). A factor 2 per step covers the constants.
// (Measured on this suite: at most 7 steps' worth, i.e. 0.7x this allowance, in fp64 at kappa = 1e8.)
inline double rounding_allowance(pe::DType storage, std::int64_t n, int steps, double kappa, int p) {
  const double u = storage == pe::DType::f32 ? std::numeric_limits<float>::epsilon() / 2
                                             : std::numeric_limits<double>::epsilon() / 2;
  return 2.0 * std::max(1, steps) * u * (kappa / p + std::sqrt(static_cast<double>(n) + 1));
}

inline pe::Matrix view(const std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  return pe::Matrix{a.data(), rows, cols, rows};
}
inline pe::Matrix view(const std::vector<float>& a, std::int64_t rows, std::int64_t cols) {
  return pe::Matrix{a.data(), rows, cols, rows, pe::DType::f32};
}
inline pe::MutableMatrix out(std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  return pe::MutableMatrix{a.data(), rows, cols, rows};
}
inline pe::MutableMatrix out(std::vector<float>& a, std::int64_t rows, std::int64_t cols) {
  return pe::MutableMatrix{a.data(), rows, cols, rows, pe::DType::f32};
}

inline std::vector<double> random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::vector<double> b(static_cast<std::size_t>(rows * cols));
  std::uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (auto& v : b) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<double>(static_cast<std::int64_t>(s >> 11) % 2001 - 1000) / 1000.0;
  }
  return b;
}

}  // namespace pe_test
