// Schedule tables as the runtime holds them: copies of the records of include/pe/schedule_types.hpp,
// from the compiled-in generated header or from a JSON file (validated). Both give the same bits.
#pragma once

#include <string>
#include <vector>

#include "pe/schedule_types.hpp"

namespace pe::detail {

struct OwnedBucketTable {
  int p = 0;
  int degree = 0;
  double eta = 0;
  std::vector<BucketEntry> entries;  // sorted by l_edge ascending
};

struct OwnedFixedSchedule {
  int p = 0;
  int degree = 0;
  double l0 = 0;
  std::vector<FixedStep> steps;
};

struct ScheduleSet {
  int schema_version = 0;
  std::string origin;  // "compiled" or the file path
  std::vector<OwnedBucketTable> tables;
  std::vector<OwnedFixedSchedule> fixed;

  // The bucket table for (p, degree), or nullptr.
  const OwnedBucketTable* find(int p, int degree) const;
};

// The tables compiled in from schedules/pe_schedules.hpp (throws pe::Error when the build had none).
const ScheduleSet& compiled_schedules();

// Loads and validates a pe_schedules.json file; throws pe::Error naming the file and field on any problem.
ScheduleSet load_schedules_json(const std::string& path);
ScheduleSet parse_schedules_json(const std::string& text, const std::string& origin);

}  // namespace pe::detail
