#include "init.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "base/log.hpp"
#include "base/print.hpp"
#include "mem/sys.hpp"
#include "stack/fault.hpp"
#include "stack/stack.hpp"

namespace gort::rt {

namespace {
Config config;
std::atomic<bool> initialised{false};
}  // namespace

Config load_config_or_exit(const Options& opts) {
  try {
    return load_config(opts, std::getenv("GORT_CONF"), std::getenv("GORTDEBUG"));
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    exit_fatal();
  }
}

void runtime_init(const Options& opts) {
  if (initialised.exchange(true)) fatal("runtime_init called twice");
  config = load_config_or_exit(opts);
  set_log_level(config.log_level);
  SysGuardProbe();
  stackinit(config);
  fault_install();
  minit_signalstack();
}

const Config& runtime_config() { return config; }

}  // namespace gort::rt
