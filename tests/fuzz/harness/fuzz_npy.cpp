// libFuzzer harness: pe-run's .npy parser (tools/pe-run/npy.cpp) on arbitrary bytes. The contract: a
// parsed array or a pe::Error whose message is one printable line starting with the file name;
// anything else (another exception, a crash, a sanitizer report, a hang) is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const pe_run::NpyArray a = pe_run::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
    // What the parser promises about a success.
    if (a.rows < 1 || a.cols < 1 || a.data.size() != static_cast<std::size_t>(a.rows) * static_cast<std::size_t>(a.cols))
      std::abort();
  } catch (const pe::Error& e) {
    const std::string_view message = e.what();
    if (message.substr(0, 10) != "fuzz.npy: ") std::abort();
    // One line of printable text: header bytes are quoted escaped.
    for (char c : message)
      if (c < 0x20 || c > 0x7e) std::abort();
  }
  return 0;
}
