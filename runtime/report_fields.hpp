// Every field of the reports, listed once, for each sink that shows them: the JSON of pe::to_json
// (report_json.cpp) and the dicts of the Python package (python/src/module.cpp), so both carry the same
// keys and values. A sink provides
//   field(key, v)   for bool, int, double, const char*, std::string, std::optional<double> (null when
//                   empty), std::vector<double>, std::vector<std::string> and std::vector<Interval>
//                   (a list of [lo, hi] pairs);
//   object(key, fill)          a nested object, fill(sink) writing its fields;
//   objects(key, items, fill)  a list of objects, fill(item, sink) writing each one's fields.
#pragma once

#include "pe/pe.hpp"
#include "pe/solve.hpp"

namespace pe::detail {

template <class Sink>
void report_fields(const Report& r, Sink& s) {
  s.field("status", to_string(r.status));
  s.field("steps", r.steps);
  s.field("gemms", r.gemms);
  s.field("degree", r.degree);
  s.field("verified_eps", r.verified_eps);
  s.field("model_eps", r.model_eps);
  s.field("final_eps", r.final_eps);
  s.field("floor_eps", r.floor_eps);
  s.field("drift_eps", r.drift_eps);
  s.field("estimated_residual", r.estimated_residual);
  s.field("certified", r.certified);
  s.field("target_reached", r.target_reached);
  s.objects("intervals", r.intervals, [](const StepRecord& step, auto& t) {
    t.field("step", step.step);
    t.field("degree", step.degree);
    t.field("precision", step.precision);
    t.field("gemms", step.gemms);
    t.field("interval", step.interval);
    t.field("bucket_l_edge", step.bucket_l_edge);
    t.field("rigorous", step.rigorous);
  });
  s.field("precond", r.precond);
  s.field("scale", r.scale);
  s.field("l0", r.l0);
  s.field("l0_source", r.l0_source);
  s.field("ridge", r.ridge);
  s.field("shift", r.shift);
  s.field("matrix_changed", r.matrix_changed);
  s.field("mode", r.mode);
  s.field("storage", r.storage);
  s.field("backend", r.backend);
  s.field("schedules", r.schedules);
  s.field("fallback", r.fallback);
  s.field("fallback_reason", r.fallback_reason);
  s.field("seconds", r.seconds);
  s.field("verify_seconds", r.verify_seconds);
  s.field("newton_steps", r.newton_steps);
  s.field("newton_gemms", r.newton_gemms);
  s.field("notes", r.notes);
}

template <class Sink>
void report_fields(const SolveReport& r, Sink& s) {
  s.field("status", to_string(r.status));
  s.field("method", r.method);
  s.field("structure", r.structure);
  s.field("gemms", r.gemms);
  s.field("inverse_gemms", r.inverse_gemms);
  s.field("polar_gemms", r.polar_gemms);
  s.field("corrections", r.corrections);
  s.field("residuals", r.residuals);
  s.field("predicted", r.predicted);
  s.field("residual", r.residual);
  s.field("verified_residual", r.verified_residual);
  s.field("certified", r.certified);
  s.field("target_reached", r.target_reached);
  s.field("polar_steps", r.polar_steps);
  s.field("polar_bound", r.polar_bound);
  s.field("polar_certified", r.polar_certified);
  s.object("inverse", [&](auto& t) { report_fields(r.inverse, t); });
  s.field("fallback", r.fallback);
  s.field("fallback_reason", r.fallback_reason);
  s.field("storage", r.storage);
  s.field("backend", r.backend);
  s.field("seconds", r.seconds);
  s.field("notes", r.notes);
}

template <class Sink>
void report_fields(const GramReport& r, Sink& s) {
  s.field("side", r.side);
  s.field("cache", r.cache);
  s.field("gemms", r.gemms);
  s.object("root", [&](auto& t) { report_fields(r.root, t); });
  s.field("seconds", r.seconds);
  s.field("notes", r.notes);
}

}  // namespace pe::detail
