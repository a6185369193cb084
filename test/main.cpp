// doctest main for every suite: the runtime is initialised once, with the
// defaults (GORT_CONF and GORTDEBUG are cleared so the caller's shell cannot
// change what the tests see), except the I/O backend: CTest runs the net and
// fs suites twice, the second time with GORT_TEST_IO_BACKEND=epoll.
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
  gort::rt::runtime_init(opts);
  return doctest::Context(argc, argv).run();
}
