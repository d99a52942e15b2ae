#include "iteration.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "coupled.hpp"
#include "interval.hpp"
#include "pe/detail/format.hpp"

namespace pe::detail {

namespace {

enum Slot { kNonfinite = 0, kTrace = 1, kGershLo = 2, kGershHi = 3, kFrobenius = 4 };

// Divergence checks compare cheap proxies of the normalised residual with its tracked interval
// [lo, hi] (hi ~ 1). Rounding moves them by far less than this absolute slack in fp32 and fp64 alike;
// a diverging iteration moves them by O(1).
constexpr double kCheckSlack = 0.05;

int step_cost(int p, int degree, int steps_done, int r, bool direct) {
  return direct ? direct_gemms(p, degree, r) : materialize_gemms(p, degree, steps_done, r);
}

// Steps r (>= 0) to run from `start`: enough to reach the target, never over the step or GEMM budget.
int plan_remaining(const OwnedBucketTable& table, DType storage, const std::vector<Interval>& current, double target,
                   int p, int steps_done, int gemms_done, const IterationSettings& s, double* bound = nullptr) {
  const int step_room = s.max_steps - steps_done;
  if (step_room <= 0) return 0;
  int r = 1;
  double worst = 0;
  for (const Interval& iv : current) {
    double b = 0;
    r = std::max(r, steps_to_target(table, storage, iv, target, step_room, &b));
    worst = std::max(worst, b);
  }
  while (r > 0 && gemms_done + step_cost(p, table.degree, steps_done, r, s.direct) > s.max_gemms) --r;
  if (bound) *bound = worst;
  return r;
}

std::vector<double> host_copy(Backend& backend, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  backend.download(m, HostMat{out.data(), DType::f64, m.rows, m.cols, std::max<std::int64_t>(1, m.rows), m.batch,
                              m.rows * m.cols, Layout::col_major});
  return out;
}

void scale_members(std::vector<double>& data, std::int64_t per_member, const std::vector<double>& factor) {
  for (std::size_t k = 0; k < factor.size(); ++k)
    for (std::int64_t i = 0; i < per_member; ++i) data[k * static_cast<std::size_t>(per_member) + static_cast<std::size_t>(i)] *= factor[k];
}

}  // namespace

int choose_degree(const ScheduleSet& schedules, int p, DType storage, double worst_l0, double target, int max_steps,
                  int max_gemms, bool direct) {
  struct Option {
    int degree;
    int steps;
    int gemms;
    double bound;
  };
  std::vector<Option> options;
  for (int degree : {1, 2}) {
    const OwnedBucketTable* table = schedules.find(p, degree);
    if (!table) continue;
    IterationSettings s;
    s.max_steps = max_steps;
    s.max_gemms = max_gemms;
    s.direct = direct;
    double bound = 0;
    const int r = plan_remaining(*table, storage, {Interval{worst_l0, 1.0}}, target, p, 0, 0, s, &bound);
    if (r == 0) continue;
    double reached = 0;
    steps_to_target(*table, storage, {worst_l0, 1.0}, 0.0, r, &reached);
    options.push_back({degree, r, step_cost(p, degree, 0, r, direct), reached});
  }
  if (options.empty()) {
    bool any = schedules.find(p, 1) || schedules.find(p, 2);
    if (!any)
      throw Error("the schedule tables (" + schedules.origin + ") have no bucket table for p = " + std::to_string(p));
    throw Error("the budget (max_gemms = " + std::to_string(max_gemms) + ", max_steps = " + std::to_string(max_steps) +
                ") does not allow a single step for p = " + std::to_string(p));
  }
  auto key = [&](const Option& o) {
    const bool reached = target > 0 && o.bound <= target;
    return std::make_tuple(!reached, reached ? double(o.gemms) : o.bound, o.gemms);
  };
  return std::min_element(options.begin(), options.end(), [&](const Option& a, const Option& b) {
           return key(a) < key(b);
         })->degree;
}

IterationResult run_coupled(Backend& backend, const Mat& a_n, const OwnedBucketTable& table,
                            const std::vector<double>& l0, const std::vector<bool>& rigorous,
                            const std::vector<double>& final_factor, const IterationSettings& s, Mat& x, Mat& z) {
  const std::int64_t n = a_n.rows, batch = a_n.batch;
  const auto nb = static_cast<std::size_t>(batch);
  const int p = s.p, degree = table.degree;
  const DType storage = backend.storage();
  IterationResult result;
  result.degree = degree;

  Mat y = backend.allocate(n, n, batch), q = backend.allocate(n, n, batch);
  Mat x_alt, w1, w2, z_alt;
  if (s.direct) {
    z_alt = backend.allocate(n, z.cols, batch);
    w1 = backend.allocate(n, z.cols, batch);
    if (degree >= 2) w2 = backend.allocate(n, z.cols, batch);
  } else {
    x_alt = backend.allocate(n, n, batch);
  }
  StepBuffers buffers = allocate_step_buffers(backend, n, batch, p, degree);
  backend.copy(a_n, y);

  std::vector<Interval> iv(nb);
  std::vector<double> res_scale(nb, 1.0), x_scale(nb, 1.0);  // Y_norm = res_scale * Y, X_true = x_scale * X
  std::vector<bool> certified(rigorous);
  for (std::size_t k = 0; k < nb; ++k) iv[k] = {l0[k], 1.0};
  QCoefficients coef;
  for (auto& cj : coef) cj.resize(nb);
  std::vector<double> a_n_host;

  for (int t = 0;; ++t) {
    const int r = plan_remaining(table, storage, iv, s.target, p, t, result.gemms, s);
    if (r == 0) break;
    const bool last = r == 1;
    // The last step may switch to the cheaper table when that alone reaches the target for every member.
    const OwnedBucketTable* step_table = &table;
    if (last && s.final_table && s.target > 0 &&
        std::all_of(iv.begin(), iv.end(), [&](const Interval& v) {
          return interval_bound(choose_step(*s.final_table, storage, v).image) <= s.target;
        }))
      step_table = s.final_table;
    const int step_degree = step_table->degree;
    StepRecord record;
    record.step = t;
    std::vector<StepChoice> choice(nb);
    for (std::size_t k = 0; k < nb; ++k) {
      choice[k] = choose_step(*step_table, storage, iv[k]);
      // q(res_scale * Y): fold the normalisation into the coefficients; on the last step also the
      // result's scalar factors (X scale, undoing preconditioning), so no extra pass.
      const double f = last ? final_factor[k] * x_scale[k] : 1.0;
      double power = f;
      for (std::size_t j = 0; j < coef.size(); ++j, power *= res_scale[k]) coef[j][k] = power * choice[k].coeff[j];
      record.bucket_l_edge.push_back(choice[k].entry->l_edge);
      record.interval.push_back(choice[k].image);
    }
    if (s.direct && last) {
      result.gemms += terminal_apply(backend, y, step_degree, coef, z, w1, w2);
    } else {
      result.gemms += form_q(backend, y, step_degree, coef, buffers, q);
      if (s.direct) {
        backend.gemm(Op::N, Op::N, 1.0, q, z, 0.0, z_alt);
        std::swap(z, z_alt);
        ++result.gemms;
      }
      if (!last) result.gemms += update_residual(backend, p, q, y, buffers);
      if (!s.direct) {
        if (t == 0) {
          std::swap(x, q);  // X_0 = I: X_1 = q, no GEMM
        } else {
          backend.gemm(Op::N, Op::N, 1.0, x, q, 0.0, x_alt);
          std::swap(x, x_alt);
          ++result.gemms;
        }
      }
    }
    result.steps = t + 1;

    if (last) {
      for (std::size_t k = 0; k < nb; ++k) result.final_eps = std::max(result.final_eps, interval_bound(choice[k].image));
      result.at_floor = s.target > 0 && result.final_eps > s.target &&
                        std::all_of(choice.begin(), choice.end(), [&](const StepChoice& c) {
                          const Interval next = choose_step(*step_table, storage, normalized(c.image)).image;
                          return !(interval_bound(next) < interval_bound(c.image));
                        });
      record.gemms = result.gemms;
      result.records.push_back(record);
      if (s.on_step) {
        StepEvent ev;
        ev.step = t;
        ev.n = static_cast<int>(n);
        ev.batch = static_cast<int>(batch);
        ev.p = p;
        ev.interval = record.interval;
        ev.a_normalized = a_n_host.empty() ? host_copy(backend, a_n) : a_n_host;
        if (!s.direct) {
          ev.x = host_copy(backend, x);
          std::vector<double> inv(nb);
          for (std::size_t k = 0; k < nb; ++k) inv[k] = 1 / final_factor[k];
          scale_members(ev.x, n * n, inv);
        }
        s.on_step(ev);
      }
      break;
    }

    // Normalise to [lo/hi, 1], folding 1/hi into the residual's scale and hi^{-1/p} into X's.
    for (std::size_t k = 0; k < nb; ++k) {
      const Interval img = choice[k].image;
      res_scale[k] /= img.hi;
      x_scale[k] *= std::pow(img.hi, -1.0 / p);
      iv[k] = normalized(img);
    }
    if (s.symmetrize_every > 0 && (t + 1) % s.symmetrize_every == 0) backend.symmetrize(y);

    if (s.on_step) {
      StepEvent ev;
      ev.step = t;
      ev.n = static_cast<int>(n);
      ev.batch = static_cast<int>(batch);
      ev.p = p;
      ev.interval = iv;
      if (a_n_host.empty()) a_n_host = host_copy(backend, a_n);
      ev.a_normalized = a_n_host;
      if (!s.direct) {
        ev.x = host_copy(backend, x);
        scale_members(ev.x, n * n, x_scale);
      }
      ev.y = host_copy(backend, y);
      scale_members(ev.y, n * n, res_scale);
      s.on_step(ev);
      if (ev.write_back_y) {
        std::vector<double> inv(nb);
        for (std::size_t k = 0; k < nb; ++k) inv[k] = 1 / res_scale[k];
        scale_members(ev.y, n * n, inv);
        backend.upload(HostMat{ev.y.data(), DType::f64, n, n, n, batch, n * n, Layout::col_major}, y);
      }
    }

    // Cheap checks, one fetch: non-finite entries, trace and RMS of the spectrum, Gershgorin enclosure.
    backend.count_nonfinite(y, kNonfinite);
    backend.trace(y, kTrace);
    backend.gershgorin(y, kGershLo, kGershHi);
    backend.frobenius_norm(y, kFrobenius);
    const auto slots = backend.fetch_scalars();
    double step_residual = 0;  // the Gershgorin bound of ||Y - I|| of this residual, worst member
    for (std::size_t k = 0; k < nb; ++k) {
      const double sc = res_scale[k];
      const double mean = slots[kTrace][k] * sc / static_cast<double>(n);
      const double rms = slots[kFrobenius][k] * sc / std::sqrt(static_cast<double>(n));
      const Interval rig{slots[kGershLo][k] * sc, slots[kGershHi][k] * sc};
      record.rigorous.push_back(rig);
      const std::string where = "after step " + std::to_string(t) + " (batch member " + std::to_string(k) + ")";
      if (slots[kNonfinite][k] > 0 || !std::isfinite(mean) || !std::isfinite(rms)) {
        result.diverged = true;
        result.reason = "non-finite values in the residual " + where;
      } else if (mean > iv[k].hi + kCheckSlack || rms > iv[k].hi + kCheckSlack ||
                 (certified[k] && mean < iv[k].lo - kCheckSlack) || mean <= 0) {
        result.diverged = true;
        result.reason = "the residual's trace/norm left the tracked interval [" + format_number(iv[k].lo) + ", " +
                        format_number(iv[k].hi) + "] " + where + " (mean eigenvalue " + format_number(mean) +
                        ", rms " + format_number(rms) + ")";
      } else if (!certified[k] && mean < iv[k].lo) {
        // The starting estimate was too optimistic: lower the tracked bound (still not certified).
        iv[k].lo = std::max(table.entries.front().l_edge, mean * 0.01);
      }
      if (result.diverged) break;
      // A rigorous enclosure certifies (or tightens) the tracked interval.
      if (rig.lo > 0 && (!certified[k] || rig.lo / rig.hi > iv[k].lo / iv[k].hi)) {
        res_scale[k] /= rig.hi;
        x_scale[k] *= std::pow(rig.hi, -1.0 / p);
        iv[k] = normalized(rig);
        certified[k] = true;
      }
      if (s.renormalize && mean > 0 && mean < iv[k].hi && iv[k].hi / mean <= 1 + table.eta) {
        // Re-centre on the trace; guard G3 certifies the bucket's image up to 1 + eta.
        res_scale[k] /= mean;
        x_scale[k] *= std::pow(mean, -1.0 / p);
        iv[k] = {iv[k].lo / mean, iv[k].hi / mean};
      }
      step_residual = std::max(step_residual, interval_bound(rig));
    }
    result.estimated_residual = step_residual;
    record.interval = iv;
    record.gemms = result.gemms;
    result.records.push_back(record);
    if (result.diverged) return result;
  }
  result.certified = std::all_of(certified.begin(), certified.end(), [](bool v) { return v; });
  result.target_reached = s.target > 0 && result.final_eps <= s.target;
  return result;
}

}  // namespace pe::detail
