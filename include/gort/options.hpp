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

