#include "embedded_tables.hpp"

// pe-synth writes every table set into namespace pe::generated, and the installed pe runtime already
// holds its default set under those names. Renaming the namespace for this one include keeps the two
// sets distinct symbols (otherwise the program would have two different definitions of one variable).
#define generated example_generated
#include "pe_schedules.hpp"
#undef generated

namespace example {
namespace {

namespace tables = pe::example_generated;

static_assert(tables::kSchemaVersion == pe::kScheduleSchemaVersion,
              "the tables were generated for another schema version than the installed pe reads");

constexpr bool has_table(int p, int degree) {
  for (std::size_t i = 0; i < tables::kBucketTableCount; ++i)
    if (tables::kBucketTables[i].p == p && tables::kBucketTables[i].degree == degree) return true;
  return false;
}
static_assert(has_table(5, 2), "p5_config.json asks for a p = 5, degree 2 table");

// A build-time gate on the embedded numbers: every entry contracts (bound below 1) and its image holds 1.
constexpr bool every_entry_contracts() {
  for (std::size_t i = 0; i < tables::kBucketTableCount; ++i) {
    const pe::BucketTable& t = tables::kBucketTables[i];
    for (std::size_t e = 0; e < t.count; ++e) {
      const pe::BucketEntry& b = t.entries[e];
      if (!(b.eps_f64 < 1 && b.eps_f32 < 1 && b.image_lo_f64 <= 1 && 1 <= b.image_hi_f64)) return false;
    }
  }
  return true;
}
static_assert(every_entry_contracts(), "an embedded table entry does not contract");

}  // namespace

const EmbeddedTables& embedded_tables() {
  static const EmbeddedTables set{tables::kGeneratorVersion, tables::kConfigHash,
                                  {tables::kBucketTables, tables::kBucketTableCount},
                                  {tables::kFixedSchedules, tables::kFixedScheduleCount}};
  return set;
}

const pe::BucketTable* find_table(int p, int degree) {
  for (const pe::BucketTable& t : embedded_tables().tables)
    if (t.p == p && t.degree == degree) return &t;
  return nullptr;
}

}  // namespace example
