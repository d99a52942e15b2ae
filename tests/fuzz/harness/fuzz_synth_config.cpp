// libFuzzer harness: pe-synth's config parser (pe::synth::config_from_json, tools/pe-synth). Text that
// is not JSON is nlohmann's to reject; a JSON document must give a Config or a pe::Error naming the
// file. Anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tables.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  try {
    pe::synth::config_from_json(doc, "fuzz.json");
  } catch (const pe::Error& e) {
    if (std::string_view(e.what()).find("fuzz.json") == std::string_view::npos) std::abort();
  }
  return 0;
}
