// TempConf: a TOML file written for one test case and removed after it.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace gort::test {

// TempConf writes text to a fresh file under /tmp, named by path.
struct TempConf {
  std::string path;
  explicit TempConf(const std::string& text) {
    char name[] = "/tmp/gort-conf-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~TempConf() { std::remove(path.c_str()); }
  TempConf(const TempConf&) = delete;
  TempConf& operator=(const TempConf&) = delete;
};

}  // namespace gort::test
