// doctest main for every suite: the runtime is initialised once, with the
// defaults (GORT_CONF and GORTDEBUG are cleared so the caller's shell cannot
// change what the tests see).
#define DOCTEST_CONFIG_IMPLEMENT
// doctest's own SIGSEGV handler would replace the runtime's fault handler.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#include <doctest/doctest.h>

#include <cstdlib>

#include "init.hpp"

int main(int argc, char** argv) {
  unsetenv("GORT_CONF");
  unsetenv("GORTDEBUG");
  gort::rt::runtime_init();
  return doctest::Context(argc, argv).run();
}
