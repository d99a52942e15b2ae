// The schedule sets the runtime uses: the built-in tables compiled in from schedules/pe_schedules.hpp,
// a set a caller compiled into its binary (pe_add_schedules, ScheduleSource::embedded) or a JSON file.
// Reading and validation live in plan/schedule_set.hpp (shared with pe-synth).
#pragma once

#include <optional>
#include <string>

#include "pe/pe.hpp"
#include "plan/schedule_set.hpp"

namespace pe::detail {

// The tables compiled in from schedules/pe_schedules.hpp, validated once (throws pe::Error when the build
// had none or they break a rule).
const ScheduleSet& compiled_schedules();

// A set compiled into the caller's binary, validated once per address (the set must have static storage
// duration, as pe_add_schedules gives it).
const ScheduleSet& embedded_schedules(const CompiledScheduleSet& set);

// The set `source` names: the built-in one, the embedded one (`embedded` must not be null) or the JSON
// file (read into `loaded`, which then holds it).
const ScheduleSet& schedule_set_for(ScheduleSource source, const std::string& file, const CompiledScheduleSet* embedded,
                                    std::optional<ScheduleSet>& loaded);

}  // namespace pe::detail
