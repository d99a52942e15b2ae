// The public entry points of roots and applies: plans hold a RootEngine (runtime/engine); the one-shot
// functions validate, plan and execute once.
#include <string>

#include "backend_factory.hpp"
#include "engine/root_engine.hpp"
#include "pe/pe.hpp"
#include "view_checks.hpp"

namespace pe {

MatrixDesc describe(const Matrix& m) { return MatrixDesc{m.rows, m.cols, m.batch, m.dtype, m.device}; }

RootPlan::RootPlan(const MatrixDesc& a, const Options& options)
    : engine_(std::make_unique<detail::RootEngine>(a, nullptr, options)) {}
RootPlan::~RootPlan() = default;
RootPlan::RootPlan(RootPlan&&) noexcept = default;
RootPlan& RootPlan::operator=(RootPlan&&) noexcept = default;
Report RootPlan::execute(const Matrix& a, MutableMatrix x) { return engine_->execute_root(a, x); }
void RootPlan::enqueue(const Matrix& a, MutableMatrix x) { engine_->enqueue_root(a, x); }
Report RootPlan::collect() { return engine_->collect(); }
const Options& RootPlan::options() const { return engine_->options(); }
const MatrixDesc& RootPlan::shape() const { return engine_->shape(); }

ApplyPlan::ApplyPlan(const MatrixDesc& a, const MatrixDesc& b, const Options& options)
    : engine_(std::make_unique<detail::RootEngine>(a, &b, options)) {}
ApplyPlan::~ApplyPlan() = default;
ApplyPlan::ApplyPlan(ApplyPlan&&) noexcept = default;
ApplyPlan& ApplyPlan::operator=(ApplyPlan&&) noexcept = default;
Report ApplyPlan::execute(const Matrix& a, const Matrix& b, MutableMatrix z) { return engine_->execute_apply(a, b, z); }
void ApplyPlan::enqueue(const Matrix& a, const Matrix& b, MutableMatrix z) { engine_->enqueue_apply(a, b, z); }
Report ApplyPlan::collect() { return engine_->collect(); }
const Options& ApplyPlan::options() const { return engine_->options(); }
bool ApplyPlan::direct() const { return engine_->direct(); }

Report inverse_root(const Matrix& a, MutableMatrix x, const Options& options) {
  detail::check_options(options);
  detail::check_view("a", a, options.device, detail::Batching::allowed);
  detail::check_view("x", x, options.device, detail::Batching::allowed);
  return RootPlan(describe(a), options).execute(a, x);
}

Report apply_inverse_root(const Matrix& a, const Matrix& b, MutableMatrix z, const Options& options) {
  detail::check_options(options);
  detail::check_view("a", a, options.device, detail::Batching::allowed);
  detail::check_view("b", b, options.device, detail::Batching::allowed);
  detail::check_view("z", z, options.device, detail::Batching::allowed);
  return ApplyPlan(describe(a), describe(b), options).execute(a, b, z);
}

Precond parse_precond(const std::string& name) {
  for (Precond m : {Precond::none, Precond::frobenius, Precond::jacobi, Precond::ruiz, Precond::aol})
    if (name == to_string(m)) return m;
  throw Error("precond mode '" + name + "' is unknown (expected none, frobenius, jacobi, ruiz or aol)");
}

const char* to_string(Precond mode) {
  switch (mode) {
    case Precond::none: return "none";
    case Precond::frobenius: return "frobenius";
    case Precond::jacobi: return "jacobi";
    case Precond::ruiz: return "ruiz";
    case Precond::aol: return "aol";
  }
  return "?";
}

Fallback parse_fallback(const std::string& name) {
  for (Fallback f : {Fallback::never, Fallback::on_failure, Fallback::on_unverified})
    if (name == to_string(f)) return f;
  throw Error("fallback '" + name + "' is unknown (expected never, on_failure or on_unverified)");
}

const char* to_string(Fallback f) {
  switch (f) {
    case Fallback::never: return "never";
    case Fallback::on_failure: return "on_failure";
    case Fallback::on_unverified: return "on_unverified";
  }
  return "?";
}

const char* to_string(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::fallback: return "fallback";
    case Status::diverged: return "diverged";
    case Status::not_positive_definite: return "not_positive_definite";
  }
  return "?";
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::bf16: return "bf16";
    case DType::f16: return "f16";
  }
  return "?";
}

const char* to_string(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

namespace detail {
std::unique_ptr<Backend> make_backend(Device device, DType storage, ComputeMode compute, void* stream) {
  if (device == Device::cuda) return make_cuda_backend(storage, compute, stream);
  return make_cpu_backend(storage, compute);
}
}  // namespace detail

}  // namespace pe
