// RootPlan::enqueue captured into a CUDA graph and replayed (issue 11): a replay recomputes the root of
// whatever the captured input buffer holds, collect() after each replay reads that replay's checks, and
// the numbers agree with an uncaptured enqueue and with the double reference. Skipped without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_test_support.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"

namespace pe {
namespace {

constexpr std::int64_t kN = 256, kBatch = 2;
constexpr double kKappa = 1e3;

#define PE_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << cudaGetErrorString(cudaGetLastError())

// Members with lambda_max = 1 and lambda_min = 1 / kKappa: the hints the enqueued run trusts.
std::vector<float> members(std::uint64_t seed) {
  std::vector<float> a;
  for (std::int64_t k = 0; k < kBatch; ++k) {
    const auto m = reference::random_spd(reference::make_spectrum(kN, kKappa, reference::Spectrum::spread),
                                         seed + static_cast<std::uint64_t>(k));
    a.insert(a.end(), m.begin(), m.end());
  }
  return a;
}

Options graph_options(cudaStream_t stream) {
  Options o;
  o.p = 2;
  o.target = 1e-3;
  o.device = Device::cuda;
  o.stream = stream;
  o.verify = false;
  o.fallback = Fallback::never;
  o.lambda_min_hint = 1 / kKappa;
  o.lambda_max_hint = 1;
  return o;
}

// A stream of its own and device buffers for A and X (batch kBatch of kN x kN, f32), with their views.
class CudaGraph : public ::testing::Test {
 protected:
  static constexpr std::size_t count = static_cast<std::size_t>(kN * kN * kBatch);
  void SetUp() override {
    PE_REQUIRE_CUDA_DEVICE();
    PE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    PE_CUDA_OK(cudaMalloc(&da, sizeof(float) * count));
    PE_CUDA_OK(cudaMalloc(&dx, sizeof(float) * count));
    av = Matrix{da, kN, kN, kN, DType::f32, Layout::col_major, kBatch, kN * kN, Device::cuda};
    xv = MutableMatrix{dx, kN, kN, kN, DType::f32, Layout::col_major, kBatch, kN * kN, Device::cuda};
  }
  void TearDown() override {
    if (da) cudaFree(da);
    if (dx) cudaFree(dx);
    if (stream) cudaStreamDestroy(stream);
  }
  cudaStream_t stream = nullptr;
  void *da = nullptr, *dx = nullptr;
  Matrix av;
  MutableMatrix xv;
};

TEST_F(CudaGraph, CapturedEnqueueReplaysWithFreshInputs) {
  RootPlan plan(describe(av), graph_options(stream));

  // Warm-up outside the capture: sizes the workspace, the GEMM plans and the pinned scalar buffers.
  std::vector<float> a = members(1), x(count), x_plain(count);
  PE_CUDA_OK(cudaMemcpy(da, a.data(), sizeof(float) * count, cudaMemcpyHostToDevice));
  plan.enqueue(av, xv);
  const Report warm = plan.collect();
  ASSERT_EQ(warm.status, Status::ok);

  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  PE_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  plan.enqueue(av, xv);
  PE_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  PE_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  for (std::uint64_t seed : {11u, 23u, 37u}) {
    a = members(seed);
    PE_CUDA_OK(cudaMemcpyAsync(da, a.data(), sizeof(float) * count, cudaMemcpyHostToDevice, stream));
    PE_CUDA_OK(cudaGraphLaunch(exec, stream));
    const Report replayed = plan.collect();  // waits for the stream
    PE_CUDA_OK(cudaMemcpy(x.data(), dx, sizeof(float) * count, cudaMemcpyDeviceToHost));
    EXPECT_EQ(replayed.status, Status::ok) << seed;
    EXPECT_TRUE(replayed.target_reached) << seed;
    EXPECT_EQ(replayed.steps, warm.steps);  // the plan was fixed when captured
    // The same sequence uncaptured: the same kernels and GEMM algorithms on the same inputs.
    plan.enqueue(av, xv);
    const Report plain = plan.collect();
    PE_CUDA_OK(cudaMemcpy(x_plain.data(), dx, sizeof(float) * count, cudaMemcpyDeviceToHost));
    EXPECT_EQ(plain.estimated_residual, replayed.estimated_residual) << seed;
    double largest = 0;
    for (std::size_t i = 0; i < count; ++i) largest = std::max(largest, std::abs(static_cast<double>(x[i]) - x_plain[i]));
    EXPECT_LE(largest, 1e-6) << seed;  // bitwise in practice; tf32-free f32 GEMMs are deterministic per algorithm
    for (std::int64_t k = 0; k < kBatch; ++k) {
      const std::vector<double> ak(a.begin() + k * kN * kN, a.begin() + (k + 1) * kN * kN);
      const std::vector<double> xk(x.begin() + k * kN * kN, x.begin() + (k + 1) * kN * kN);
      // The model's bound plus f32 rounding amplified by kappa / p, with the factor 2 per step of the
      // runtime tests' allowance.
      const double allowance = 2.0 * replayed.steps * std::ldexp(1.0, -24) * (kKappa / 2 + std::sqrt(kN + 1.0));
      EXPECT_LE(reference::relative_error(xk, reference::inverse_root(ak, kN, 2)),
                (1 - std::sqrt(1 - replayed.model_eps)) + allowance)
          << "seed " << seed << ", member " << k;
    }
    // The uncaptured enqueue replaced what collect reads with its own checks; the graph still replays
    // (it holds its own copy of the sequence), and its replay's checks are what collect reads next.
    PE_CUDA_OK(cudaGraphLaunch(exec, stream));
    EXPECT_EQ(plan.collect().status, Status::ok);
  }

  // A replay on an input that is not finite: collect names it (the output is unspecified).
  a[5] = std::nanf("");
  PE_CUDA_OK(cudaMemcpyAsync(da, a.data(), sizeof(float) * count, cudaMemcpyHostToDevice, stream));
  PE_CUDA_OK(cudaGraphLaunch(exec, stream));
  try {
    plan.collect();
    ADD_FAILURE() << "collect should find the non-finite entry";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
  }

  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// A capture without the warm-up enqueue would allocate inside the graph: refused by name, and the stream
// is usable again once the (invalidated) capture is ended.
TEST_F(CudaGraph, CaptureWithoutWarmUpIsRefused) {
  const std::vector<float> a = members(5);
  PE_CUDA_OK(cudaMemcpy(da, a.data(), sizeof(float) * count, cudaMemcpyHostToDevice));
  RootPlan plan(describe(av), graph_options(stream));
  PE_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    plan.enqueue(av, xv);
    ADD_FAILURE() << "expected the capture to be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the capture first"), std::string::npos) << e.what();
  }
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(stream, &graph);
  if (graph) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
  plan.enqueue(av, xv);  // outside a capture it runs, and is the warm-up
  EXPECT_EQ(plan.collect().status, Status::ok);
}

// Host views on a CUDA plan need synchronising copies: enqueue refuses them by name.
TEST_F(CudaGraph, EnqueueRefusesHostViews) {
  std::vector<float> a = members(3), x(a.size());
  const Matrix host_a{a.data(), kN, kN, kN, DType::f32, Layout::col_major, kBatch, kN * kN};
  RootPlan plan(describe(host_a), graph_options(nullptr));
  try {
    plan.enqueue(host_a, MutableMatrix{x.data(), kN, kN, kN, DType::f32, Layout::col_major, kBatch, kN * kN});
    ADD_FAILURE() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a is a host view"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pe
