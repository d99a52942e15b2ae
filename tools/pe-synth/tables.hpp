// The table set pe-synth generates: its config, the records it writes (docs/schedule-format.md), the
// emitters (header + JSON, byte-deterministic, written atomically), and verify / diff.
#pragma once

#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth.hpp"

namespace pe::synth {

using ordered_json = nlohmann::ordered_json;

struct Config {
  std::vector<int> p{1, 2, 3, 4, 6, 8};
  std::vector<int> degrees{1, 2};
  double kappa_minus_one_min = 1e-8;
  double kappa_minus_one_max = 1e12;
  int per_decade = 8;
  double eta = 1.0 / 64;
  double overshoot_cap = 1 + 1.0 / 64;
  int digits = 50;
  struct Fixed {
    std::vector<int> p{1, 2, 3, 4, 6, 8};
    std::vector<int> degrees{2};
    std::vector<double> kappa0{1e2, 1e4, 1e6, 1e8, 1e12};
    double target_eps = 1e-12;
    int max_steps = 16;
  } fixed;
  std::string name = "pe_synth_config.json";  // the config file's name as the banner shows it

  ordered_json to_json() const;   // the effective config, every field explicit (echoed into the JSON)
  std::string hash() const;       // "fnv1a64:<16 hex>" of to_json().dump()
  GuardSpec guards() const { return {eta, overshoot_cap}; }
};

// Parses a config object (missing fields take the defaults above, unknown fields are an error).
Config config_from_json(const nlohmann::json& j, const std::string& origin);
Config load_config(const std::string& path);  // throws pe::Error naming the file and field

// The bucket lower edges l_edge = 1 / (1 + 10^e) of a config, ascending.
std::vector<double> bucket_edges(const Config& config);

// ---------------------------------------------------------------- records (what the files hold)
struct EntryRecord {
  double l_edge = 0;
  std::string kappa_edge;
  std::array<std::string, 3> coefficients;
  std::array<double, 3> coeff_f64{};
  double eps_f64 = 0, image_lo_f64 = 0, image_hi_f64 = 0;
  std::array<float, 3> coeff_f32{};
  double eps_f32 = 0, image_lo_f32 = 0, image_hi_f32 = 0;
  std::string eps;
  double eps_plain = 0, overshoot = 0;
  bool guarded = false;
};
struct TableRecord {
  int p = 0, degree = 0;
  double eta = 0;
  std::vector<EntryRecord> entries;
};
struct StepRecord {
  double l = 0;
  std::array<std::string, 3> coefficients;
  std::array<double, 3> coeff_f64{};
  std::array<float, 3> coeff_f32{};
  double eps_f64 = 0, image_lo_f64 = 0, image_hi_f64 = 0;
};
struct FixedRecord {
  int p = 0, degree = 0;
  double l0 = 0, kappa0 = 0;
  std::vector<StepRecord> steps;
  double final_eps = 0;
  int gemms = 0;
};
struct TableFile {
  std::string generator;    // "pe-synth <version>"
  std::string config_hash;
  std::string config_name;
  ordered_json config;
  int digits = 0;
  double eta = 0;
  std::vector<TableRecord> tables;
  std::vector<FixedRecord> fixed;
};

struct GenerateOptions {
  int threads = 0;        // 0: hardware concurrency
  bool progress = false;  // a progress line on stderr
};
TableFile build_tables(const Config& config, const GenerateOptions& options);

std::string emit_json(const TableFile& file);
std::string emit_header(const TableFile& file);
TableFile parse_table_file(const std::string& text, const std::string& origin);  // strict; throws pe::Error

// Writes DIR/pe_schedules.hpp and DIR/pe_schedules.json, each through a temp file + rename.
void write_tables(const TableFile& file, const std::string& dir);
// Checks DIR can be written (creating it when missing) before any long computation.
void prepare_output_dir(const std::string& dir);

std::string summary(const TableFile& file);  // the table printed at the end of generate

struct VerifyOptions {
  int threads = 0;
  double rel_tol = 1e-6;  // stored bound may exceed a fresh solve's by this relative amount
  bool progress = false;
};
// Returns the failing entries (empty: all checks hold). Throws pe::Error when the files cannot be read.
std::vector<std::string> verify_tables(const std::string& dir, const VerifyOptions& options);

// Every bound of `newer` that is worse than in `older` (or missing); empty when none.
std::vector<std::string> diff_tables(const TableFile& older, const TableFile& newer, std::size_t* compared);
TableFile load_table_file(const std::string& dir_or_json);

}  // namespace pe::synth
