// pe::gram_apply: roots of A = G^T G + lambda I without the caller forming A, the dual identity for
// right-hand sides in the range of G^T, and a cache of formed Grams and materialised roots.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>


#include "backend_factory.hpp"
#include "formats.hpp"
#include "common.hpp"
#include "engine/root_engine.hpp"
#include "pe/solve.hpp"
#include "lanczos.hpp"
#include "view_checks.hpp"

namespace pe {

namespace {

using detail::Backend;
using detail::Mat;
using detail::Op;
using detail::format_number;

// Everything that determines a formed Gram (see GramCache in solve.hpp).
struct GramKey {
  const void* data = nullptr;
  std::int64_t rows = 0, cols = 0, ld = 0;
  DType dtype = DType::f64;
  Layout layout = Layout::col_major;
  Device device = Device::cpu;
  void* stream = nullptr;
  std::uint64_t version = 0;
  bool dual = false;
  double lambda = 0;
  DType storage = DType::f64;
  ComputeMode compute = ComputeMode::native;
  bool operator==(const GramKey&) const = default;
};

// What additionally determines a materialised root of that Gram.
struct RootKey {
  int p = 0;
  double target = 0;
  int max_gemms = 0;
  int degree = 0;
  ScheduleSource source = ScheduleSource::compiled;
  std::string schedule_file;
  bool operator==(const RootKey&) const = default;
};

// FNV-1a over every element's bytes (in its own dtype), column by column: detects changed contents of
// host views under an unchanged version token.
std::uint64_t fingerprint(const Matrix& g) {
  std::uint64_t h = 1469598103934665603ull;
  const std::size_t size = g.dtype == DType::f32 ? 4 : 8;
  const auto* base = static_cast<const unsigned char*>(g.data);
  const std::int64_t outer = g.layout == Layout::col_major ? g.cols : g.rows;
  const std::int64_t inner = g.layout == Layout::col_major ? g.rows : g.cols;
  for (std::int64_t j = 0; j < outer; ++j) {
    const unsigned char* p = base + static_cast<std::size_t>(j * g.ld) * size;
    for (std::size_t b = 0; b < static_cast<std::size_t>(inner) * size; ++b) {
      h ^= p[b];
      h *= 1099511628211ull;
    }
  }
  return h;
}

}  // namespace

struct GramCache::Impl {
  struct Root {
    RootKey key;
    Mat x;
    Report report;
  };
  struct Entry {
    GramKey key;
    std::uint64_t fingerprint = 0;
    std::unique_ptr<Backend> backend;  // owns g and gram (and the roots' memory)
    Mat g;                             // G (m x n) in the storage dtype
    Mat gram;                          // G^T G or G G^T (lambda not added; the root iteration adds it)
    std::vector<Root> roots;
    std::uint64_t last_use = 0;
  };
  std::size_t max_entries = 4;
  std::vector<Entry> entries;
  std::uint64_t clock = 0;
};

GramCache::GramCache(std::size_t max_entries) : impl_(std::make_unique<Impl>()) {
  if (max_entries < 1) throw Error("GramCache: max_entries = 0; expected at least 1");
  impl_->max_entries = max_entries;
}
GramCache::~GramCache() = default;
GramCache::GramCache(GramCache&&) noexcept = default;
GramCache& GramCache::operator=(GramCache&&) noexcept = default;
void GramCache::clear() { impl_->entries.clear(); }
std::size_t GramCache::size() const { return impl_->entries.size(); }

struct GramCacheAccess {
  static GramCache::Impl& impl(GramCache& c) { return *c.impl_; }
};

namespace {

void check_gram_options(const GramOptions& o) {
  if (o.p < 1 || o.p > 64) throw Error("options.p = " + std::to_string(o.p) + ": expected an integer in [1, 64]");
  if (!(o.lambda >= 0) || !std::isfinite(o.lambda))
    throw Error("options.lambda = " + format_number(o.lambda) + ": expected a finite value >= 0");
  if (o.max_gemms < 0) throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + ": expected >= 0");
  if (o.target == 0 && o.max_gemms == 0)
    throw Error("options.target = 0 (budget only) needs a budget: options.max_gemms > 0");
  if (o.side == GramSide::dual && o.rhs == GramRhs::plain)
    throw Error("options.side = dual needs options.rhs = range: the identity A^{-1/p} G^T C = G^T (G G^T + lambda "
                "I)^{-1/p} C holds only for right-hand sides of the form G^T C");
}

// Jacobi (column norms of G) is exact only for p = 1; roots use a scalar normalisation.
Precond scaling_for(int p) { return p == 1 ? Precond::jacobi : Precond::frobenius; }

Options root_options(const GramOptions& o) {
  Options io;
  io.p = o.p;
  io.target = o.target;
  io.max_gemms = 0;  // per run (the call's budget minus the Gram and the right-hand side products)
  io.degree = o.degree;
  io.precond = scaling_for(o.p);
  io.ridge = o.lambda;
  io.lambda_min_hint = o.lambda_min_hint;
  io.kappa_hint = o.kappa_hint;
  io.verify = o.verify;
  io.schedule_source = o.schedule_source;
  io.schedule_file = o.schedule_file;
  io.device = o.device;
  io.stream = o.stream;
  io.compute = o.compute;
  return io;
}

// lambda = 0 needs a positive definite Gram. A Gram bigger than G's other side is singular by its
// shape; otherwise Lanczos gives an upper bound of its smallest normalised eigenvalue, and a bound at the
// rounding level of the storage proves it numerically singular (G rank deficient): refuse it rather than
// return noise. Costs at most kLanczosSteps products with a vector (O(d^2) each).
constexpr int kLanczosSteps = 80;

void check_not_singular(Backend& be, const Mat& gram, const GramOptions& o, bool dual, std::int64_t other,
                        detail::solve::LanczosWorkspace& lanczos) {
  if (o.lambda > 0) return;
  const std::int64_t d = gram.rows;
  const std::string what = std::string("g: the Gram ") + (dual ? "G G^T" : "G^T G") + " (" + std::to_string(d) +
                           " x " + std::to_string(d) + ")";
  const std::string advice = "; pass options.lambda > 0 (lambda = 0 given)";
  if (d > other)
    throw Error(what + " has rank at most " + std::to_string(other) + ", so it is singular" + advice +
                (dual ? "" : " or use rhs range, whose dual side works on G G^T"));
  be.max_abs_row_sum(gram, 0);
  const double norm = be.fetch_scalars()[0][0];
  if (!(norm > 0))
    throw Error(what + " is zero (G = 0, or G's entries are so small that their products underflow: then rescale g)" +
                advice);
  const double unit = detail::unit_roundoff(be.storage());
  const double threshold = 10 * std::sqrt(static_cast<double>(d)) * unit * norm;
  const double ritz = detail::solve::smallest_ritz_value(be, gram, kLanczosSteps, threshold, lanczos);
  if (ritz <= threshold)
    throw Error(what + " is numerically singular (smallest eigenvalue <= " + format_number(std::max(ritz, 0.0) / norm) +
                " of its norm, below the rounding level " + format_number(threshold / norm) + " of " + to_string(be.storage()) +
                "): G is rank deficient" + advice);
}

}  // namespace

constexpr const char* kGramRemedy = "rescale b or g (A = G^T G + lambda I)";

namespace detail {

class GramEngine {
 public:
  GramEngine(const MatrixDesc& g, const MatrixDesc& b, const GramOptions& o);
  GramReport execute(const Matrix& g, const Matrix& b, MutableMatrix z);
  const GramOptions& options() const { return o_; }

 private:
  GramOptions o_;
  std::int64_t m_ = 0, n_ = 0, k_ = 0, d_ = 0;
  bool range_ = false, dual_ = false;
  DType storage_ = DType::f64;
  std::unique_ptr<Backend> be_;
  Mat g_, gram_, bm_, w_, out_, zn_;
  detail::solve::LanczosWorkspace lanczos_;
  std::unique_ptr<RootEngine> root_;   // cache: the materialised root of the Gram
  std::unique_ptr<RootEngine> apply_;  // no cache: the apply to W (direct or materialised by the shapes)
};

GramEngine::GramEngine(const MatrixDesc& g, const MatrixDesc& b, const GramOptions& o) : o_(o) {
  check_gram_options(o);
  if (g.rows < 1 || g.cols < 1)
    throw Error("g: shape " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " must be at least 1 x 1");
  if (b.rows < 1 || b.cols < 1)
    throw Error("b: shape " + std::to_string(b.rows) + " x " + std::to_string(b.cols) + " must be at least 1 x 1");
  if (g.batch != 1 || b.batch != 1)
    throw Error("g, b: batch counts " + std::to_string(g.batch) + ", " + std::to_string(b.batch) +
                ": solves and Gram applies take one matrix (batch 1)");
  m_ = g.rows;
  n_ = g.cols;
  k_ = b.cols;
  range_ = o.rhs == GramRhs::range;
  if (b.rows != (range_ ? m_ : n_))
    throw Error("b: has " + std::to_string(b.rows) + " rows, expected " + std::to_string(range_ ? m_ : n_) +
                (range_ ? " (g's rows: rhs range takes C with Z = A^{-1/p} G^T C)" : " (g's columns: A = G^T G)"));
  dual_ = range_ && (o.side == GramSide::dual || (o.side == GramSide::automatic && m_ < n_));
  d_ = dual_ ? m_ : n_;
  storage_ = o.storage_from_input ? g.dtype : o.storage;
  be_ = make_backend(o.device, storage_, o.compute, o.stream);
  g_ = be_->allocate(m_, n_, 1);
  gram_ = be_->allocate(d_, d_, 1);
  bm_ = be_->allocate(b.rows, k_, 1);
  if (range_ && !dual_) w_ = be_->allocate(n_, k_, 1);
  out_ = be_->allocate(d_, k_, 1);
  if (dual_) zn_ = be_->allocate(n_, k_, 1);
  if (o.lambda == 0) lanczos_ = detail::solve::allocate_lanczos_workspace(*be_, d_);
  const MatrixDesc square{d_, d_, 1, storage_, o.device};
  const MatrixDesc rhs{d_, k_, 1, storage_, o.device};
  if (o.cache)
    root_ = std::make_unique<RootEngine>(square, nullptr, root_options(o), nullptr, *be_);
  else
    apply_ = std::make_unique<RootEngine>(square, &rhs, root_options(o), nullptr, *be_);
}

GramReport GramEngine::execute(const Matrix& g, const Matrix& b, MutableMatrix z) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const GramOptions& o = o_;
  detail::check_view("g", g, o.device, detail::Batching::single_matrix);
  detail::check_view("b", b, o.device, detail::Batching::single_matrix);
  detail::check_view("z", z, o.device, detail::Batching::single_matrix);
  if (g.rows != m_ || g.cols != n_)
    throw Error("g: shape " + std::to_string(g.rows) + " x " + std::to_string(g.cols) + " does not match the plan's " +
                std::to_string(m_) + " x " + std::to_string(n_));
  if (b.rows != bm_.rows || b.cols != k_)
    throw Error("b: shape " + std::to_string(b.rows) + " x " + std::to_string(b.cols) + " does not match the plan's " +
                std::to_string(bm_.rows) + " x " + std::to_string(k_));
  if (z.rows != n_ || z.cols != k_)
    throw Error("z: shape " + std::to_string(z.rows) + " x " + std::to_string(z.cols) + " expected " +
                std::to_string(n_) + " x " + std::to_string(k_));
  Backend& be = *be_;
  GramReport report;
  report.side = dual_ ? "dual" : "primal";
  // GEMMs besides the root: the Gram (unless cached), G^T C (primal range) or G^T W (dual).
  const int rhs_gemms = range_ ? 1 : 0;

  GramKey key{g.data, g.rows, g.cols, g.ld, g.dtype, g.layout, g.device, o.stream, o.version, dual_, o.lambda,
              storage_, o.compute};
  const bool host = g.device == Device::cpu;
  const std::uint64_t print = o.cache && host ? fingerprint(g) : 0;

  GramCache::Impl::Entry* entry = nullptr;
  if (o.cache) {
    GramCache::Impl& c = GramCacheAccess::impl(*o.cache);
    auto it = std::find_if(c.entries.begin(), c.entries.end(), [&](const auto& e) { return e.key == key; });
    if (it != c.entries.end() && host && it->fingerprint != print) {
      report.notes.push_back("g's contents changed under the same version token; the cached entry was dropped");
      c.entries.erase(it);
      it = c.entries.end();
    }
    if (it != c.entries.end()) {
      entry = &*it;
      report.cache = "gram";
    } else {
      report.cache = "miss";
    }
    if (entry) entry->last_use = ++c.clock;
  } else {
    report.cache = "off";
  }

  const int budget = o.max_gemms > 0 ? o.max_gemms : INT_MAX;
  const Mat* gram = entry ? &entry->gram : &gram_;
  if (!entry) {
    detail::solve::move_in(be, "g", g, g_);
    detail::check_input_values(be, "g", g, g_);
    if (dual_)
      be.gemm(Op::N, Op::T, 1.0, g_, g_, 0.0, gram_);
    else
      be.gemm(Op::T, Op::N, 1.0, g_, g_, 0.0, gram_);
    be.symmetrize(gram_);
    // Finite G whose products pass the largest value: say so here, not later as an infinite "a".
    detail::check_finite(be, dual_ ? "g (its Gram G G^T overflows: rescale g)" : "g (its Gram G^T G overflows: rescale g)",
                         gram_);
    report.gemms += 1;
    check_not_singular(be, gram_, o, dual_, dual_ ? n_ : m_, lanczos_);
    if (o.cache) {
      // Keep G and its Gram in the cache's own memory (a miss allocates; hits never do).
      GramCache::Impl& c = GramCacheAccess::impl(*o.cache);
      if (c.entries.size() >= c.max_entries)
        c.entries.erase(std::min_element(c.entries.begin(), c.entries.end(),
                                         [](const auto& x, const auto& y) { return x.last_use < y.last_use; }));
      c.entries.emplace_back();
      entry = &c.entries.back();
      entry->key = key;
      entry->fingerprint = print;
      entry->last_use = ++c.clock;
      entry->backend = make_backend(o.device, storage_, o.compute, o.stream);
      entry->g = entry->backend->allocate(m_, n_, 1);
      entry->gram = entry->backend->allocate(d_, d_, 1);
      be.copy(g_, entry->g);
      be.copy(gram_, entry->gram);
      gram = &entry->gram;
    }
  }
  const Mat& gm = entry ? entry->g : g_;
  detail::solve::move_in(be, "b", b, bm_);
  detail::check_input_values(be, "b", b, bm_);

  // The right-hand side the root applies to: B (plain), G^T C (primal range) or C (dual).
  const Mat* w = &bm_;
  if (range_ && !dual_) {
    be.gemm(Op::T, Op::N, 1.0, gm, bm_, 0.0, w_);
    w = &w_;
  }
  const int overhead = report.gemms + rhs_gemms;
  if (budget != INT_MAX && budget - overhead < 1)
    throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + " leaves no GEMMs for the root after the " +
                std::to_string(overhead) + " this call needs besides it");
  const int root_budget = budget == INT_MAX ? 0 : budget - overhead;

  if (!o.cache) {
    // Nothing is reused: the engine's apply chooses direct or materialised by the shapes.
    be.copy(*w, apply_->rhs());
    RootEngine::RunOverrides ov;
    ov.max_gemms = root_budget;
    report.root = apply_->run(*gram, nullptr, ov);
    report.gemms += report.root.gemms;
    be.copy(apply_->z(), out_);
  } else {
    const RootKey rk{o.p, o.target, o.max_gemms, o.degree, o.schedule_source, o.schedule_file};
    auto it = std::find_if(entry->roots.begin(), entry->roots.end(), [&](const auto& r) { return r.key == rk; });
    if (it == entry->roots.end()) {
      // Materialise: later right-hand sides then cost one GEMM each.
      if (budget != INT_MAX && root_budget < 2)
        throw Error("options.max_gemms = " + std::to_string(o.max_gemms) + " leaves no GEMMs for the root");
      RootEngine::RunOverrides ov;
      ov.max_gemms = budget == INT_MAX ? 0 : root_budget - 1;
      Report rr = root_->run(*gram, nullptr, ov);
      report.gemms += rr.gemms;
      GramCache::Impl::Root root{rk, entry->backend->allocate(d_, d_, 1), std::move(rr)};
      be.copy(root_->result(), root.x);
      entry->roots.push_back(std::move(root));
      it = std::prev(entry->roots.end());
    } else {
      report.cache = "hit";
    }
    report.root = it->report;
    be.gemm(Op::N, Op::N, 1.0, it->x, *w, 0.0, out_);
    report.gemms += 1;
  }
  if (dual_) {
    be.gemm(Op::T, Op::N, 1.0, gm, out_, 0.0, zn_);  // Z = G^T (G G^T + lambda I)^{-1/p} C
    detail::solve::move_out(be, zn_, z);
    detail::check_result_values(be, "z", zn_, z, "A^{-1/p} G^T C", kGramRemedy);
  } else {
    detail::solve::move_out(be, out_, z);
    detail::check_result_values(be, "z", out_, z, range_ ? "A^{-1/p} G^T C" : "A^{-1/p} B", kGramRemedy);
  }
  report.gemms += rhs_gemms;
  if (o.p > 1) report.notes.push_back("p > 1: scalar normalisation only (a diagonal scaling would change the root)");
  if (report.root.certified)
    report.notes.push_back("the root's certificate is for the Gram as formed in " + std::string(to_string(storage_)) +
                           " storage, lambda added; Z adds the rounding of the products applying it");
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace detail

GramPlan::GramPlan(const MatrixDesc& g, const MatrixDesc& b, const GramOptions& options)
    : engine_(std::make_unique<detail::GramEngine>(g, b, options)) {}
GramPlan::~GramPlan() = default;
GramPlan::GramPlan(GramPlan&&) noexcept = default;
GramPlan& GramPlan::operator=(GramPlan&&) noexcept = default;
GramReport GramPlan::execute(const Matrix& g, const Matrix& b, MutableMatrix z) { return engine_->execute(g, b, z); }
const GramOptions& GramPlan::options() const { return engine_->options(); }

GramReport gram_apply(const Matrix& g, const Matrix& b, MutableMatrix z, const GramOptions& o) {
  detail::check_view("g", g, o.device, detail::Batching::single_matrix);
  detail::check_view("b", b, o.device, detail::Batching::single_matrix);
  detail::check_view("z", z, o.device, detail::Batching::single_matrix);
  return GramPlan(describe(g), describe(b), o).execute(g, b, z);
}



}  // namespace pe
