// http::Settings: the example server's own configuration, the [http] table of
// the TOML file it shares with the runtime (--conf FILE or $GORT_CONF).
// conf/http_server.conf lists every key with its default and the reason for it.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace http {

// Settings are the keys of [http]; a zero timeout is no limit (tests only: the
// conf file's ranges start at 1 ms).
struct Settings {
  std::size_t max_header_bytes = 1 << 20;            // http.max_header_bytes: request line + headers
  std::chrono::milliseconds idle_timeout{60'000};    // http.idle_timeout: each wait for input
  std::chrono::milliseconds header_timeout{10'000};  // http.header_timeout: the whole request head
  std::chrono::milliseconds write_timeout{30'000};   // http.write_timeout: each write of answers
};

// SettingsError is a bad [http] table; what() names the key and file:line, as
// the runtime's own configuration errors do.
class SettingsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// load_settings() reads the [http] table of the TOML file at path: the defaults
// where the path is empty, the table missing or a key left out. The file's
// other tables belong to the runtime, which checks them. Throws SettingsError.
Settings load_settings(const std::string& path);

}  // namespace http
