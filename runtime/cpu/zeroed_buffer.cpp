#include "zeroed_buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace pe::detail {

namespace {

#if defined(__linux__)
constexpr std::size_t kMappedFrom = std::size_t{64} << 10;
constexpr std::size_t kPoolBytes = std::size_t{1} << 30;
constexpr std::size_t kPoolEntries = 4096;  // far below the kernel's default limit of 65530 mappings

// Released mappings, oldest first. Leaked on purpose: a buffer may be released during static destruction.
struct Pool {
  std::mutex mutex;
  std::deque<std::pair<void*, std::size_t>> free;
  std::size_t bytes = 0;
};
Pool& pool() {
  static Pool* p = new Pool;
  return *p;
}

std::size_t page_rounded(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

void* take_pooled(std::size_t bytes) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  for (auto it = p.free.begin(); it != p.free.end(); ++it)
    if (it->second == bytes) {
      void* data = it->first;
      p.free.erase(it);
      p.bytes -= bytes;
      return data;
    }
  return nullptr;
}

void give_to_pool(void* data, std::size_t bytes) {
  std::deque<std::pair<void*, std::size_t>> evicted;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (bytes <= kPoolBytes) {
      while (p.bytes + bytes > kPoolBytes || p.free.size() >= kPoolEntries) {
        evicted.push_back(p.free.front());
        p.bytes -= p.free.front().second;
        p.free.pop_front();
      }
      p.free.emplace_back(data, bytes);
      p.bytes += bytes;
    } else {
      evicted.emplace_back(data, bytes);
    }
  }
  for (const auto& [d, b] : evicted) munmap(d, b);
}
#endif

}  // namespace

ZeroedBuffer::ZeroedBuffer(std::size_t bytes) {
#if defined(__linux__)
  if (bytes >= kMappedFrom) {
    const std::size_t rounded = page_rounded(bytes);
    if (void* reused = take_pooled(rounded)) {
      std::memset(reused, 0, rounded);
      data_ = reused;
      mapped_bytes_ = rounded;
      return;
    }
    void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = p;  // (zero-filled by the kernel)
    mapped_bytes_ = rounded;
    return;
  }
#endif
  data_ = std::calloc(bytes == 0 ? 1 : bytes, 1);
  if (!data_) throw std::bad_alloc();
}

ZeroedBuffer::~ZeroedBuffer() {
#if defined(__linux__)
  if (mapped_bytes_ > 0) {
    give_to_pool(data_, mapped_bytes_);
    return;
  }
#endif
  std::free(data_);
}

}  // namespace pe::detail
