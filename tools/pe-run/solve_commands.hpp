// pe-run subcommands for solves and Gram applies: solve, gram-apply, bench-solve.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace pe_run {

class SolveCommands {
 public:
  virtual ~SolveCommands() = default;
  virtual bool selected() const = 0;  // one of these subcommands was given
  virtual int run() = 0;              // throws pe::Error on bad input
};

// Registers the subcommands on `app`; keep the returned object alive until after parsing and run().
std::unique_ptr<SolveCommands> add_solve_commands(CLI::App& app);

}  // namespace pe_run
