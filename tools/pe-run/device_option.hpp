// --device for every pe-run command that computes: the same names and the same meaning everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "pe/types.hpp"

namespace pe_run {

inline void add_device_option(CLI::App* app, std::string& device) {
  app->add_option("--device", device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
}

// Host views either way: with cuda the library copies them to the GPU and back.
inline pe::Device device_of(const std::string& name) { return name == "cuda" ? pe::Device::cuda : pe::Device::cpu; }

}  // namespace pe_run
