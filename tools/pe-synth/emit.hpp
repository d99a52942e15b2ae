// The two emitters of a table set: the JSON file and the C++ header (constexpr records with designated
// initialisers). Both walk the one record description (pe::for_each_entry_field), so the files hold the
// same numbers bit for bit; both are byte-deterministic (no dates, fixed order and formats).
#pragma once

#include <string>

#include "plan/schedule_set.hpp"

namespace pe::synth {

// A generated table set as pe-synth holds it: the shared record of plan/schedule_set.hpp (numbers and,
// for JSON, the decimal strings), with generator, config and precision filled in.
using TableFile = pe::detail::ScheduleSet;

std::string emit_json(const TableFile& file);
std::string emit_header(const TableFile& file);

// The banner both files start with (generator, config file, config hash, "do not edit").
std::string banner(const TableFile& file);

}  // namespace pe::synth
