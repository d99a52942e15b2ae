// Building a table set from a config: every (p, degree, bucket edge) solved and certified with the guards
// in parallel, then each table made monotone (an entry whose image is worse than the one kept below it in
// either dtype is left out: that entry serves its edge with a better certificate).
#pragma once

#include <string>
#include <vector>

#include "config.hpp"
#include "emit.hpp"
#include "synth.hpp"

namespace pe::synth {

struct GenerateOptions {
  int threads = 0;        // 0: hardware concurrency
  bool progress = false;  // a progress line on stderr
};

// What happened to the edges of one table.
struct TableStats {
  int p = 0, degree = 0;
  int kept = 0;
  int no_guarded_solution = 0;  // edges where no coefficients satisfy G1..G3
  int dominated = 0;            // edges left out for monotonicity
};

TableFile build_tables(const Config& config, const GenerateOptions& options, std::vector<TableStats>* stats = nullptr);

// The table entry (numbers and decimal strings) of a solved step at bucket edge l_edge.
void entry_from_step(const Step& s, double l_edge, BucketEntry& entry, pe::detail::EntryText& text);

// The table printed at the end of generate (stats: the edge counts, when known).
std::string summary(const TableFile& file, const std::vector<TableStats>& stats);

}  // namespace pe::synth
