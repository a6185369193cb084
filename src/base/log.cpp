#include "base/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace gort::rt {

spdlog::logger* log() {
  // Deliberately leaked and kept out of spdlog's registry: runtime threads (Ms,
  // sysmon) may log while the process runs its static destructors at exit, and
  // the registry's logger would be destroyed under them.
  static spdlog::logger* const logger = [] {
    auto* l = new spdlog::logger("gort", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("gort: %L %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return logger;
}

void set_log_level(std::string_view name) {
  log()->set_level(spdlog::level::from_str(std::string(name)));
}

}  // namespace gort::rt
