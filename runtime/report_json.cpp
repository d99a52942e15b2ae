#include <nlohmann/json.hpp>

#include "pe/pe.hpp"

namespace pe {

std::string to_json(const Report& r) {
  using nlohmann::json;
  auto interval = [](const Interval& iv) { return json::array({iv.lo, iv.hi}); };
  json steps = json::array();
  for (const StepRecord& s : r.intervals) {
    json ivs = json::array(), rig = json::array();
    for (const auto& iv : s.interval) ivs.push_back(interval(iv));
    for (const auto& iv : s.rigorous) rig.push_back(interval(iv));
    steps.push_back({{"step", s.step}, {"degree", s.degree}, {"precision", s.precision}, {"gemms", s.gemms},
                     {"interval", ivs}, {"bucket_l_edge", s.bucket_l_edge}, {"rigorous", rig}});
  }
  json j = {{"status", to_string(r.status)},
            {"steps", r.steps},
            {"gemms", r.gemms},
            {"degree", r.degree},
            {"verified_eps", r.verified_eps ? json(*r.verified_eps) : json(nullptr)},
            {"model_eps", r.model_eps},
            {"final_eps", r.final_eps},
            {"floor_eps", r.floor_eps},
            {"drift_eps", r.drift_eps},
            {"estimated_residual", r.estimated_residual},
            {"certified", r.certified},
            {"target_reached", r.target_reached},
            {"intervals", steps},
            {"precond", r.precond},
            {"scale", r.scale},
            {"l0", r.l0},
            {"l0_source", r.l0_source},
            {"ridge", r.ridge},
            {"shift", r.shift},
            {"matrix_changed", r.matrix_changed},
            {"mode", r.mode},
            {"storage", r.storage},
            {"backend", r.backend},
            {"schedules", r.schedules},
            {"fallback", r.fallback},
            {"fallback_reason", r.fallback_reason},
            {"seconds", r.seconds},
            {"verify_seconds", r.verify_seconds},
            {"newton_steps", r.newton_steps},
            {"newton_gemms", r.newton_gemms},
            {"notes", r.notes}};
  return j.dump();
}

}  // namespace pe
