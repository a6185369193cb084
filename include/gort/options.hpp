// gort::Options: run-time configuration handed to the runtime at start.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gort {

// Options overrides configuration. Precedence, lowest first: built-in defaults,
// the TOML file (conf_file, else $GORT_CONF), $GORTDEBUG, then settings here.
struct Options {
  // conf_file names a TOML file like conf/gort.conf; empty means $GORT_CONF if set.
  std::string conf_file{};
  // settings are {key, value} pairs with conf-file keys, e.g. {"stack.size", "64KiB"}
  // or {"stack.poison", "true"}; GORTDEBUG's short names (efence, stackpoison...) work too.
  std::vector<std::pair<std::string, std::string>> settings{};
};

}  // namespace gort

#include <chrono>
#include <cstddef>

namespace gort {

// HttpSettings are the conf keys of the example HTTP server (section [http]).
struct HttpSettings {
  std::size_t max_header_bytes = 1 << 20;  // http.max_header_bytes: request line + headers
  std::chrono::milliseconds idle_timeout{60'000};  // http.idle_timeout: keep-alive idle limit
  std::chrono::milliseconds header_timeout{10'000};  // http.header_timeout: whole request head
  std::chrono::milliseconds write_timeout{30'000};   // http.write_timeout: each write of answers
};
// http_settings() returns the [http] settings in force. Precondition: the
// runtime is initialised (inside gort::main).
HttpSettings http_settings();

}  // namespace gort
