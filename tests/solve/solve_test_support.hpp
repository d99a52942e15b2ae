// Shared helpers of the solve tests: inputs, double references and the tolerances' reasons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "pe/solve.hpp"
#include "reference.hpp"
#include "reference_general.hpp"

namespace pe_solve_test {

// The compiled-in tables, unless PE_SOLVE_TEST_SCHEDULES names a JSON table file (to run the suite
// against another table set without rebuilding).
template <class Options>
void use_test_schedules(Options& o) {
  if (const char* path = std::getenv("PE_SOLVE_TEST_SCHEDULES"); path && *path) {
    o.schedule_source = pe::ScheduleSource::json_file;
    o.schedule_file = path;
  }
}

// Runs `call` and expects a pe::Error whose message contains every one of `fragments` (and none of
// `absent`).
inline void expect_error(const std::function<void()>& call, std::initializer_list<const char*> fragments,
                         std::initializer_list<const char*> absent = {}) {
  try {
    call();
    ADD_FAILURE() << "no pe::Error thrown (expected one mentioning '" << *fragments.begin() << "')";
  } catch (const pe::Error& e) {
    for (const char* f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    for (const char* f : absent) EXPECT_EQ(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

inline double unit_roundoff(pe::DType dtype) {
  return dtype == pe::DType::f32 ? std::numeric_limits<float>::epsilon() / 2
                                 : std::numeric_limits<double>::epsilon() / 2;
}

// Where the storage cannot represent the answer to the target, no method can reach it: storing X in
// dtype u changes A X by up to ||A|| u ||X|| <= kappa u ||B||, and rounding A itself perturbs the system
// by the same relative amount. sqrt(n) (probabilistic accumulation) times 10 (constants) covers LAPACK's
// backward error on these systems; a target below this floor is not one "the bound says it can" reach.
inline double rounding_floor(pe::DType dtype, std::int64_t n, double kappa) {
  return 10 * std::sqrt(static_cast<double>(n)) * unit_roundoff(dtype) * kappa;
}

inline std::vector<double> spd(std::int64_t n, double kappa, std::uint64_t seed) {
  return pe::reference::random_spd(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), seed);
}
inline std::vector<double> general(std::int64_t n, double kappa, std::uint64_t seed) {
  return pe::reference::random_general(pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread), seed);
}

inline pe::Matrix view(const std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  return pe::Matrix{a.data(), rows, cols, rows};
}
inline pe::MutableMatrix out(std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  return pe::MutableMatrix{a.data(), rows, cols, rows};
}

// ||a - b||_F / ||b||_F.
inline double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  return pe::reference::relative_error(a, b);
}

// Column-major transpose (rows x cols -> cols x rows).
inline std::vector<double> transpose(const std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  std::vector<double> t(a.size());
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = 0; i < rows; ++i) t[static_cast<std::size_t>(j + i * cols)] = a[static_cast<std::size_t>(i + j * rows)];
  return t;
}

}  // namespace pe_solve_test
