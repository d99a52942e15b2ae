// The tables this example generated at its build time (tables/pe_schedules.hpp), compiled into the binary.
#pragma once

#include <span>

#include "pe/schedule_types.hpp"

namespace example {

struct EmbeddedTables {
  const char* generator;
  const char* config_hash;
  std::span<const pe::BucketTable> tables;
  std::span<const pe::FixedSchedule> fixed;
};

const EmbeddedTables& embedded_tables();

// The (p, degree) bucket table, or nullptr.
const pe::BucketTable* find_table(int p, int degree);

}  // namespace example
