// Fault reports, each in a child process: a guard hit, a touch of a freed
// stack, and an unrelated crash that must reach the previous handler.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "arch/context.hpp"
#include "child.hpp"
#include "stack/fault.hpp"
#include "stack/stack.hpp"

using namespace gort::rt;

// A frame of about 1 KiB per call, so 256 KiB of stack overflows quickly. The
// limit is never reached; it keeps the compiler from calling this infinite.
volatile int recurse_limit = 1 << 30;
__attribute__((noinline)) int gort_test_recurse(int depth) {
  volatile char pad[1000];
  pad[0] = static_cast<char>(depth);
  if (depth == recurse_limit) return 0;
  return gort_test_recurse(depth + 1) + pad[0];
}

namespace {

struct Runner {
  Context main, co;
  StackOwner g;
};

void overflow_entry(void* p) {
  auto* r = static_cast<Runner*>(p);
  gort_test_recurse(0);
  switch_context_final(r->co, r->main);
}

// run_goroutine() runs fn on a fresh default stack owned by goroutine goid,
// telling the fault handler whose stack it is, as the scheduler does.
void run_goroutine(std::uint64_t goid, void (*fn)(void*)) {
  static Runner r;
  r.g.goid = goid;
  r.g.stack = stackalloc(&r.g);
  init_thread_context(r.main);
  make_context(r.co, r.g.stack.lo, r.g.stack.hi, fn, &r);
  setowner(&r.g);
  switch_context(r.main, r.co, &r);
  setowner(nullptr);
}

}  // namespace

TEST_CASE("a guard hit prints Go's overflow report and exits 2") {
  auto r = gort::test::run_in_child([] { run_goroutine(7, overflow_entry); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("runtime: goroutine 7 stack exceeds 262144-byte limit") != std::string::npos);
  CHECK(r.err.find("runtime: sp=0x") != std::string::npos);
  CHECK(r.err.find(" stack=[0x") != std::string::npos);
  CHECK(r.err.find("fatal error: stack overflow") != std::string::npos);
  CHECK(r.err.find("goroutine 7 [running]:") != std::string::npos);
  // The backtrace names the recursing function (symbolized, demangled) and
  // where it is, Go style.
  CHECK(r.err.find("gort_test_recurse(int)\n\t" GORT_SOURCE_DIR "/test/fault_test.cpp:") != std::string::npos);
  CHECK(r.err.find("...additional frames elided...") != std::string::npos);
}

TEST_CASE("a huge frame probes into the guard instead of jumping it") {
  // With -fstack-clash-protection a 300 KiB frame touches every page on the way
  // down, so it faults in the guard and is reported as an overflow.
  auto r = gort::test::run_in_child([] {
    run_goroutine(8, [](void* p) {
      auto* r = static_cast<Runner*>(p);
      volatile char big[300 * 1024];
      big[0] = 1;
      (void)big[0];
      switch_context_final(r->co, r->main);
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: stack overflow") != std::string::npos);
}

TEST_CASE("touching a stack freed under stackfaultonfree reports whose it was") {
  auto r = gort::test::run_in_child([] {
    set_stack_debug(StackDebug{0, true, true, false, false});
    StackOwner g;
    g.goid = 42;
    Stack s = stackalloc(&g);
    stackfree(&g, s);
    volatile char* p = reinterpret_cast<volatile char*>(s.lo + 100);
    (void)*p;
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("unexpected fault address 0x") != std::string::npos);
  CHECK(r.err.find("fatal error: use of freed stack") != std::string::npos);
  CHECK(r.err.find("in the stack of goroutine 42, [0x") != std::string::npos);
  CHECK(r.err.find(") 262144 bytes, freed by stackfree") != std::string::npos);
}

TEST_CASE("any other fault goes to the previous handler") {
  auto r = gort::test::run_in_child([] {
    volatile std::uintptr_t bad = 16;
    *reinterpret_cast<volatile int*>(bad) = 1;
  });
  INFO("child stderr:\n" << r.err);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's handler was installed first; ours passes the fault on to it.
  CHECK(r.err.find("AddressSanitizer: SEGV") != std::string::npos);
#elif defined(__SANITIZE_THREAD__)
  CHECK(r.err.find("ThreadSanitizer: SEGV") != std::string::npos);
#else
  CHECK(r.signal == SIGSEGV);
#endif
  CHECK(r.err.find("fatal error") == std::string::npos);
}
