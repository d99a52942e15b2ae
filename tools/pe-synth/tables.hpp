// pe-synth's table set, one header for the command line and the tests: the config (config.hpp), the
// generator (generate.hpp), the emitters (emit.hpp), reading and writing the header/JSON pair, verify,
// and the bounds compared by diff and the frozen baseline (verify.hpp).
#pragma once

#include <string>

#include "config.hpp"
#include "emit.hpp"
#include "files.hpp"
#include "generate.hpp"
#include "verify.hpp"

namespace pe::synth {

// Reads a table set from DIR/pe_schedules.json or from the JSON file itself, through the one reader
// (plan/schedule_set.hpp: every rule, the content and text hashes, the config hash); a directory with
// an interrupted generate is refused.
TableFile load_table_file(const std::string& dir_or_json);
TableFile parse_table_file(const std::string& text, const std::string& origin);

// Writes DIR/pe_schedules.json and DIR/pe_schedules.hpp as a pair (files.hpp: kill-safe).
void write_tables(const TableFile& file, const std::string& dir);

}  // namespace pe::synth
