// Run-time configuration: built-in defaults < TOML file < $GORTDEBUG, $GORTMAXPROCS <
// gort::Options.
//
// Every key is listed, with its default and the reason for it, in conf/gort.conf.
// An unknown key or a bad value is a ConfigError naming the key and where it was
// set ("conf/x.conf:12", "GORTDEBUG", "gort::Options"); nothing is ignored but
// a file's top-level tables that are not the runtime's, which belong to the
// program sharing the file (examples/http_server's [http]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gort/options.hpp"

namespace gort::rt {

// The stack debug modes, named as in Go (stackDebug, stackFromSystem...).
struct StackDebug {
  int level = 0;             // stackdebug 0-4: trace logging of stack operations
  bool fromsystem = false;   // stackfromsystem: every stack is its own mmap
  bool faultonfree = false;  // stackfaultonfree: freed system stacks become no-access
  bool poison = false;       // stackpoison: 0xfd on new stacks, 0xfc on freed ones
  bool nocache = false;      // stacknocache: bypass the per-M caches
  bool operator==(const StackDebug&) const = default;
};

struct Config {
  std::size_t stack_size = 256 * 1024;  // stack.size
  std::size_t stack_guard_pages = 1;    // stack.guard_pages
  std::size_t stack_cache_keep = 16 * 1024;  // stack.cache_keep
  bool stack_copying = false;           // stack.kind: "stable" (false) or "copying"
  std::size_t stack_copying_min = 4 * 1024;  // stack.copying_min
  std::size_t stack_copying_max = std::size_t{1} << 30;  // stack.copying_max
  StackDebug stack_debug;               // stack.debug, stack.fromsystem, ... stack.efence (at start)
  std::string log_level = "info";       // log.level (at start)
  int sched_procs = 0;                  // sched.procs (0: one per CPU); $GORTMAXPROCS
  int sched_spin_us = 50;               // sched.spin_us
  int sched_hog_ms = 10;                // sched.hog_ms
  bool sched_backstop_fatal = false;    // sched.backstop_fatal (at start)
  std::string io_backend = "auto";      // io.backend: auto, uring, epoll
  unsigned io_entries = 256;            // io.entries: SQ entries per P's ring
  bool io_sqpoll = false;               // io.sqpoll
  bool io_coop_taskrun = true;          // io.coop_taskrun
  bool io_recv_bufring = false;         // io.recv_bufring
  bool io_multishot_accept = false;     // io.multishot_accept
  bool operator==(const Config&) const = default;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// load_config() builds the configuration. conf_env, debug_env and maxprocs_env
// are the values of $GORT_CONF, $GORTDEBUG and $GORTMAXPROCS (nullptr when
// unset). Throws ConfigError.
Config load_config(const Options& opts, const char* conf_env, const char* debug_env,
                   const char* maxprocs_env = nullptr);

// apply_debug_settings() applies a GORTDEBUG-style list ("stackpoison=1,efence=1")
// to cfg; where names the source in error messages. Throws ConfigError.
void apply_debug_settings(Config& cfg, std::string_view list, std::string_view where);

}  // namespace gort::rt
