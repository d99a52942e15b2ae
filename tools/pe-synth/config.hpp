// The generator's config: which tables to build (p, degrees, bucket edges) and how to certify them
// (guards, working precision). Parsed strictly: unknown settings and bad values are errors naming the
// field; missing ones take the defaults below.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth.hpp"

namespace pe::synth {

using ordered_json = nlohmann::ordered_json;

struct Config {
  std::vector<int> p{1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int> degrees{1, 2, 3, 4};
  double kappa_minus_one_min = 1e-8;
  double kappa_minus_one_max = 1e12;
  int per_decade = 8;
  double eta = 1.0 / 64;
  double overshoot_cap = 1 + 1.0 / 64;
  int digits = 50;
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

}  // namespace pe::synth
