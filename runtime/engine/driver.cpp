#include "driver.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "interval.hpp"
#include "pe/detail/format.hpp"

namespace pe::detail {

namespace {

// Scalar slots of the divergence checks: two per step, read once after the last step. The Frobenius norm
// is a sum of squares, which a NaN or an infinity in the residual makes non-finite: it is the finiteness
// check too (a separate count would be a third pass over Y every step).
constexpr int kSlotsPerStep = 2;
enum StepSlot { kTrace = 0, kFrobenius = 1 };
// The last slots, for a renormalisation's trace and the final result's finiteness.
constexpr int kRenormalizeSlot = kSlotsPerStep * 64;
constexpr int kResultNonfiniteSlot = kRenormalizeSlot + 1;

// Divergence checks compare cheap proxies of the normalised residual (its mean eigenvalue and RMS) with
// its tracked interval [lo, hi] (hi ~ 1). Rounding moves them by far less than this absolute slack in
// every storage dtype the tables serve; a diverging iteration moves them by O(1).
constexpr double kCheckSlack = 0.05;

std::vector<double> host_copy(Backend& backend, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols * m.batch));
  backend.download(m, HostMat{out.data(), DType::f64, m.rows, m.cols, std::max<std::int64_t>(1, m.rows), m.batch,
                              m.rows * m.cols, Layout::col_major});
  return out;
}

void scale_members(std::vector<double>& data, std::int64_t per_member, const std::vector<double>& factor) {
  for (std::size_t k = 0; k < factor.size(); ++k)
    for (std::int64_t i = 0; i < per_member; ++i)
      data[k * static_cast<std::size_t>(per_member) + static_cast<std::size_t>(i)] *= factor[k];
}

void collect(std::vector<std::vector<double>> fetched, std::vector<std::vector<double>>& into) {
  if (into.size() < fetched.size()) into.resize(fetched.size());
  for (std::size_t i = 0; i < fetched.size(); ++i)
    if (!fetched[i].empty()) into[i] = std::move(fetched[i]);
}

std::vector<double> inverse(const std::vector<double>& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = 1 / v[i];
  return out;
}

}  // namespace

Driver::Level Driver::make_level(Backend& be) const {
  const std::int64_t n = shape_.n, batch = shape_.batch;
  Level l;
  l.be = &be;
  l.y = be.allocate(n, n, batch);
  l.q = be.allocate(n, n, batch);
  if (shape_.output == StepOutput::direct) {
    l.z_alt = be.allocate(n, shape_.rhs_cols, batch);
    l.w1 = be.allocate(n, shape_.rhs_cols, batch);
    l.w2 = be.allocate(n, shape_.rhs_cols, batch);
  } else {
    l.x = be.allocate(n, n, batch);
    l.x_alt = be.allocate(n, n, batch);
  }
  const int residual_p = shape_.form == ResidualForm::coupled ? shape_.p : 1;
  l.buffers = allocate_step_buffers(be, n, batch, residual_p, shape_.max_degree);
  return l;
}

Driver::Driver(Backend& backend, const DriverShape& shape, Backend* elevated) : shape_(shape) {
  if (shape.n < 1 || shape.batch < 1)
    throw Error("internal: driver shape " + std::to_string(shape.n) + " x " + std::to_string(shape.batch));
  levels_[0] = make_level(backend);
  if (elevated) {
    levels_[1] = make_level(*elevated);
    if (shape.output == StepOutput::direct) levels_[1].z = elevated->allocate(shape.n, shape.rhs_cols, shape.batch);
  }
}

Backend& Driver::form_first_square(int level, const Mat& a_n, int frobenius_slot, int square_frobenius_slot,
                                   int asymmetry_slot, int magnitude_slot) {
  if (level < 0 || level > 1 || !levels_[level].be || shape_.form != ResidualForm::coupled)
    throw Error("internal: form_first_square on level " + std::to_string(level));
  Level& l = levels_[level];
  if (!l.buffers.y2.data) throw Error("internal: form_first_square without a Y^2 buffer (max_degree < 2)");
  // The operands the first step would use: the storage's a_n itself, or its (exact) import one level up.
  const Mat* y0 = &a_n;
  if (level == 1) {
    l.be->import_from(*levels_[0].be, a_n, l.y);
    y0 = &l.y;
  }
  l.be->gemm(Op::N, Op::N, 1.0, *y0, *y0, 0.0, l.buffers.y2);
  l.be->frobenius_norm(*y0, frobenius_slot);
  l.be->frobenius_norm(l.buffers.y2, square_frobenius_slot);
  l.be->max_asymmetry(*y0, asymmetry_slot, magnitude_slot);
  return *l.be;
}

DriverResult Driver::run(const ScheduleSet& tables, const StepPlan& plan, const Mat& a_n, const std::vector<double>& l0,
                         const std::vector<double>& final_factor, const DriverSettings& s, Mat* z) {
  const std::int64_t n = shape_.n, batch = shape_.batch;
  const auto nb = static_cast<std::size_t>(batch);
  const int p = shape_.p;
  const bool direct = shape_.output == StepOutput::direct;
  const bool polar = shape_.form == ResidualForm::recomputed_gram;
  const int total = static_cast<int>(plan.steps.size());
  const int elevated = std::clamp(s.elevated_steps, 0, total);
  if (elevated > 0 && !levels_[1].be) throw Error("internal: elevated steps without an elevated backend");
  Level& base = levels_[0];
  base.z = direct ? *z : Mat{};
  if (total < 1 || total > 64) throw Error("internal: a plan of " + std::to_string(total) + " steps");
  if (direct && z == nullptr) throw Error("internal: direct run without Z");
  if (s.deferred && (s.renormalize || s.on_step)) throw Error("internal: a deferred run cannot renormalise or call a hook");
  if (!s.upper.empty() && (polar || s.upper.size() != nb)) throw Error("internal: an upper end for this run");
  DriverResult result;
  // Y_0^2 prepared by form_first_square.
  const int square_level = s.first_square_level;
  if (square_level >= 0 && (polar || square_level > 1 || !levels_[square_level].be))
    throw Error("internal: a prepared Y_0^2 on level " + std::to_string(square_level));
  bool square_used = false;

  // res_scale: Y_norm = res_scale * Y (stored); x_scale: the result = x_scale * X (stored). A proven upper
  // end t < 1 starts them at 1/t and t^{-1/p}: Y_norm = A_n / t, whose root is t^{1/p} A_n^{-1/p}.
  std::vector<Interval> iv(nb);
  std::vector<double> res_scale(nb, 1.0), x_scale(nb, 1.0);
  for (std::size_t k = 0; k < nb; ++k) {
    iv[k] = {l0[k], 1.0};
    if (s.upper.empty()) continue;
    res_scale[k] = 1 / s.upper[k];
    x_scale[k] = std::pow(s.upper[k], -1.0 / p);
  }
  QCoefficients coeff;
  for (auto& c : coeff) c.assign(nb, 0.0);
  std::vector<double> a_n_host;
  // Scalars fetched so far, by slot (renormalisation and the hook fetch early; the rest come at the end).
  std::vector<std::vector<double>> collected;
  std::vector<PendingCheck> checked;

  // The first `elevated` steps run one precision level up (their own workspace), the rest in the storage.
  Level* cur = elevated > 0 ? &levels_[1] : &base;
  Backend* be = cur->be;
  if (polar) {
    // U_0 = A_n; Y = U_0^T U_0 may already be in y() (settings.polar_residual_ready)
    if (cur == &base) be->copy(a_n, cur->x); else be->import_from(*base.be, a_n, cur->x);
    if (cur != &base && s.polar_residual_ready) be->import_from(*base.be, base.y, cur->y);
  } else {
    if (cur == &base) be->copy(a_n, cur->y); else be->import_from(*base.be, a_n, cur->y);
  }
  if (direct && cur != &base) be->import_from(*base.be, *z, cur->z);
  // Brings the iteration's state down to the storage level (after the last elevated step).
  auto lower = [&] {
    if (cur == &base) return;
    if (!polar) base.be->import_from(*be, cur->y, base.y);
    if (direct)
      base.be->import_from(*be, cur->z, base.z);
    else
      base.be->import_from(*be, cur->x, base.x);
    cur = &base;
    be = base.be;
  };

  // Host copies for the diagnostics hook (slow; only when one is set).
  auto event = [&](int t, const std::vector<Interval>& interval, const std::vector<double>& x_factor) {
    StepEvent ev;
    ev.step = t;
    ev.n = static_cast<int>(n);
    ev.batch = static_cast<int>(batch);
    ev.p = p;
    ev.interval = interval;
    if (a_n_host.empty()) a_n_host = host_copy(*base.be, a_n);
    ev.a_normalized = a_n_host;
    if (!direct) {
      ev.x = host_copy(*be, cur->x);
      scale_members(ev.x, n * n, x_factor);
    }
    return ev;
  };

  for (int t = 0; t < total; ++t) {
    if (t == elevated) lower();
    const DType storage = be->storage();
    const bool first = t == 0, last = t + 1 == total;
    const int degree = plan.steps[static_cast<std::size_t>(t)].degree;
    const OwnedBucketTable* table = tables.find(p, degree);
    if (!table) throw Error("internal: the plan uses degree " + std::to_string(degree) + ", which the tables lack");
    StepRecord record;
    record.step = t;
    record.degree = degree;
    record.precision = to_string(storage);
    if (polar && !(first && s.polar_residual_ready)) {
      be->gemm(Op::T, Op::N, 1.0, cur->x, cur->x, 0.0, cur->y);  // Y = U^T U
      be->symmetrize(cur->y);
      ++result.gemms;
    }
    if (polar && !first) {
      // The check of the previous step: sigma^2 of the true U is x_scale^2 times Y's eigenvalues.
      be->trace(cur->y, kSlotsPerStep * (t - 1) + kTrace);
      be->frobenius_norm(cur->y, kSlotsPerStep * (t - 1) + kFrobenius);
      std::vector<double> s2(nb);
      for (std::size_t k = 0; k < nb; ++k) s2[k] = x_scale[k] * x_scale[k];
      checked.push_back({t - 1, s2, iv});
    }
    std::vector<StepChoice> choice(nb);
    for (std::size_t k = 0; k < nb; ++k) {
      choice[k] = choose_step(*table, storage, iv[k]);
      // q(res_scale * Y): the normalisation folds into the coefficients; on the last step so do the
      // result's scalar factors (X scale, undoing preconditioning), so no extra pass. The polar form
      // carries its scale the same way (sigma(U_true)^2 = x_scale^2 sigma(U)^2).
      const double f = last && !polar ? final_factor[k] * x_scale[k] : 1.0;
      const double ys = polar ? x_scale[k] * x_scale[k] : res_scale[k];
      double power = 1;
      for (int j = 0; j <= degree; ++j) {
        coeff[static_cast<std::size_t>(j)][k] = f * choice[k].coeff[j] * power;
        power *= ys;
      }
      for (int j = degree + 1; j < kMaxCoefficients; ++j) coeff[static_cast<std::size_t>(j)][k] = 0;
      record.bucket_l_edge.push_back(choice[k].entry->l_edge);
      record.interval.push_back(choice[k].image);
    }
    if (direct && last) {
      result.gemms += terminal_apply(*be, cur->y, degree, coeff, cur->z, cur->w1, cur->w2);
    } else {
      const bool square_ready = first && degree >= 2 && square_level == (cur == &base ? 0 : 1);
      square_used = square_used || square_ready;
      result.gemms += form_q(*be, cur->y, degree, coeff, cur->buffers, cur->q, square_ready);
      if (!last && !polar) result.gemms += update_residual(*be, p, cur->q, cur->y, cur->buffers);
      if (direct) {
        be->gemm(Op::N, Op::N, 1.0, cur->q, cur->z, 0.0, cur->z_alt);
        std::swap(cur->z, cur->z_alt);
        ++result.gemms;
      } else if (first && !polar) {
        std::swap(cur->x, cur->q);  // X_0 = I: X_1 = q, no GEMM
      } else {
        be->gemm(Op::N, Op::N, 1.0, cur->x, cur->q, 0.0, cur->x_alt);
        std::swap(cur->x, cur->x_alt);
        ++result.gemms;
      }
    }
    result.steps = t + 1;
    if (first && square_level >= 0 && !square_used) ++result.gemms;  // prepared, then not needed: still a GEMM

    // The model: the image of each member's interval, renormalised to [lo/hi, 1] with 1/hi folded into
    // the residual's scale and hi^{-1/p} into the result's (polar: sigma^2 scales like the residual).
    for (std::size_t k = 0; k < nb; ++k) {
      const Interval img = choice[k].image;
      if (last) {
        result.model_eps = std::max(result.model_eps, interval_bound(img));
        continue;
      }
      res_scale[k] /= img.hi;
      x_scale[k] *= polar ? 1 / std::sqrt(img.hi) : std::pow(img.hi, -1.0 / p);
      iv[k] = normalized(img);
    }
    if (last) {
      if (polar) {
        // Centre [lo, 1] on 1: sigma^2 in [2 lo / (1 + lo), 2 / (1 + lo)], bound (1 - lo) / (1 + lo).
        std::vector<double> centre(nb);
        result.model_eps = 0;
        for (std::size_t k = 0; k < nb; ++k) {
          const Interval img = normalized(choice[k].image);
          x_scale[k] *= std::sqrt(2 / (1 + img.lo)) / std::sqrt(choice[k].image.hi);
          centre[k] = x_scale[k];
          result.model_eps = std::max(result.model_eps, (1 - img.lo) / (1 + img.lo));
        }
        be->scale(centre, cur->x);
      }
      record.gemms = result.gemms;
      result.records.push_back(std::move(record));
      if (s.on_step) {
        StepEvent ev = event(t, result.records.back().interval, polar ? std::vector<double>(nb, 1.0) : inverse(final_factor));
        s.on_step(ev);
      }
      break;
    }
    // The symmetrisation and the cheap checks of the residual just formed in one pass, where no hook can
    // change Y between them (a hook may write Y back).
    const bool symmetrize_now = !polar && s.symmetrize_every > 0 && (t + 1) % s.symmetrize_every == 0;
    const bool measured = symmetrize_now && !s.on_step;
    if (measured)
      be->symmetrize_and_measure(cur->y, kSlotsPerStep * t + kTrace, kSlotsPerStep * t + kFrobenius);
    else if (symmetrize_now)
      be->symmetrize(cur->y);

    if (s.on_step) {
      StepEvent ev = event(t, iv, x_scale);
      if (!polar) {
        ev.y = host_copy(*be, cur->y);
        scale_members(ev.y, n * n, res_scale);
      }
      s.on_step(ev);
      if (ev.write_back_y && !polar) {
        scale_members(ev.y, n * n, inverse(res_scale));
        be->upload(HostMat{ev.y.data(), DType::f64, n, n, n, batch, n * n, Layout::col_major}, cur->y);
      }
    }

    // Cheap checks of the residual just formed; the polar form checks U^T U at the next step's start.
    if (!polar && !measured) {
      be->trace(cur->y, kSlotsPerStep * t + kTrace);
      be->frobenius_norm(cur->y, kSlotsPerStep * t + kFrobenius);
    }
    if (s.renormalize && !polar) {
      // Re-centre on the trace where guard G3 certifies the bucket images above 1 (hi / mean <= 1 + eta).
      // This needs the trace now: one fetch per step (documented as such in Options).
      be->trace(cur->y, kRenormalizeSlot);
      collect(be->fetch_scalars(), collected);
      const OwnedBucketTable* next = tables.find(p, plan.steps[static_cast<std::size_t>(t + 1)].degree);
      for (std::size_t k = 0; k < nb; ++k) {
        const double mean = collected[kRenormalizeSlot][k] * res_scale[k] / static_cast<double>(n);
        if (next && std::isfinite(mean) && mean > iv[k].lo && mean < iv[k].hi && iv[k].hi / mean <= 1 + next->eta) {
          res_scale[k] /= mean;
          x_scale[k] *= std::pow(mean, -1.0 / p);
          iv[k] = {iv[k].lo / mean, iv[k].hi / mean};
        }
      }
    } else if (s.on_step) {
      collect(be->fetch_scalars(), collected);
    }
    record.interval = iv;
    record.gemms = result.gemms;
    result.records.push_back(std::move(record));
    if (!polar) checked.push_back({t, res_scale, iv});
  }

  lower();
  if (direct) *z = base.z;
  be->count_nonfinite(direct ? *z : base.x, kResultNonfiniteSlot);
  pending_ = {std::move(checked), total};
  // (A deferred run fetched nothing before: it has neither renormalisation nor a hook.)
  if (s.deferred) return result;  // the checks are read by complete(), after the caller posted and waited
  // The one read (per level): every step's checks and the result's finiteness.
  if (levels_[1].be) collect(levels_[1].be->fetch_scalars(), collected);
  collect(be->fetch_scalars(), collected);
  evaluate_checks(collected, result);
  return result;
}

void Driver::complete(DriverResult& result) {
  std::vector<std::vector<double>> collected;
  if (levels_[1].be) collect(levels_[1].be->posted_scalars(), collected);
  collect(levels_[0].be->posted_scalars(), collected);
  evaluate_checks(collected, result);
}

void Driver::evaluate_checks(const std::vector<std::vector<double>>& collected, DriverResult& result) const {
  const auto nb = static_cast<std::size_t>(shape_.batch);
  const double n = static_cast<double>(shape_.n);
  const bool polar = shape_.form == ResidualForm::recomputed_gram;
  const int total = pending_.total;
  result.diverged = false;
  result.nonfinite = false;
  result.reason.clear();
  result.estimated_residual = 0;
  const auto slot = [&](int index) -> const std::vector<double>& {
    if (static_cast<std::size_t>(index) >= collected.size() || collected[static_cast<std::size_t>(index)].size() != nb)
      throw Error("internal: the driver's check slot " + std::to_string(index) + " was not read");
    return collected[static_cast<std::size_t>(index)];
  };
  for (const PendingCheck& c : pending_.checks) {
    const auto& trace = slot(kSlotsPerStep * c.step + kTrace);
    const auto& frob = slot(kSlotsPerStep * c.step + kFrobenius);
    for (std::size_t k = 0; k < nb && !result.diverged; ++k) {
      const double mean = trace[k] * c.res_scale[k] / n;
      const double rms = frob[k] * c.res_scale[k] / std::sqrt(n);
      const Interval v = c.interval[k];
      const std::string where = "after step " + std::to_string(c.step) + " (batch member " + std::to_string(k) + ")";
      if (!std::isfinite(mean) || !std::isfinite(rms)) {
        result.diverged = result.nonfinite = true;
        result.reason = "non-finite values in the residual " + where;
      } else if (mean > v.hi + kCheckSlack || rms > v.hi + kCheckSlack || mean < v.lo - kCheckSlack || mean <= 0) {
        result.diverged = true;
        result.reason = "the residual's trace/norm left the tracked interval [" + format_number(v.lo) + ", " +
                        format_number(v.hi) + "] " + where + " (mean eigenvalue " + format_number(mean) + ", rms " +
                        format_number(rms) + ")";
      }
      if (c.step + 2 == total || (polar && c.step + 1 == total)) result.estimated_residual = std::max(result.estimated_residual, std::abs(1 - mean));
    }
  }
  const auto& bad = slot(kResultNonfiniteSlot);
  result.result_nonfinite = false;
  for (std::size_t k = 0; k < bad.size(); ++k)
    if (bad[k] > 0) {
      result.result_nonfinite = result.nonfinite = true;
      if (result.diverged) continue;
      result.diverged = true;
      result.reason = "non-finite values in the result (batch member " + std::to_string(k) + ")";
    }
}

}  // namespace pe::detail
