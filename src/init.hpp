// Runtime start-up: wires configuration, logging and the memory layers together.
#pragma once

#include "base/config.hpp"
#include "gort/options.hpp"

namespace gort::rt {

// runtime_init() loads the configuration (defaults < $GORT_CONF or opts.conf_file <
// $GORTDEBUG < opts.settings), sets up logging, probes the guard mechanism,
// initialises the stack layer and installs the fault handler and the calling
// thread's signal stack. A configuration error prints its message and exits with
// status 2. Calling it again is a fatal error.
void runtime_init(const Options& opts = {});

// load_config_or_exit() is load_config() with $GORT_CONF and $GORTDEBUG; on a
// ConfigError it prints the message and exits with status 2.
Config load_config_or_exit(const Options& opts);

// runtime_initialized() is true once runtime_init() has run.
bool runtime_initialized();

// runtime_config() is the configuration runtime_init() loaded. It never changes
// after, so any thread may read it; its stack_debug and log_level are the
// start-up values, which gort::set_debug switches in stack_debug() and the logger.
const Config& runtime_config();

}  // namespace gort::rt
