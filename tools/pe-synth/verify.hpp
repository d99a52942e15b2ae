// verify (re-solve and re-certify every stored entry), and the bounds that diff compares and the frozen
// baseline records.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "emit.hpp"

namespace pe::synth {

struct VerifyOptions {
  int threads = 0;
  double rel_tol = 1e-6;  // a stored bound may exceed a fresh solve's by this relative amount (finite, >= 0)
  bool progress = false;
};
// Returns the failing entries (empty: all checks hold). Throws pe::Error when the files cannot be read
// or are rejected whole (an edited number, a broken rule), or on bad options.
std::vector<std::string> verify_tables(const std::string& dir, const VerifyOptions& options);

// The certified bounds of one entry: what must never get worse.
struct EntryBounds {
  int p = 0, degree = 0;
  double l_edge = 0;
  double eps_f64 = 0, image_lo_f64 = 0, image_hi_f64 = 0;
  double eps_f32 = 0, image_lo_f32 = 0, image_hi_f32 = 0;
  double overshoot = 0;
  std::string eps;  // the multiprecision coefficients' bound, decimal
};
struct BoundsFile {
  std::string origin;       // the file it came from
  std::string generator, config_hash;
  std::vector<EntryBounds> entries;  // by (p, degree), ascending l_edge
};

BoundsFile bounds_of(const TableFile& file, const std::string& origin);
// The frozen baseline: one line per entry, deterministic.
std::string emit_baseline(const BoundsFile& bounds);
BoundsFile parse_baseline(const std::string& text, const std::string& origin);
// A table directory or pe_schedules.json (its bounds), or a baseline file.
BoundsFile load_bounds(const std::string& path);

// Every bound of `newer` that is worse than in `older`, comparing at each entry of `older` the entry of
// `newer` that serves its edge (the largest edge at or below it: its certificate covers that interval),
// the eps strings as multiprecision numbers included; a table or an edge nobody serves any more counts
// as worse. Empty when none.
std::vector<std::string> diff_bounds(const BoundsFile& older, const BoundsFile& newer, std::size_t* compared);
std::vector<std::string> diff_tables(const TableFile& older, const TableFile& newer, std::size_t* compared);

}  // namespace pe::synth
