// Stream semantics and resource lifetime of the CUDA backend: operations are queued on the caller's
// stream without host synchronisation (only fetch_scalars and host downloads wait), and creating,
// using and destroying backends a thousand times leaks no device memory.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cuda_test_support.hpp"

namespace pe::test {
namespace {

using detail::Mat;
using detail::Op;

// A host function that holds the stream until released (or until the watchdog gives up).
struct StreamGate {
  std::atomic<bool> open{false};
  static void CUDART_CB hold(void* self) {
    auto* gate = static_cast<StreamGate*>(self);
    while (!gate->open.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
};

TEST(CudaLifecycle, OperationsQueueOnTheCallersStreamWithoutWaiting) {
  PE_REQUIRE_CUDA_DEVICE();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::mt19937_64 rng(fresh_seed());
  const std::int64_t n = 64;
  HostBatch a = random_batch(rng, n, n, 2);
  {
    auto backend = detail::make_cuda_backend(DType::f32, ComputeMode::native, stream);
    // Uploads from pageable host memory wait for the stream, so they happen before the gate closes.
    Mat da = upload_stored(*backend, a);
    Mat dc = backend->allocate(n, n, 2);

    const auto issue_all = [&] {
      backend->gemm(Op::N, Op::T, 1.0, da, da, 0.0, dc);
      backend->symmetrize(dc);
      const double half = 0.5;
      backend->axpby_identity({&half, 1}, &dc, {}, nullptr, {&half, 1}, dc);
      backend->trace(dc, 0);
      backend->gershgorin(dc, 1, 2);
      backend->frobenius_norm(dc, 3);
    };
    // First use loads kernels (CUDA's lazy loading synchronises), plans the product and sizes the
    // scratch buffers; the claim is about steady state, as inside an iteration.
    issue_all();
    (void)backend->fetch_scalars();

    StreamGate gate;
    ASSERT_EQ(cudaLaunchHostFunc(stream, &StreamGate::hold, &gate), cudaSuccess);
    // If any call below waited for the stream, this thread would release it after 20 s and fail.
    std::atomic<bool> issued{false};
    std::thread watchdog([&] {
      for (int i = 0; i < 2000 && !issued.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      gate.open.store(true);
    });
    issue_all();
    const bool still_held = cudaStreamQuery(stream) == cudaErrorNotReady;
    const bool in_time = !gate.open.load();
    issued.store(true);
    gate.open.store(true);
    watchdog.join();
    EXPECT_TRUE(in_time) << "an operation waited for the stream (the watchdog had to release it)";
    EXPECT_TRUE(still_held) << "the work did not wait behind the caller's stream";

    const auto slots = backend->fetch_scalars();  // waits for the stream
    ASSERT_EQ(slots.size(), 4u);
    const HostBatch c = download(*backend, dc);
    for (std::int64_t k = 0; k < 2; ++k) {
      double trace = 0;
      for (std::int64_t i = 0; i < n; ++i) trace += c(i, i, k);
      // fetch_scalars saw the finished product: trace of the stored result, summed in double.
      EXPECT_NEAR(slots[0][k], trace, 1e-9 * std::abs(trace) + 1e-9);
      // 0.5 (A A^T + I) with |a_ij| >= 0.25 has trace >= 0.5 n (1 + 0.0625 n): the gemm ran first.
      EXPECT_GT(trace, 0.5 * n * (1 + 0.0625 * n) * (1 - 1e-3));
    }
  }
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(CudaLifecycle, ThousandBackendLifetimesLeakNoDeviceMemory) {
  PE_REQUIRE_CUDA_DEVICE();
  std::mt19937_64 rng(fresh_seed());
  const std::int64_t n = 32;
  HostBatch a = random_batch(rng, n, n, 2);
  for (std::int64_t k = 0; k < 2; ++k)
    for (std::int64_t i = 0; i < n; ++i) a(i, i, k) = 2.0 * static_cast<double>(n);  // well conditioned
  HostBatch b = random_batch(rng, n, 3, 2);
  auto one_lifetime = [&](int call) {
    auto backend = detail::make_cuda_backend(call % 2 ? DType::bf16 : DType::f32, ComputeMode::native, nullptr);
    Mat da = backend->allocate(n, n, 2), db = backend->allocate(n, 3, 2), dx = backend->allocate(n, 3, 2);
    Mat dr = backend->allocate(n, 3, 2);
    backend->upload(a.view(), da);
    backend->upload(b.view(), db);
    backend->gemm(Op::N, Op::N, 1.0, da, db, 0.0, dx);
    backend->residual(da, dx, db, dr);
    backend->trace(da, 0);
    backend->max_abs_row_sum_minus_identity(da, 3);
    backend->count_nonfinite(dx, 5);
    (void)backend->fetch_scalars();
    if (call % 100 == 0) {
      ASSERT_TRUE(backend->exact_solve(da, db, dx));  // cuSOLVER handle and workspace
    }
    HostBatch out(n, 3, 2);
    backend->download(dx, out.view());
  };
  for (int call = 0; call < 10; ++call) one_lifetime(call);  // lazy loading and pools settle first
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::size_t free_before = 0, total = 0, free_after = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  for (int call = 0; call < 1000; ++call) one_lifetime(call);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  // Each lifetime allocates > 32 MiB (the cuBLASLt workspace), so a leak of anything per call would
  // show as gigabytes; 64 MiB absorbs the driver's own page-granular bookkeeping.
  EXPECT_GE(free_after + (std::size_t{64} << 20), free_before)
      << "free device memory fell from " << free_before << " to " << free_after << " bytes over 1000 calls";
}

}  // namespace
}  // namespace pe::test
