#include "init.hpp"

#include <atomic>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "gort/gort.hpp"

#include "base/log.hpp"
#include "base/print.hpp"
#include "base/symtab.hpp"
#include "mem/sys.hpp"
#include "sched/traceback.hpp"
#include "stack/fault.hpp"
#include "stack/stack.hpp"

namespace gort::rt {

namespace {
// Written once, by runtime_init before the runtime starts a thread, and never
// after: goroutines on every M read it through runtime_config() without a
// lock. What set_debug switches lives where it is used, in atomics.
Config config;
std::atomic<bool> initialised{false};
}  // namespace

Config load_config_or_exit(const Options& opts) {
  try {
    return load_config(opts, std::getenv("GORT_CONF"), std::getenv("GORTDEBUG"), std::getenv("GORTMAXPROCS"));
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
  symtab_init();
  fault_install();
  minit_signalstack();
  sigquit_install();
}

const Config& runtime_config() { return config; }

bool runtime_initialized() { return initialised.load(); }

}  // namespace gort::rt

namespace gort {

StackStats stack_stats() { return rt::stack_stats(); }

void set_debug(std::string_view settings) {
  static std::mutex mu;  // one switch at a time, so none is lost
  std::lock_guard lk(mu);
  // The settings apply to the loaded configuration with the live debug modes
  // (the stack layer's atomics) in place of the start-up ones, and an empty
  // log level that only a log.level entry fills. The result is not stored:
  // only the modes and the logger's level switch, in atomics of their own.
  rt::Config now = rt::runtime_config();
  now.stack_debug = rt::stack_debug();
  now.log_level.clear();
  rt::Config c = now;
  try {
    rt::apply_debug_settings(c, settings, "gort::set_debug");
  } catch (const rt::ConfigError& e) {
    throw std::invalid_argument(e.what());
  }
  rt::Config rest = c;
  rest.stack_debug = now.stack_debug;
  rest.log_level = now.log_level;
  if (!(rest == now)) {
    throw std::invalid_argument(
        "gort::set_debug: only the stack debug modes and log.level switch at run time; stack.size, "
        "stack.guard_pages, stack.cache_keep and the other keys are fixed at start-up");
  }
  if (!c.log_level.empty()) rt::set_log_level(c.log_level);
  rt::set_stack_debug(c.stack_debug);
}

}  // namespace gort
