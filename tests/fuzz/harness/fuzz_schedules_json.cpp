// libFuzzer harness: the runtime's JSON table loader (pe::detail::parse_schedules_json). The contract:
// a validated table set or a pe::Error naming the file; anything else is a finding.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pe/types.hpp"
#include "plan/schedule_set.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const pe::detail::ScheduleSet set =
        pe::detail::parse_schedules_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    // What the loader promises about a success: non-empty tables sorted by edge, bounds in [0, 1).
    for (const auto& t : set.tables) {
      if (t.entries.empty()) std::abort();
      for (std::size_t i = 0; i < t.entries.size(); ++i) {
        const auto& e = t.entries[i];
        if (!(e.l_edge > 0 && e.l_edge < 1) || !(e.eps_f64 >= 0 && e.eps_f64 < 1)) std::abort();
        if (i > 0 && !(t.entries[i - 1].l_edge < e.l_edge)) std::abort();
      }
    }
  } catch (const pe::Error& e) {
    if (std::string_view(e.what()).find("fuzz.json") == std::string_view::npos) std::abort();
  }
  return 0;
}
