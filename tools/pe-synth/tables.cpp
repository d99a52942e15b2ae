#include "tables.hpp"

#include <filesystem>

#include "plan/schedule_set.hpp"

namespace pe::synth {

namespace fs = std::filesystem;

TableFile parse_table_file(const std::string& text, const std::string& origin) {
  return pe::detail::parse_schedules_json(text, origin);
}

TableFile load_table_file(const std::string& dir_or_json) {
  std::error_code ec;
  const std::string path =
      fs::is_directory(dir_or_json, ec) ? (fs::path(dir_or_json) / "pe_schedules.json").string() : dir_or_json;
  return pe::detail::load_schedules_json(path);
}

void write_tables(const TableFile& file, const std::string& dir) {
  write_table_pair(dir, emit_json(file), emit_header(file));
}

}  // namespace pe::synth
