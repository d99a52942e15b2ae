// Zero-initialised host memory for the CPU backend's matrices.
//
// A one-shot call (pe::inverse_root and friends) builds and drops a whole plan's workspace per call: about
// 700 MB for n = 2048 in f32 with its f64 companion and the certificate. Memory the process has not touched
// before costs a page fault per 4 KiB on first touch; on the shared KVM machine about 10 us a page (1.4-1.9 s
// for those 700 MB), which made a one-shot call at n = 2048 1.3x its plan's execute (bench/RESULTS.md).
// glibc unmaps freed blocks from 32 MiB up, and returns the top of its heap to the system once a plan's
// smaller blocks are all freed together (n = 256: one-shot/plan 1.23). So buffers
// from 64 KiB up come from anonymous mappings that a released buffer leaves in a pool (at most 1 GiB and
// 4096 mappings in all, the oldest unmapped first) for the next buffer of the same size, zeroed again by
// memset. Smaller buffers come from calloc. Plans keep their buffers for their lifetime either way.
#pragma once

#include <cstddef>

namespace pe::detail {

class ZeroedBuffer {
 public:
  explicit ZeroedBuffer(std::size_t bytes);
  ~ZeroedBuffer();
  ZeroedBuffer(const ZeroedBuffer&) = delete;
  ZeroedBuffer& operator=(const ZeroedBuffer&) = delete;

  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  std::size_t mapped_bytes_ = 0;  // > 0: data_ is a mapping of this size (else from calloc)
};

}  // namespace pe::detail
