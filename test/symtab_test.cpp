// Every frame named: functions the dynamic symbol table does not have (a static
// function, a lambda, a function in an anonymous namespace) appear by name and
// file:line in the overflow report, the panic report and a SIGQUIT dump, each
// in a child process; and symtab_lookup() itself.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "base/symtab.hpp"
#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/traceback.hpp"

using namespace std::chrono_literals;

namespace {

// What the bottom of the recursion does.
enum class Bottom { overflow, panic, sleep };
volatile Bottom bottom = Bottom::overflow;
// The depth where the recursion stops (never, for an overflow: the bound keeps
// the compiler from treating the recursion as infinite).
volatile int stop_at = 1 << 30;

int gort_test_anon_step(int depth);

}  // namespace

// A cycle of three kinds of function the dynamic symbol table cannot name: a
// static function, a lambda and an anonymous-namespace function, calling each
// other (not as tail calls), each with a frame of about 1 KiB, so that any 64
// frames of the recursion hold all three. noipa: no clones, no inlining.
__attribute__((noipa)) static int gort_test_static_step(int depth);

const auto gort_test_lambda_step = [](int depth) __attribute__((noipa)) {
  volatile char pad[1000];
  pad[0] = static_cast<char>(depth);
  return gort_test_anon_step(depth + 1) + pad[0];
};

// Its first line, for the lookup test.
constexpr unsigned kStaticLine = __LINE__ + 1;
__attribute__((noipa)) static int gort_test_static_step(int depth) {
  volatile char pad[1000];
  pad[0] = static_cast<char>(depth);
  if (depth >= stop_at) {
    if (bottom == Bottom::panic) throw std::runtime_error("bottom");
    gort::sleep(1h);
  }
  return gort_test_lambda_step(depth + 1) + pad[0];
}

namespace {

__attribute__((noipa)) int gort_test_anon_step(int depth) {
  volatile char pad[1000];
  pad[0] = static_cast<char>(depth);
  return gort_test_static_step(depth + 1) + pad[0];
}

// The three functions as the demangler names them (the lambda by the variable
// it initialises).
constexpr const char* kStatic = "gort_test_static_step(int)";
constexpr const char* kLambda = "gort_test_lambda_step::{lambda(int)#1}::operator()(int) const";
constexpr const char* kAnon = "(anonymous namespace)::gort_test_anon_step(int)";

// frame_ok() is whether report holds a frame of func located in this file, Go
// style: "func\n\t/path/test/symtab_test.cpp:LINE +0xOFF pc=0x...". (Some of
// its frames may be located in a function inlined into it.)
bool frame_ok(const std::string& report, const std::string& func) {
  const std::string head = "\n" + func + "\n\t/", file = "/test/symtab_test.cpp:";
  for (auto at = report.find(head); at != std::string::npos; at = report.find(head, at + 1)) {
    const auto loc = at + head.size() - 1;
    const std::string line = report.substr(loc, report.find('\n', loc) - loc);
    const auto num = line.find(file);
    if (num == std::string::npos) continue;
    const char digit = line[num + file.size()];
    if (digit >= '1' && digit <= '9' && line.find(" +0x", num) != std::string::npos &&
        line.find(" pc=0x", num) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// all_named() checks the three functions' frames in report.
void all_named(const std::string& report) {
  CHECK(frame_ok(report, kStatic));
  CHECK(frame_ok(report, kLambda));
  CHECK(frame_ok(report, kAnon));
}

}  // namespace

TEST_CASE("the overflow report names static and lambda and anonymous-namespace frames with file and line") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      gort::go([] { gort_test_static_step(0); });
      for (;;) gort::yield();
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: stack overflow") != std::string::npos);
  all_named(r.err);
}

TEST_CASE("the panic report names static and lambda and anonymous-namespace frames with file and line") {
  auto r = gort::test::run_case_in_child([] {
    bottom = Bottom::panic;
    stop_at = 6;
    gort::main([] { gort_test_static_step(0); });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("panic: bottom\n") != std::string::npos);
  all_named(r.err);
  // The runtime's own frames too, down to the goroutine's first.
  CHECK(r.err.find("\ngort::rt::run_goroutine(gort::rt::G*)\n\t/") != std::string::npos);
  CHECK(r.err.find("goentry(void*)\n\t/") != std::string::npos);
}

TEST_CASE("a SIGQUIT dump names static and lambda and anonymous-namespace frames with file and line") {
  auto r = gort::test::run_case_in_child([] {
    bottom = Bottom::sleep;
    stop_at = 6;
    gort::main([] {
      gort::go([] { gort_test_static_step(0); });
      while (gort::stats().waiting < 1) gort::yield();
      std::raise(SIGQUIT);
      while (gort::rt::sigquit_dumps() < 1) gort::yield();
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("SIGQUIT: goroutine dump\n") != std::string::npos);
  all_named(r.err);
}

TEST_CASE("symtab_lookup gives a static function's symbol, file and line") {
  const auto pc = reinterpret_cast<std::uintptr_t>(&gort_test_static_step);
  gort::rt::SymFrame f;
  REQUIRE(gort::rt::symtab_lookup(pc, f));
  CHECK(f.module != nullptr);
  CHECK(f.func_pc == pc);
  REQUIRE(f.func != nullptr);
  CHECK(std::string(f.func) == "_ZL21gort_test_static_stepi");
  REQUIRE(f.file != nullptr);
  CHECK(std::string(f.dir != nullptr ? f.dir : "") + "/" + f.file == GORT_SOURCE_DIR "/test/symtab_test.cpp");
  CHECK(f.line == kStaticLine);
}

TEST_CASE("symtab_lookup finds no object for an address outside every one") {
  gort::rt::SymFrame f;
  CHECK_FALSE(gort::rt::symtab_lookup(16, f));
}
