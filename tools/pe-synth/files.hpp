// Files of pe-synth: reading inputs with messages that name them, and replacing the header/JSON pair
// of a table set as a pair.
//
// How `generate` replaces DIR/pe_schedules.{json,hpp} (kill-safe):
//   1. both texts are written to unnamed files in DIR (O_TMPFILE; named temporaries where the file
//      system has no O_TMPFILE) and flushed: a kill up to here leaves nothing behind;
//   2. DIR/.pe_schedules.staging/ is created and the two files linked into it, then the commit marker
//      (.pe_schedules.staging/commit) is linked in, last;
//   3. both files are renamed into DIR, the marker removed, the staging directory removed.
// A kill inside steps 2-3 (a handful of system calls) leaves the staging directory: without the marker
// the old pair is untouched and the directory is junk; with it the pair may be half replaced, and every
// reader (runtime and pe-synth) refuses the directory until the next `generate` finishes the job. Every
// generate starts by cleaning up (rolling a committed replacement forward, removing an uncommitted one).
#pragma once

#include <string>

namespace pe::synth {

// The whole file; pe::Error naming `what` and the path when it is missing, a directory or unreadable.
std::string read_text_file(const std::string& path, const std::string& what);

// Checks DIR can be written (creating it when missing) and finishes or removes what an interrupted
// generate left there, before any long computation.
void prepare_output_dir(const std::string& dir);

// Replaces DIR/pe_schedules.json and DIR/pe_schedules.hpp as described above.
void write_table_pair(const std::string& dir, const std::string& json_text, const std::string& header_text);

// Test hook: when the environment variable PE_SYNTH_STOP_AT names `point`, the process kills itself
// with SIGKILL there (points: written, staged, committed, json_renamed, header_renamed).
void stop_point(const char* point);

}  // namespace pe::synth
