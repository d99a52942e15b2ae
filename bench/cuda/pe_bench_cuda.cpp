// pe-bench-cuda: our inverse root on the CUDA backend against what a GPU user would pick instead, measured
// in one run on the same device and stream: a cuSOLVER syevd root (fp32 Ssyevd, and the backend's own fp64
// fallback), the classic coupled Newton iteration (Guo & Higham 2006, their optimal scalar start) on the
// same backend, and the bare cuBLASLt time of our GEMM count (our overhead over the GEMM floor). Then a
// batch of equally sized blocks (Shampoo-style) in one call, in blocks per second.
//
// Times are wall-clock medians with the stream synchronised at the end, so they include every host
// decision and fetch. "plan" = RootPlan::execute on device views (validation, preconditioning, the
// interval-tracked iteration, the verification); "oneshot" = pe::inverse_root (the plan made per call). Every number goes to a JSON
// file, rewritten after each case (temp file + rename), so a run that is cut short keeps what it measured.
#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "pe/pe.hpp"
#include "reference.hpp"
#include "schedules.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using pe::detail::Backend;
using pe::detail::HostMat;
using pe::detail::Mat;
using pe::detail::Op;

struct Settings {
  std::vector<std::int64_t> sizes{512, 1024, 2048, 4096, 8192};
  std::vector<int> powers{2, 4};
  std::vector<std::string> dtypes{"f32", "tf32", "bf16"};
  double kappa = 1e4;
  // bf16/fp16 keep their own condition number: rounding A to bf16 moves its eigenvalues by about
  // 2^-8 times the size of its entries, about 1e-3 ||A|| for these matrices (measured: the iteration diverges
  // and Newton blows up at kappa 1e4), so there the stored matrix is not positive definite.
  double kappa_half = 1e2;
  double target_f32 = 1e-3;   // f32 and tf32
  double target_bf16 = 1e-2;
  int repeats = 5;
  int repeats_large = 3;
  std::int64_t large_from = 4096;
  std::int64_t batch_blocks = 64;
  std::int64_t batch_n = 1024;
  bool skip_batched = false;
  bool verify = true;
  std::string json_path = "pe_bench_cuda.json";
};

struct DtypeSpec {
  pe::DType storage;
  pe::ComputeMode compute;
};

DtypeSpec parse_dtype(const std::string& name) {
  if (name == "f32") return {pe::DType::f32, pe::ComputeMode::native};
  if (name == "tf32") return {pe::DType::f32, pe::ComputeMode::tf32};
  if (name == "bf16") return {pe::DType::bf16, pe::ComputeMode::native};
  if (name == "f16") return {pe::DType::f16, pe::ComputeMode::native};
  throw pe::Error("--dtype '" + name + "': expected f32, tf32, bf16 or f16");
}

void sync() { PE_CUDA_TRY(cudaDeviceSynchronize()); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Median wall time (ms) of `repeats` runs after one untimed warm-up; run() leaves the device busy, the
// clock stops after a device synchronisation.
double time_ms(int repeats, const std::function<void()>& run) {
  run();
  sync();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    run();
    sync();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return median(ms);
}

HostMat host_view(std::vector<double>& v, std::int64_t n, std::int64_t cols, std::int64_t batch) {
  return HostMat{v.data(), pe::DType::f64, n, cols, n, batch, n * cols, pe::Layout::col_major};
}

// `batch` SPD matrices Q diag(w) Q^T (w log-spread in [1/kappa, 1], Q from a QR of a Gaussian matrix),
// built on the device in double (a host QR of n = 8192 would take longer than the whole benchmark).
std::vector<double> make_spd(std::int64_t n, std::int64_t batch, double kappa, std::uint64_t seed) {
  auto be = pe::detail::make_cuda_backend(pe::DType::f64, pe::ComputeMode::native, nullptr);
  cusolverDnHandle_t solver = nullptr;
  PE_CUSOLVER_TRY(cusolverDnCreate(&solver));
  const int ni = static_cast<int>(n);
  int lwork_qr = 0, lwork_q = 0;
  Mat g = be->allocate(n, n, 1), w = be->allocate(n, 1, 1), a = be->allocate(n, n, 1), tau = be->allocate(n, 1, 1);
  Mat work = be->allocate(1, 1, 1), info = be->allocate(1, 1, 1);
  PE_CUSOLVER_TRY(cusolverDnDgeqrf_bufferSize(solver, ni, ni, static_cast<double*>(g.data), ni, &lwork_qr));
  PE_CUSOLVER_TRY(cusolverDnDorgqr_bufferSize(solver, ni, ni, ni, static_cast<double*>(g.data), ni,
                                              static_cast<double*>(tau.data), &lwork_q));
  const int lwork = std::max(lwork_qr, lwork_q);
  work = be->allocate(lwork, 1, 1);
  std::vector<double> spectrum = pe::reference::make_spectrum(n, kappa, pe::reference::Spectrum::spread);
  be->upload(host_view(spectrum, n, 1, 1), w);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> host(static_cast<std::size_t>(n * n)), out(static_cast<std::size_t>(n * n * batch));
  for (std::int64_t k = 0; k < batch; ++k) {
    for (double& x : host) x = normal(rng);
    be->upload(host_view(host, n, n, 1), g);
    PE_CUSOLVER_TRY(cusolverDnDgeqrf(solver, ni, ni, static_cast<double*>(g.data), ni, static_cast<double*>(tau.data),
                                     static_cast<double*>(work.data), lwork, static_cast<int*>(info.data)));
    PE_CUSOLVER_TRY(cusolverDnDorgqr(solver, ni, ni, ni, static_cast<double*>(g.data), ni,
                                     static_cast<double*>(tau.data), static_cast<double*>(work.data), lwork,
                                     static_cast<int*>(info.data)));
    be->copy(g, a);
    be->diag_scale(nullptr, a, &w);                  // Q diag(w)
    Mat product = be->allocate(n, n, 1);
    be->gemm(Op::N, Op::T, 1.0, a, g, 0.0, product);  // Q diag(w) Q^T
    be->symmetrize(product);
    std::vector<double> member(static_cast<std::size_t>(n * n));
    be->download(product, host_view(member, n, n, 1));
    std::copy(member.begin(), member.end(), out.begin() + k * n * n);
  }
  PE_CUSOLVER_TRY(cusolverDnDestroy(solver));
  return out;
}

struct OursResult {
  pe::Report it;
  double plan_ms = 0;     // RootPlan::execute on device views (plan made once, outside the timing)
  double oneshot_ms = 0;  // pe::inverse_root: plan, execute, destroy per call
  double verify_ms = 0;   // of plan_ms: the verification
  std::vector<double> x;  // first member, double, for the accuracy column
};

// Ours through the public API on device views (A in the storage dtype, column-major), on the default stream.
OursResult run_ours(Backend& be, const Mat& a0, int p, double kappa, double target, int repeats, bool verify) {
  const std::int64_t n = a0.rows, batch = a0.batch;
  Mat x = be.allocate(n, n, batch);
  pe::Options o;
  o.p = p;
  o.target = target;
  o.device = pe::Device::cuda;
  o.storage_from_input = true;
  o.compute = be.compute();
  o.lambda_min_hint = 1.0 / kappa;  // the spectrum is [1/kappa, 1]; Newton gets the same knowledge
  o.lambda_max_hint = 1.0;
  o.verify = verify;
  const pe::Matrix av{a0.data, n, n, n, be.storage(), pe::Layout::col_major, batch, n * n, pe::Device::cuda};
  const pe::MutableMatrix xv{x.data, n, n, n, be.storage(), pe::Layout::col_major, batch, n * n, pe::Device::cuda};
  OursResult out;
  pe::RootPlan plan(pe::describe(av), o);
  std::vector<double> verify_ms;
  out.plan_ms = time_ms(repeats, [&] {
    out.it = plan.execute(av, xv);
    verify_ms.push_back(1e3 * out.it.verify_seconds);
  });
  out.verify_ms = median(verify_ms);
  out.oneshot_ms = time_ms(repeats, [&] { pe::inverse_root(av, xv, o); });
  Mat first = x;
  first.batch = 1;
  out.x.resize(static_cast<std::size_t>(n * n));
  be.download(first, host_view(out.x, n, n, 1));
  return out;
}

// Iterations the coupled Newton iteration needs to bring every eigenvalue of M_0 (spectrum in [lo, hi])
// within `target` of 1, in exact arithmetic (the scalar map on a dense sample of the interval).
int newton_iterations(double lo, double hi, int p, double target) {
  std::vector<double> y;
  for (int i = 0; i <= 4000; ++i) y.push_back(lo * std::pow(hi / lo, i / 4000.0));
  for (int it = 1; it <= 100; ++it) {
    double worst = 0;
    for (double& v : y) {
      v *= std::pow((p + 1 - v) / p, p);
      worst = std::max(worst, std::abs(1 - v));
    }
    if (worst <= target) return it;
  }
  return 100;
}

struct NewtonResult {
  int iterations = 0, gemms = 0;
  double ms = 0;
  std::vector<double> x;
};

// Guo & Higham's coupled iteration on the backend: X_0 = I/c, M_0 = A/c^p, T = ((p+1) I - M)/p,
// X <- X T, M <- T^p M (skipped on the last iteration). Workspace allocated once, outside the timing.
NewtonResult run_newton(Backend& be, const Mat& a0, int p, double kappa, double target, int repeats) {
  const std::int64_t n = a0.rows;
  const double lambda_min = 1.0 / kappa, lambda_max = 1.0;
  const double c = pe_bench::newton_scaling(lambda_min, lambda_max, p);
  NewtonResult out;
  out.iterations = newton_iterations(lambda_min / std::pow(c, p), lambda_max / std::pow(c, p), p, target);
  Mat m = be.allocate(n, n, 1), m_alt = be.allocate(n, n, 1), t = be.allocate(n, n, 1), t2 = be.allocate(n, n, 1),
      t4 = be.allocate(n, n, 1), x = be.allocate(n, n, 1), x_alt = be.allocate(n, n, 1);
  if (p != 2 && p != 4) throw pe::Error("pe-bench-cuda: --p " + std::to_string(p) + ": the Newton baseline takes 2 or 4");
  const std::vector<double> one{1.0}, minus_over_p{-1.0 / p}, shift{(p + 1.0) / p}, inv_cp{1.0 / std::pow(c, p)},
      inv_c{1.0 / c}, zero{0.0};
  auto run = [&] {
    int gemms = 0;
    be.copy(a0, m);
    be.scale(inv_cp, m);
    for (int it = 1; it <= out.iterations; ++it) {
      const bool last = it == out.iterations;
      be.axpby_identity(minus_over_p, &m, {}, nullptr, shift, t);  // T = ((p+1) I - M) / p
      if (it == 1) {
        be.axpby_identity(inv_c, &t, {}, nullptr, zero, x);  // X_1 = X_0 T = T / c
      } else {
        be.gemm(Op::N, Op::N, 1.0, x, t, 0.0, x_alt);
        std::swap(x, x_alt);
        ++gemms;
      }
      if (!last) {
        be.gemm(Op::N, Op::N, 1.0, t, t, 0.0, t2);
        const Mat* tp = &t2;
        if (p == 4) {
          be.gemm(Op::N, Op::N, 1.0, t2, t2, 0.0, t4);
          tp = &t4;
        }
        be.gemm(Op::N, Op::N, 1.0, *tp, m, 0.0, m_alt);
        std::swap(m, m_alt);
        gemms += p == 4 ? 3 : 2;
      }
    }
    out.gemms = gemms;
  };
  out.ms = time_ms(repeats, run);
  out.x.resize(static_cast<std::size_t>(n * n));
  be.download(x, host_view(out.x, n, n, 1));
  return out;
}

// A chain of `count` products of the shape ours issues (n x n x n, batched like a0), on the test matrix
// itself: tensor-core throughput depends on the data (zeros run faster), so the floor sees real values.
double gemm_floor_ms(Backend& be, const Mat& a0, int count, int repeats) {
  Mat a = be.allocate(a0.rows, a0.cols, a0.batch), c = be.allocate(a0.rows, a0.cols, a0.batch);
  return time_ms(repeats, [&] {
    be.copy(a0, a);
    for (int i = 0; i < count; ++i) be.gemm(Op::N, Op::N, 1.0, i % 2 ? c : a, a0, 0.0, i % 2 ? a : c);
  });
}

// The fp32 syevd root a GPU user would write: A = V diag(w) V^T (cusolverDnSsyevd), X = W W^T with
// W = V diag(w^{-1/(2p)}). Returns the median time.
double syevd_f32_ms(const std::vector<double>& host_a, std::int64_t n, int p, int repeats, std::vector<double>& x_out) {
  auto be = pe::detail::make_cuda_backend(pe::DType::f32, pe::ComputeMode::native, nullptr);
  std::vector<double> a_copy(host_a.begin(), host_a.begin() + n * n);
  Mat a0 = be->allocate(n, n, 1), v = be->allocate(n, n, 1), w = be->allocate(n, 1, 1), x = be->allocate(n, n, 1);
  be->upload(host_view(a_copy, n, n, 1), a0);
  cusolverDnHandle_t solver = nullptr;
  PE_CUSOLVER_TRY(cusolverDnCreate(&solver));
  const int ni = static_cast<int>(n);
  int lwork = 0;
  PE_CUSOLVER_TRY(cusolverDnSsyevd_bufferSize(solver, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, ni,
                                              static_cast<float*>(v.data), ni, static_cast<float*>(w.data), &lwork));
  Mat work = be->allocate(lwork + 1, 1, 1);
  int* info = nullptr;
  PE_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&info), sizeof(int)));
  std::vector<float> eig(static_cast<std::size_t>(n));
  std::vector<double> scaling(static_cast<std::size_t>(n));
  const double ms = time_ms(repeats, [&] {
    be->copy(a0, v);
    PE_CUSOLVER_TRY(cusolverDnSsyevd(solver, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, ni,
                                     static_cast<float*>(v.data), ni, static_cast<float*>(w.data),
                                     static_cast<float*>(work.data), lwork, info));
    PE_CUDA_TRY(cudaMemcpy(eig.data(), w.data, sizeof(float) * n, cudaMemcpyDeviceToHost));
    for (std::size_t i = 0; i < eig.size(); ++i)
      scaling[i] = eig[i] > 0 ? std::pow(static_cast<double>(eig[i]), -0.5 / p) : 0.0;  // non-positive: dropped
    be->upload(host_view(scaling, n, 1, 1), w);
    be->diag_scale(nullptr, v, &w);
    be->gemm(Op::N, Op::T, 1.0, v, v, 0.0, x);
  });
  x_out.resize(static_cast<std::size_t>(n * n));
  be->download(x, host_view(x_out, n, n, 1));
  PE_CUDA_TRY(cudaFree(info));
  PE_CUSOLVER_TRY(cusolverDnDestroy(solver));
  return ms;
}

void write_json_atomically(const json& doc, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw pe::Error("--json '" + path + "': cannot write " + tmp);
    out << doc.dump(1) << "\n";
  }
  std::filesystem::rename(tmp, path);
}

std::string device_name() {
  cudaDeviceProp prop{};
  int device = 0;
  PE_CUDA_TRY(cudaGetDevice(&device));
  PE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

bool is_half(const DtypeSpec& spec) { return spec.storage == pe::DType::bf16 || spec.storage == pe::DType::f16; }

void run(const Settings& s) {
  json doc;
  doc["device"] = device_name();
  doc["kappa"] = s.kappa;
  doc["kappa_half"] = s.kappa_half;
  doc["schedules"] = pe::detail::compiled_schedules().origin;
  doc["single"] = json::array();
  doc["batched"] = json::array();
  std::printf("device %s, kappa %.0e (bf16/f16: %.0e), medians of %d (%d from n = %lld) runs, ms\n",
              device_name().c_str(), s.kappa, s.kappa_half, s.repeats, s.repeats_large,
              static_cast<long long>(s.large_from));
  std::printf("%6s %2s %5s %6s | %5s %5s %9s %9s | %9s %9s %9s | %9s %6s | %9s %5s %9s | %9s %9s | %8s %8s\n", "n",
              "p", "dtype", "kappa", "steps", "gemms", "model", "verified", "plan", "oneshot", "verify", "floor",
              "ratio", "newton", "its", "err_newt", "syevd32", "syevd64", "err_ours", "err_s32");
  // The dtypes grouped by the condition number their test matrix gets.
  std::vector<std::pair<double, std::vector<std::string>>> groups;
  for (const std::string& name : s.dtypes) {
    const double kappa = is_half(parse_dtype(name)) ? s.kappa_half : s.kappa;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == kappa; });
    if (it == groups.end()) groups.push_back({kappa, {name}});
    else it->second.push_back(name);
  }
  for (std::int64_t n : s.sizes)
    for (const auto& [kappa, names] : groups) {
      const int repeats = n >= s.large_from ? s.repeats_large : s.repeats;
      std::vector<double> host_a = make_spd(n, 1, kappa, 0x5eed0000u + static_cast<std::uint64_t>(n));
      for (int p : s.powers) {
        // The exact root in double (the backend's cuSOLVER fallback): reference for every error column.
        auto be64 = pe::detail::make_cuda_backend(pe::DType::f64, pe::ComputeMode::native, nullptr);
        Mat a64 = be64->allocate(n, n, 1), x64 = be64->allocate(n, n, 1);
        be64->upload(host_view(host_a, n, n, 1), a64);
        const double syevd64 = time_ms(n >= s.large_from ? 1 : repeats, [&] {
          if (!be64->exact_inverse_root(a64, p, x64)) throw pe::Error("internal: test matrix not positive definite");
        });
        std::vector<double> exact(static_cast<std::size_t>(n * n));
        be64->download(x64, host_view(exact, n, n, 1));
        be64.reset();
        std::vector<double> x_syevd32;
        const double syevd32 = syevd_f32_ms(host_a, n, p, repeats, x_syevd32);
        const double err_syevd32 = pe::reference::relative_error(x_syevd32, exact);
        for (const std::string& name : names) {
          const DtypeSpec spec = parse_dtype(name);
          const double target = is_half(spec) ? s.target_bf16 : s.target_f32;
          auto be = pe::detail::make_cuda_backend(spec.storage, spec.compute, nullptr);
          Mat a0 = be->allocate(n, n, 1);
          be->upload(host_view(host_a, n, n, 1), a0);
          const OursResult ours = run_ours(*be, a0, p, kappa, target, repeats, s.verify);
          const double floor = gemm_floor_ms(*be, a0, ours.it.gemms, repeats);
          const NewtonResult newton = run_newton(*be, a0, p, kappa, target, repeats);
          const double err_ours = pe::reference::relative_error(ours.x, exact);
          const double err_newton = pe::reference::relative_error(newton.x, exact);
          std::printf("%6lld %2d %5s %6.0e | %5d %5d %9.2e %9.2e | %9.2f %9.2f %9.2f | %9.2f %6.2f | %9.2f %5d %9.2e | "
                      "%9.1f %9.1f | %8.1e %8.1e%s\n",
                      static_cast<long long>(n), p, name.c_str(), kappa, ours.it.steps, ours.it.gemms,
                      ours.it.model_eps, ours.it.verified_eps.value_or(NAN), ours.plan_ms, ours.oneshot_ms,
                      ours.verify_ms, floor, (ours.plan_ms - ours.verify_ms) / floor, newton.ms, newton.iterations,
                      err_newton, syevd32, syevd64, err_ours, err_syevd32,
                      ours.it.fallback ? "  FALLBACK (exact root)" : "");
          std::fflush(stdout);
          doc["single"].push_back({{"n", n}, {"p", p}, {"dtype", name}, {"kappa", kappa}, {"target", target},
                                   {"repeats", repeats}, {"steps", ours.it.steps}, {"gemms", ours.it.gemms},
                                   {"model_eps", ours.it.model_eps}, {"certified", ours.it.certified},
                                   {"verified_eps", ours.it.verified_eps ? json(*ours.it.verified_eps) : json(nullptr)},
                                   {"fallback", ours.it.fallback}, {"ours_plan_ms", ours.plan_ms},
                                   {"ours_oneshot_ms", ours.oneshot_ms}, {"verify_ms", ours.verify_ms},
                                   {"plan_over_gemm_floor", (ours.plan_ms - ours.verify_ms) / floor},
                                   {"gemm_floor_ms", floor}, {"newton_ms", newton.ms},
                                   {"newton_iterations", newton.iterations}, {"newton_gemms", newton.gemms},
                                   {"syevd_f32_ms", syevd32}, {"syevd_f64_ms", syevd64},
                                   {"rel_error_ours", err_ours}, {"rel_error_newton", err_newton},
                                   {"rel_error_syevd_f32", err_syevd32}});
          write_json_atomically(doc, s.json_path);
        }
      }
    }
  if (s.skip_batched) return;
  // Batched: many blocks of one size in one call (strided batched products, per-member intervals).
  const std::int64_t n = s.batch_n, blocks = s.batch_blocks;
  std::printf("\nbatched: %lld blocks of %lld, blocks per second (ms per call)\n", static_cast<long long>(blocks),
              static_cast<long long>(n));
  std::printf("%2s %5s %6s | %5s %5s | %16s | %16s | %16s\n", "p", "dtype", "kappa", "steps", "gemms", "ours batched",
              "ours one by one", "gemm floor");
  for (const auto& [kappa, names] : groups) {
    std::vector<double> host_a = make_spd(n, blocks, kappa, 0xb10c5u);
    for (int p : s.powers)
      for (const std::string& name : names) {
        const DtypeSpec spec = parse_dtype(name);
        const double target = is_half(spec) ? s.target_bf16 : s.target_f32;
        auto be = pe::detail::make_cuda_backend(spec.storage, spec.compute, nullptr);
        Mat a0 = be->allocate(n, n, blocks);
        be->upload(host_view(host_a, n, n, blocks), a0);
        const OursResult batched = run_ours(*be, a0, p, kappa, target, s.repeats_large, s.verify);
        // One call per block (what a caller without batching would do), timed on the first block.
        double one_by_one = 0;
        {
          auto single_be = pe::detail::make_cuda_backend(spec.storage, spec.compute, nullptr);
          Mat single = single_be->allocate(n, n, 1);
          std::vector<double> block(host_a.begin(), host_a.begin() + n * n);
          single_be->upload(host_view(block, n, n, 1), single);
          one_by_one = blocks * run_ours(*single_be, single, p, kappa, target, s.repeats_large, s.verify).plan_ms;
        }
        const double floor = gemm_floor_ms(*be, a0, batched.it.gemms, s.repeats_large);
        std::printf("%2d %5s %6.0e | %5d %5d | %7.0f (%6.1f) | %7.0f (%6.1f) | %7.0f (%6.1f)%s\n", p, name.c_str(),
                    kappa, batched.it.steps, batched.it.gemms, 1e3 * blocks / batched.plan_ms, batched.plan_ms,
                    1e3 * blocks / one_by_one, one_by_one, 1e3 * blocks / floor, floor,
                    batched.it.fallback ? "  FALLBACK" : "");
        std::fflush(stdout);
        doc["batched"].push_back({{"n", n}, {"blocks", blocks}, {"p", p}, {"dtype", name}, {"kappa", kappa},
                                  {"target", target}, {"steps", batched.it.steps}, {"gemms", batched.it.gemms},
                                  {"model_eps", batched.it.model_eps}, {"fallback", batched.it.fallback},
                                  {"verified_eps", batched.it.verified_eps ? json(*batched.it.verified_eps) : json(nullptr)},
                                  {"ours_batched_ms", batched.plan_ms}, {"verify_ms", batched.verify_ms},
                                  {"ours_one_by_one_ms", one_by_one}, {"gemm_floor_ms", floor},
                                  {"blocks_per_s", 1e3 * blocks / batched.plan_ms}});
        write_json_atomically(doc, s.json_path);
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"pe-bench-cuda: our inverse root on the GPU vs cuSOLVER syevd, coupled Newton and the cuBLASLt floor"};
  app.add_option("--n", s.sizes, "matrix sizes")->check(CLI::Range(std::int64_t{16}, std::int64_t{32768}));
  app.add_option("--p", s.powers, "roots p (2 and/or 4: the Newton baseline's fast paths)")->check(CLI::IsMember({2, 4}));
  app.add_option("--dtype", s.dtypes, "f32, tf32, bf16, f16")->check(CLI::IsMember({"f32", "tf32", "bf16", "f16"}));
  app.add_option("--kappa", s.kappa, "condition number of the f32/tf32 test matrices")->check(CLI::Range(1.0, 1e8));
  app.add_option("--kappa-half", s.kappa_half, "condition number of the bf16/f16 test matrices")
      ->check(CLI::Range(1.0, 1e8));
  app.add_option("--target-f32", s.target_f32, "target bound for f32 and tf32")->check(CLI::Range(1e-9, 0.5));
  app.add_option("--target-bf16", s.target_bf16, "target bound for bf16 and f16")->check(CLI::Range(1e-9, 0.5));
  app.add_option("--repeats", s.repeats, "timed runs per method (median)")->check(CLI::Range(1, 1000));
  app.add_option("--repeats-large", s.repeats_large, "timed runs from --large-from on")->check(CLI::Range(1, 1000));
  app.add_option("--large-from", s.large_from, "size from which --repeats-large applies")->check(CLI::PositiveNumber);
  app.add_option("--batch-blocks", s.batch_blocks, "blocks in the batched case")->check(CLI::Range(1, 4096));
  app.add_option("--batch-n", s.batch_n, "block size in the batched case")->check(CLI::Range(16, 8192));
  app.add_flag("--skip-batched", s.skip_batched, "only the single-matrix table");
  app.add_flag("--verify,!--no-verify", s.verify, "certify every root (on by default; its time is the verify column)");
  app.add_option("--json", s.json_path, "output JSON file");
  CLI11_PARSE(app, argc, argv);
  try {
    run(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pe-bench-cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
