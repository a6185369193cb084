#include "base/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace gort::rt {

spdlog::logger* log() {
  static spdlog::logger* const logger = [] {
    auto l = spdlog::get("gort");
    if (!l) l = spdlog::stderr_logger_mt("gort");
    l->set_pattern("gort: %L %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);
    return l.get();  // spdlog's registry keeps it alive
  }();
  return logger;
}

void set_log_level(std::string_view name) {
  log()->set_level(spdlog::level::from_str(std::string(name)));
}

}  // namespace gort::rt
