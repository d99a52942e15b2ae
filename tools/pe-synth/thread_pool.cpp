#include "thread_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pe/types.hpp"

namespace pe::synth {

void parallel_for(std::size_t n, int threads, bool progress, const char* label,
                  const std::function<void(std::size_t)>& task) {
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex mutex;
  std::string first_error;
  const bool tty = progress && isatty(fileno(stderr));
  auto worker = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        task(i);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (first_error.empty()) first_error = e.what();
        next = n;
      }
      const std::size_t d = ++done;
      if (tty && (d % 8 == 0 || d == n)) {
        std::lock_guard<std::mutex> lock(mutex);
        std::fprintf(stderr, "\r%s %zu/%zu", label, d, n);
        std::fflush(stderr);
      }
    }
  };
  unsigned hw = std::thread::hardware_concurrency();
  const int wanted = threads > 0 ? threads : static_cast<int>(hw == 0 ? 1 : hw);
  const int count = std::max(1, std::min<int>(wanted, static_cast<int>(std::max<std::size_t>(n, 1))));
  std::vector<std::thread> pool;
  for (int t = 0; t < count; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (tty) std::fprintf(stderr, "\r%s done%30s\n", label, "");
  if (!first_error.empty()) throw Error(first_error);
}

}  // namespace pe::synth
