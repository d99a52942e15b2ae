// Runs independent tasks on a few threads; results are stored by index by the tasks themselves, so the
// output does not depend on the thread count or on scheduling (byte-deterministic generation).
#pragma once

#include <cstddef>
#include <functional>

namespace pe::synth {

// Calls task(i) for i in [0, n) on `threads` workers (0: all cores). The first exception stops the
// remaining tasks and is rethrown as pe::Error. With progress, a counter `label i/n` on a terminal.
void parallel_for(std::size_t n, int threads, bool progress, const char* label,
                  const std::function<void(std::size_t)>& task);

}  // namespace pe::synth
