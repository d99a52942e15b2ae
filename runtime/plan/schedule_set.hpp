// Schedule tables as the runtime and pe-synth hold them: copies of the records of
// include/pe/schedule_types.hpp from a compiled header (the built-in set or one a caller embedded with
// pe_add_schedules) or from a pe_schedules.json file. This is the one reader of both sources: every
// table goes through the same rules (pe::table_violation, the content hash included), so both give
// the same bits or the same rejection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pe/schedule_types.hpp"

namespace pe::detail {

// The decimal strings pe-synth keeps beside an entry's numbers (JSON only, covered by the table's
// text_hash): the bucket edge as kappa, the working-precision coefficients (degree + 1 of them) and
// their certified bound. The runtime never uses them; pe-synth verify re-certifies them and diff
// compares the eps strings.
struct EntryText {
  std::string kappa_edge;
  std::vector<std::string> coefficients;
  std::string eps;
};

struct OwnedBucketTable {
  int p = 0;
  int degree = 0;
  double eta = 0;
  std::uint64_t content_hash = 0;
  std::vector<BucketEntry> entries;  // sorted by l_edge ascending, monotone (see pe::table_violation)
  std::vector<EntryText> text;       // one per entry when read from JSON; empty from a compiled header

  BucketTable view() const { return {p, degree, eta, content_hash, entries.data(), entries.size()}; }
};

struct ScheduleSet {
  int schema_version = 0;
  std::string origin;       // "compiled", "embedded", or the file path
  std::string generator;    // "pe-synth <version>"
  std::string config_hash;  // "fnv1a64:<16 hex>"
  // JSON only: the config that made the set (every setting explicit), its file name, the precision.
  std::string config_name;
  nlohmann::ordered_json config;
  int digits = 0;
  std::vector<OwnedBucketTable> tables;

  // The bucket table for (p, degree), or nullptr.
  const OwnedBucketTable* find(int p, int degree) const;
  // The degrees with a table for p, ascending.
  std::vector<int> degrees(int p) const;
};

// Parses and validates a pe_schedules.json text; throws pe::Error naming `origin` and the field (and
// the mismatch, for an edited file: a hash over every number and every decimal string, FFTW-style:
// the whole file is rejected). Entry point for fuzzing.
ScheduleSet parse_schedules_json(const std::string& text, const std::string& origin);
// Reads a pe_schedules.json file (not a directory) and parses it; refuses a file whose directory holds
// an interrupted pe-synth generate (see check_no_interrupted_generate).
ScheduleSet load_schedules_json(const std::string& path);
// Validates a compiled set with the same rules and copies it.
ScheduleSet schedule_set_from(const CompiledScheduleSet& compiled, const std::string& origin);

// A JSON integer within [lo, hi], range-checked in 64 bits before any narrowing (4294967297 is not 1).
template <class Json>
bool json_integer_in(const Json& v, long long lo, long long hi) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) {
    const auto u = v.template get<std::uint64_t>();
    return hi >= 0 && u <= static_cast<std::uint64_t>(hi) && static_cast<long long>(u) >= lo;
  }
  const auto x = v.template get<std::int64_t>();
  return x >= lo && x <= hi;
}

// FNV-1a 64 of a text, as "fnv1a64:<16 lowercase hex digits>" (config hashes).
std::string fnv1a64(std::string_view text);
std::string hash_string(std::uint64_t hash);  // "fnv1a64:<16 hex>"
// FNV-1a 64 over the decimal strings of a table's entries (the JSON-only text).
std::uint64_t table_text_hash(const OwnedBucketTable& table);

// pe-synth generate replaces the pair DIR/pe_schedules.{hpp,json} through DIR/<kStagingDirName>: the new
// files are staged there, a commit marker is written last, then both are renamed into place and the
// staging directory removed. A commit marker still present means the pair may be half replaced.
inline constexpr const char* kStagingDirName = ".pe_schedules.staging";
inline constexpr const char* kCommitMarkerName = "commit";
// Throws pe::Error (naming `what` and dir) when dir holds a committed but unfinished replacement.
void check_no_interrupted_generate(const std::string& dir, const std::string& what);

}  // namespace pe::detail
