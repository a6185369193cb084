// doctest main for every suite: the runtime is initialised once, with the
// defaults (GORT_CONF and GORTDEBUG are cleared so the caller's shell cannot
// change what the tests see), except the I/O settings CTest varies: the net,
// fs and http suites run again with GORT_TEST_IO_BACKEND=epoll, and net with
// GORT_TEST_IO_BUFRING=1 (provided-buffer recv) and GORT_TEST_IO_MULTISHOT=1
// (multishot accept).
#define DOCTEST_CONFIG_IMPLEMENT
// doctest's own SIGSEGV handler would replace the runtime's fault handler.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#include <doctest/doctest.h>

#include <cstdlib>

#include "init.hpp"

int main(int argc, char** argv) {
  unsetenv("GORT_CONF");
  unsetenv("GORTDEBUG");
  gort::Options opts;
  if (const char* b = std::getenv("GORT_TEST_IO_BACKEND")) opts.settings.emplace_back("io.backend", b);
  if (std::getenv("GORT_TEST_IO_BUFRING") != nullptr) opts.settings.emplace_back("io.recv_bufring", "true");
  if (std::getenv("GORT_TEST_IO_MULTISHOT") != nullptr) opts.settings.emplace_back("io.multishot_accept", "true");
  gort::rt::runtime_init(opts);
  return doctest::Context(argc, argv).run();
}
