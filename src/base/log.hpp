// The runtime's spdlog logger, named "gort", writing to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace gort::rt {

// log() returns the "gort" logger, creating it at level info on first use.
spdlog::logger* log();

// set_log_level() sets the logger's level from a conf name (trace ... off).
// Precondition: name was validated by the config loader.
void set_log_level(std::string_view name);

}  // namespace gort::rt
