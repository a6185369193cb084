// doctest main for every suite: the runtime is initialised once, with the
// defaults (GORT_CONF and GORTDEBUG are cleared so the caller's shell cannot
// change what the tests see), except the I/O settings CTest varies: the net,
// fs and http suites run again with GORT_TEST_IO_BACKEND=epoll, and net with
// GORT_TEST_IO_BUFRING=1 (provided-buffer recv) and GORT_TEST_IO_MULTISHOT=1
// (multishot accept). GORT_TEST_BACKSTOP_FATAL=1 turns on sched.backstop_fatal,
// so a lost wake-up kills the suite with the scheduler's state (docs/scheduler.md).
// GORT_TEST_SETTINGS=key=value,... adds settings (GORTDEBUG syntax) for a case
// run in a child (child.hpp run_case_in_child) that needs a start-up setting.
// GORT_TEST_NO_GUARD_INSTALL=1 runs a suite as on a kernel
// without MADV_GUARD_INSTALL (before 6.13, such as Debian 12's 6.1): a seccomp
// filter refuses that madvise before the runtime probes for it, so the
// runtime falls back to mprotect(PROT_NONE) guards, as it would there.
#define DOCTEST_CONFIG_IMPLEMENT
// doctest's own SIGSEGV handler would replace the runtime's fault handler.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#include <doctest/doctest.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "child.hpp"
#include "init.hpp"
#include "mem/sys.hpp"
#include "skip.hpp"

namespace {

// RunCount is a listener that learns how many cases the run selected, so that
// main can tell a run whose every case skipped (skip.hpp) from one that passed.
struct RunCount : doctest::IReporter {
  static inline unsigned cases = 0;
  explicit RunCount(const doctest::ContextOptions&) {}
  // test_run_end() keeps the number of cases that passed the filters.
  void test_run_end(const doctest::TestRunStats& s) override { cases = s.numTestCasesPassingFilters; }
  // The other events are not needed.
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("gort-run-count", 1, RunCount);

// The exit status CTest reads as "skipped" (SKIP_RETURN_CODE, test/CMakeLists.txt).
constexpr int kSkipped = 77;

}  // namespace

int main(int argc, char** argv) {
  unsetenv("GORT_CONF");
  unsetenv("GORTDEBUG");
  if (std::getenv("GORT_TEST_NO_GUARD_INSTALL") != nullptr && !gort::test::refuse_madvise_from(MADV_GUARD_INSTALL)) {
    std::perror("GORT_TEST_NO_GUARD_INSTALL: seccomp filter");
    return 1;
  }
  gort::Options opts;
  if (const char* b = std::getenv("GORT_TEST_IO_BACKEND")) opts.settings.emplace_back("io.backend", b);
  if (std::getenv("GORT_TEST_IO_BUFRING") != nullptr) opts.settings.emplace_back("io.recv_bufring", "true");
  if (std::getenv("GORT_TEST_IO_MULTISHOT") != nullptr) opts.settings.emplace_back("io.multishot_accept", "true");
  if (std::getenv("GORT_TEST_BACKSTOP_FATAL") != nullptr) opts.settings.emplace_back("sched.backstop_fatal", "true");
  if (const char* list = std::getenv("GORT_TEST_SETTINGS")) {
    for (std::string_view rest = list; !rest.empty();) {
      const std::string_view item = rest.substr(0, rest.find(','));
      rest.remove_prefix(std::min(rest.size(), item.size() + 1));
      const std::size_t eq = item.find('=');
      opts.settings.emplace_back(item.substr(0, eq), eq == std::string_view::npos ? "" : item.substr(eq + 1));
    }
  }
  gort::rt::runtime_init(opts);
  const int rc = doctest::Context(argc, argv).run();
  const bool all_skipped = RunCount::cases > 0 && gort::test::skipped_cases() == static_cast<int>(RunCount::cases);
  return rc == 0 && all_skipped ? kSkipped : rc;
}
