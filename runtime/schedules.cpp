#include "schedules.hpp"

#include <map>
#include <memory>
#include <mutex>

#include "pe/types.hpp"

#if __has_include("pe_schedules.hpp")
#include "pe_schedules.hpp"
#define PE_HAVE_COMPILED_SCHEDULES 1
#else
#define PE_HAVE_COMPILED_SCHEDULES 0
#endif

namespace pe::detail {

const ScheduleSet& compiled_schedules() {
#if PE_HAVE_COMPILED_SCHEDULES
  static_assert(pe::generated::kSchemaVersion == kScheduleSchemaVersion,
                "schedules/pe_schedules.hpp was generated for another schema version; regenerate it with pe-synth");
  static const ScheduleSet set = schedule_set_from(pe::generated::kScheduleSet, "compiled");
  return set;
#else
  throw Error("pe was built without compiled-in schedule tables (schedules/pe_schedules.hpp is missing); "
              "load a JSON table with schedule_source = json_file");
#endif
}

const ScheduleSet& embedded_schedules(const CompiledScheduleSet& embedded) {
  static std::mutex mutex;
  static std::map<const CompiledScheduleSet*, std::unique_ptr<const ScheduleSet>> validated;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = validated[&embedded];
  if (!slot) slot = std::make_unique<const ScheduleSet>(schedule_set_from(embedded, "embedded"));
  return *slot;
}

const ScheduleSet& schedule_set_for(ScheduleSource source, const std::string& file, const CompiledScheduleSet* embedded,
                                    std::optional<ScheduleSet>& loaded) {
  switch (source) {
    case ScheduleSource::compiled: return compiled_schedules();
    case ScheduleSource::embedded:
      if (embedded == nullptr)
        throw Error("options.embedded_schedules is null but options.schedule_source is embedded; pass the set "
                    "pe_add_schedules compiled in (e.g. &pe::<name>::kScheduleSet)");
      return embedded_schedules(*embedded);
    case ScheduleSource::json_file:
      if (file.empty()) throw Error("options.schedule_file is empty but options.schedule_source is json_file");
      loaded = load_schedules_json(file);
      return *loaded;
  }
  throw Error("options.schedule_source has an unknown value");
}

}  // namespace pe::detail
