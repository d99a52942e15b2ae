// Figures the benchmarks read off a pe::Report.
#pragma once

#include <cstddef>

#include "pe/pe.hpp"

namespace pe_bench {

// GEMMs of the steps that ran above the storage precision (per-step precision). Records hold cumulative
// GEMM counts; GEMMs outside the records (the final product) run in the storage precision.
inline int elevated_gemms(const pe::Report& report) {
  int elevated = 0;
  for (std::size_t i = 0; i < report.intervals.size(); ++i) {
    const pe::StepRecord& step = report.intervals[i];
    if (step.precision != report.storage) elevated += step.gemms - (i == 0 ? 0 : report.intervals[i - 1].gemms);
  }
  return elevated;
}

}  // namespace pe_bench
