// pe::to_json of the reports: report_fields' list written into nlohmann::json.
#include <nlohmann/json.hpp>
#include <utility>

#include "report_fields.hpp"

namespace pe {

namespace detail {

namespace {

// report_fields' sink for nlohmann::json.
struct JsonSink {
  nlohmann::json& out;

  template <class T>
  void field(const char* key, const T& value) {
    out[key] = value;
  }
  void field(const char* key, const std::optional<double>& value) {
    out[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  }
  void field(const char* key, const std::vector<Interval>& intervals) {
    nlohmann::json list = nlohmann::json::array();
    for (const Interval& iv : intervals) list.push_back(nlohmann::json::array({iv.lo, iv.hi}));
    out[key] = std::move(list);
  }
  template <class Fill>
  void object(const char* key, Fill&& fill) {
    nlohmann::json sub = nlohmann::json::object();
    JsonSink sink{sub};
    fill(sink);
    out[key] = std::move(sub);
  }
  template <class Items, class Fill>
  void objects(const char* key, const Items& items, Fill&& fill) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& item : items) {
      nlohmann::json sub = nlohmann::json::object();
      JsonSink sink{sub};
      fill(item, sink);
      list.push_back(std::move(sub));
    }
    out[key] = std::move(list);
  }
};

}  // namespace

template <class R>
std::string json_text(const R& report) {
  nlohmann::json out = nlohmann::json::object();
  JsonSink sink{out};
  report_fields(report, sink);
  return out.dump();
}

}  // namespace detail

std::string to_json(const Report& r) { return detail::json_text(r); }
std::string to_json(const SolveReport& r) { return detail::json_text(r); }
std::string to_json(const GramReport& r) { return detail::json_text(r); }

}  // namespace pe
