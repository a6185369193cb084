// Panics, goexit and GORT_DEFER: the panic report (in child processes), the
// throw-site record, deferred calls on every way out of a scope, goexit in
// goroutine 1, and ports of Go's defer/panic stack tests (runtime/stack_test.go).
#include <doctest/doctest.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/runtime.hpp"
#include "sched/traceback.hpp"
#include "stack/fault.hpp"

using gort::rt::G;

// Never inlined, so that each has a frame of its own in the report.
__attribute__((noinline)) void gort_test_panic_thrower(const char* what) { throw std::runtime_error(what); }

__attribute__((noinline)) void gort_test_panic_caller(const char* what) {
  gort_test_panic_thrower(what);
  asm volatile("");  // not a tail call: this frame stays in the backtrace
}

__attribute__((noinline)) int gort_test_panic_at(const std::vector<int>& v) {
  return v.at(v.size() + 2);  // libstdc++ throws std::out_of_range
}

namespace {

// wait_until() yields until pred() holds.
template <class F>
void wait_until(F pred) {
  while (!pred()) gort::yield();
}

// defer_chain() is the calling goroutine's GORT_DEFER records, innermost first.
std::vector<const gort::detail::DeferRecord*> defer_chain() {
  std::vector<const gort::detail::DeferRecord*> out;
  for (auto* d = static_cast<const gort::detail::DeferRecord*>(gort::rt::getgp()->defers); d != nullptr;
       d = d->link) {
    out.push_back(d);
  }
  return out;
}

// chain_ok() checks the calling goroutine's records: n of them, all on its
// stack; with by_frame (records made in different frames, outer callers higher
// up the stack), innermost first. Records of one frame may lie in any order.
bool chain_ok(std::size_t n, bool by_frame = false) {
  const G* gp = gort::rt::getgp();
  auto chain = defer_chain();
  if (chain.size() != n) return false;
  std::uintptr_t prev = 0;
  for (auto* d : chain) {
    auto a = reinterpret_cast<std::uintptr_t>(d);
    if (a < gp->stack.lo || a >= gp->stack.hi || (by_frame && a <= prev)) return false;
    prev = a;
  }
  return true;
}

// park_for_waker() parks the calling goroutine and publishes it in slot, for
// another thread to ready.
void park_for_waker(std::atomic<G*>* slot) {
  gort::rt::gopark(
      [](G* gp, void* arg) {
        static_cast<std::atomic<G*>*>(arg)->store(gp);
        return true;
      },
      slot, gort::rt::WaitReason::sync_cond_wait);
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

// ---- The panic report ----

TEST_CASE("a panic prints what() and the throw site and exits 2") {
  auto r = gort::test::run_case_in_child([] { gort::main([] { gort_test_panic_caller("boom"); }); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  // Go's report: the value, a blank line, the goroutine, its frames from the
  // throw, innermost first.
  CHECK(contains(r.err, "panic: boom\n\ngoroutine 1 [running]:\ngort_test_panic_thrower(char const*)\n"));
  CHECK(contains(r.err, "\ngort_test_panic_caller(char const*)\n\t" GORT_SOURCE_DIR "/test/panic_test.cpp:"));
  CHECK(contains(r.err, "gort::rt::run_goroutine("));
}

TEST_CASE("a panic thrown inside libstdc++ shows the library frame and its caller") {
  // std::vector::at throws from libstdc++.so: its call to __cxa_throw reaches
  // ours through its PLT.
  auto r = gort::test::run_case_in_child([] { gort::main([] { gort_test_panic_at({1, 2, 3}); }); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "panic: vector::_M_range_check"));
  // The first frame is in libstdc++ (unnamed: its throw is in a .cold part of
  // std::__throw_out_of_range_fmt, outside the symbol's bounds), then our caller.
  const auto frames = r.err.find("[running]:\n");
  REQUIRE(frames != std::string::npos);
  const auto lib = r.err.find("libstdc++.so", frames);
  const auto caller = r.err.find("\ngort_test_panic_at(", frames);
  CHECK(lib < caller);
  CHECK(caller != std::string::npos);
}

TEST_CASE("a panic in another goroutine names it and a thrown string is its value") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      gort::go({.name = "worker"}, [] { throw "no more work"; });
      for (;;) gort::yield();
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "panic: no more work\n\ngoroutine 2 [running] \"worker\":\n"));
}

TEST_CASE("a panic with a value of another type prints the type") {
  auto r = gort::test::run_case_in_child([] { gort::main([] { throw 42; }); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "panic: (int)\n\ngoroutine 1 [running]:\n"));
}

TEST_CASE("an exception not thrown on the goroutine shows where it left it") {
  // make_exception_ptr makes the exception without a throw, so nothing recorded it.
  auto r = gort::test::run_case_in_child([] {
    gort::main([] { std::rethrow_exception(std::make_exception_ptr(std::runtime_error("from elsewhere"))); });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "panic: from elsewhere\nruntime: where it was thrown is unknown"));
  CHECK(contains(r.err, "\ngoroutine 1 [running]:\n"));
  CHECK(contains(r.err, "gort_ctx_trampoline\n"));  // the walk reached the goroutine's first frame
}

TEST_CASE("a throw on a goroutine is recorded; one on a plain thread is not") {
  bool caught = false;
  gort::rt::ThrowRecord rec;
  const G* self = nullptr;
  gort::main([&] {
    self = gort::rt::getgp();
    try {
      gort_test_panic_caller("caught");
    } catch (const std::runtime_error&) {
      caught = true;
      rec = gort::rt::lastthrow();  // no park since the throw: still this thread's
    }
  });
  CHECK(caught);
  CHECK(rec.g == self);
  REQUIRE(rec.n >= 2);
  Dl_info info{};
  REQUIRE(dladdr(reinterpret_cast<void*>(rec.pcs[0] - 1), &info) != 0);
  CHECK(std::string(info.dli_sname) == "_Z23gort_test_panic_throwerPKc");

  int n = -1;
  std::thread([&] {
    try {
      gort_test_panic_thrower("plain");
    } catch (const std::runtime_error& e) {
      n = std::string(e.what()) == "plain" ? gort::rt::lastthrow().n : -2;
    }
  }).join();
  CHECK(n == 0);
}

// ---- GORT_DEFER ----

namespace {

struct Noisy {
  std::vector<std::string>* log;
  const char* name;
  ~Noisy() { log->push_back(name); }
};

}  // namespace

TEST_CASE("GORT_DEFER runs at scope exit, last in first out, with destructors") {
  std::vector<std::string> log;
  auto body = [&] {
    {
      GORT_DEFER(log.push_back("defer 1"));
      Noisy n{&log, "destructor"};
      GORT_DEFER(log.push_back("defer 2"); log.push_back("defer 2 again"));
      log.push_back("body");
    }
    log.push_back("after");
  };
  const std::vector<std::string> want{"body", "defer 2", "defer 2 again", "destructor", "defer 1", "after"};
  SUBCASE("on a goroutine") { gort::main(body); }
  SUBCASE("on a plain thread") { body(); }
  CHECK(log == want);
}

TEST_CASE("GORT_DEFER records are linked from the G, innermost first, and unlinked at scope exit") {
  // chain_ok(n) at each point, in the order the points run.
  std::vector<int> linked;
  auto at = [&](std::size_t n) { linked.push_back(chain_ok(n) ? static_cast<int>(n) : -1); };
  gort::main([&] {
    at(0);
    {
      GORT_DEFER(at(0));  // the outermost: unlinked before it runs
      {
        GORT_DEFER(
            at(1);  // unlinked; the outer one is still there
            {
              GORT_DEFER((void)0);
              at(2);  // a record made by a deferred call links in its place
            });
        at(2);
      }
      at(1);
    }
    at(0);
  });
  CHECK(linked == std::vector<int>{0, 2, 1, 2, 1, 0, 0});
}

TEST_CASE("GORT_DEFER runs while an exception unwinds and the catch sees its effects") {
  std::vector<std::string> log;
  bool unlinked = false;
  gort::main([&] {
    try {
      GORT_DEFER(log.push_back("defer outer"));
      Noisy n{&log, "destructor"};
      [&] {
        GORT_DEFER(log.push_back("defer inner"));
        gort_test_panic_thrower("unwind");
      }();
      log.push_back("not reached");
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("caught ") + e.what());
      unlinked = chain_ok(0);
    }
  });
  CHECK(log == std::vector<std::string>{"defer inner", "destructor", "defer outer", "caught unwind"});
  CHECK(unlinked);
}

TEST_CASE("an exception escaping deferred statements is a fatal panic") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] { GORT_DEFER(gort_test_panic_thrower("in defer")); });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err,
                 "panic: in defer [thrown by a deferred call]\n\ngoroutine 1 [running]:\ngort_test_panic_thrower("));
}

TEST_CASE("a goroutine may park in a catch block and in a destructor run by unwinding") {
  // The C++ runtime's exception state is per thread; the goroutine resumes on
  // whichever thread takes it (a plain thread readies it, so it goes to the
  // global queue). `throw;` must still find its exception, and
  // std::uncaught_exceptions count the ones in flight on this goroutine.
  struct ParkInDestructor {
    std::atomic<G*>* slot;
    int* uncaught;
    ~ParkInDestructor() {
      park_for_waker(slot);
      *uncaught = std::uncaught_exceptions();
    }
  };
  std::atomic<G*> slot{nullptr};
  std::atomic<bool> stop{false};
  int rethrown = 0, in_destructor = 0, after = 0;
  std::thread waker([&] {
    while (!stop.load()) {
      if (G* gp = slot.exchange(nullptr)) gort::rt::goready(gp);
      std::this_thread::yield();
    }
  });
  gort::main([&] {
    for (int i = 0; i < 200; i++) {
      try {
        try {
          ParkInDestructor p{&slot, &in_destructor};
          gort_test_panic_thrower("first");
        } catch (const std::runtime_error&) {
          park_for_waker(&slot);
          throw;
        }
      } catch (const std::runtime_error& e) {
        rethrown += std::string(e.what()) == "first";
        if (in_destructor != 1) break;
      }
      after += std::uncaught_exceptions() == 0;
    }
  });
  stop = true;
  waker.join();
  CHECK(rethrown == 200);
  CHECK(in_destructor == 1);
  CHECK(after == 200);
}

TEST_CASE("an exception escaping deferred statements on a plain thread is a fatal panic too") {
  auto r = gort::test::run_case_in_child([] { GORT_DEFER(gort_test_panic_thrower("off goroutines")); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err == "panic: off goroutines [thrown by a deferred call]\n");
}

// ---- goexit ----

TEST_CASE("goexit runs destructors and deferred calls, ends the goroutine, and others go on") {
  std::vector<std::string> log;
  std::atomic<bool> done{false};
  std::atomic<int> others{0};
  gort::main([&] {
    gort::go([&] {
      GORT_DEFER(log.push_back("defer outer"); done = true);
      Noisy n{&log, "destructor"};
      [&] {
        GORT_DEFER(log.push_back("defer inner"));
        try {
          gort::goexit();
        } catch (...) {
          log.push_back("catch (...) rethrows");
          throw;
        }
      }();
      log.push_back("not reached");
    });
    for (int i = 0; i < 10; i++) gort::go([&] { others++; });
    wait_until([&] { return done.load() && others.load() == 10; });
  });
  CHECK(log ==
        std::vector<std::string>{"catch (...) rethrows", "defer inner", "destructor", "defer outer"});
}

TEST_CASE("goexit swallowed by catch (...) is a fatal error") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      try {
        gort::goexit();
      } catch (...) {
      }
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "fatal error: gort::goexit: the unwinding was caught and not rethrown"));
}

TEST_CASE("goexit in a deferred call is a fatal error") {
  auto r = gort::test::run_case_in_child([] { gort::main([] { GORT_DEFER(gort::goexit()); }); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "fatal error: gort::goexit called in a deferred call"));
}

TEST_CASE("goexit in a destructor run by goexit is a fatal error") {
  struct ExitAgain {
    ~ExitAgain() noexcept(false) { gort::goexit(); }
  };
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      ExitAgain e;
      gort::goexit();
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "fatal error: gort::goexit called while the goroutine is exiting"));
}

TEST_CASE("goexit off a goroutine is a fatal error") {
  auto r = gort::test::run_case_in_child([] { gort::goexit(); });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "fatal error: gort::goexit called off a goroutine"));
}

TEST_CASE("goexit in goroutine 1 lets the others go on and then dies of no goroutines") {
  // As in Go: gort::main does not return; the other goroutines, which wait for
  // goroutine 1 to have exited, go on; once the last exits the runtime reports
  // the deadlock.
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      for (int i = 0; i < 3; i++) {
        gort::go([] {
          wait_until([] { return gort::rt::sched.main_goexited.load(); });
          std::fputs("other goroutine done\n", stderr);
        });
      }
      GORT_DEFER(std::fputs("main's deferred call ran\n", stderr));
      gort::goexit();
    });
    std::fputs("gort::main returned\n", stderr);
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  const auto deferred = r.err.find("main's deferred call ran\n");
  const auto fatal = r.err.find("fatal error: no goroutines (main called runtime.Goexit) - deadlock!\n");
  REQUIRE(fatal != std::string::npos);
  CHECK(deferred < fatal);
  int others = 0;
  for (auto p = r.err.find("other goroutine done\n"); p != std::string::npos && p < fatal;
       p = r.err.find("other goroutine done\n", p + 1)) {
    others++;
  }
  CHECK(others == 3);
  CHECK(!contains(r.err, "gort::main returned"));
}

// ---- Go's runtime/stack_test.go ----
//
// In Go these check that copystack adjusts the pointers held by defer and panic
// records and by the deferred calls' arguments when a stack moves under them.
// Each runs twice: on a stable goroutine, where they check that the deferred
// calls run, in order, with correct values after deep recursion and
// unwinding, and that the record chain stays well formed; and on a
// relocatable one, whose stack moves under the pending records, where they
// test the adjustment. Pointers into the frame are taken when the defer is
// made (Go evaluates a deferred call's arguments then), so they are exactly the
// words a stack move must adjust.

namespace {

// Go's set and setBig: deferred calls writing through a pointer into the frame
// that deferred them; setBig with 4 KiB of arguments.
struct BigBuf {
  char b[4 * 1024];
};

__attribute__((noinline)) void set(int* p, int x) { *p = x; }

__attribute__((noinline)) void set_big(int* p, int x, BigBuf b) {
  *p = x;
  asm volatile("" : : "r"(&b) : "memory");
}

// Go's growStackIter: a recursion where every frame hands a pointer to a local
// to the next.
__attribute__((noinline)) bool grow_stack_iter(int* p, int n) {
  *p = n + 1;
  if (n == 0) return true;
  int x = 0;
  const bool ok = grow_stack_iter(&x, n - 1);
  return ok && x == n;
}

// Go's growStack: 1024 recursions of increasing depth.
bool grow_stack() {
  for (int i = 0; i < 1 << 10; i++) {
    int x = 0;
    if (!grow_stack_iter(&x, i) || x != i + 1) return false;
  }
  return true;
}

// Go's useStackAndCall: about n KiB of stack, then f().
__attribute__((noinline)) void use_stack_and_call(int n, const std::function<void()>& f) {
  if (n == 0) {
    f();
    return;
  }
  volatile char b[1024];  // makes the frame about 1 KiB
  b[99] = 0;
  use_stack_and_call(n - 1 + b[99], f);
  asm volatile("");  // not a tail call
}

// Go's testDeferPtrsGoexit: goexit at depth i with a deferred setBig pending.
void deferptrs_goexit(std::atomic<int>* c, int i) {
  int y = 0;
  GORT_DEFER(c->store(y));  // Go: c <- y
  int* py = &y;
  GORT_DEFER(set_big(py, 42, BigBuf{}));
  use_stack_and_call(i, [] { gort::goexit(); });
}

// testDeferPtrsPanic as Go meant it (its TestDeferPtrsPanic runs the goexit
// helper by mistake): a throw at depth i with a deferred setBig pending,
// caught (recovered) in the same goroutine, which then reports y; -1 if the
// exception was not caught there.
void deferptrs_panic(std::atomic<int>* c, int i) {
  int y = 0;
  bool recovered = false;
  try {
    int* py = &y;
    GORT_DEFER(set_big(py, 42, BigBuf{}));
    use_stack_and_call(i, [] { throw 1; });
  } catch (int) {
    recovered = true;
  }
  c->store(recovered ? y : -1);
}

constexpr int kNone = -1000;  // nothing reported yet

// run_trials() runs trial(c, i) for i in [0, 100), each in a fresh goroutine
// started with opts (so an earlier trial's stack use does not affect a later
// one, as in Go), and returns the first i whose goroutine did not report 42,
// or -1.
int run_trials(void (*trial)(std::atomic<int>*, int), const gort::GoOptions& opts) {
  int bad = -1;
  gort::main([&] {
    for (int i = 0; i < 100 && bad < 0; i++) {
      std::atomic<int> c{kNone};
      gort::go(opts, [&c, i, trial] { trial(&c, i); });
      wait_until([&] { return c.load() != kNone; });
      if (c.load() != 42) bad = i;
    }
  });
  return bad;
}

}  // namespace

// The two kinds the ports run on: stable (the default) and relocatable, whose
// stack starts at one page and moves as the recursion grows it.
const gort::GoOptions kStable{}, kRelocatable{.relocatable = true};

// deferptrs() is Go's TestDeferPtrs on a goroutine started with opts: a
// deferred set(&y, 42) made before growStack's half a million calls (which
// grow and move a relocatable stack) must still write the y of its frame,
// which the earlier deferred call then reads.
void deferptrs(const gort::GoOptions& opts, int& seen, bool& grew) {
  gort::main([&] {
    std::atomic<bool> done{false};
    gort::go(opts, [&] {
      GORT_DEFER(done = true);
      int y = 0;
      GORT_DEFER(seen = y);  // Go: the check that y == 42, run last
      int* py = &y;
      GORT_DEFER(set(py, 42));
      grew = grow_stack();
    });
    wait_until([&] { return done.load(); });
  });
}

TEST_CASE("Go's TestDeferPtrs: deferred calls see the frame's values after deep recursion") {
  for (const gort::GoOptions* opts : {&kStable, &kRelocatable}) {
    INFO("relocatable " << opts->relocatable.has_value());
    int seen = 0;
    bool grew = false;
    deferptrs(*opts, seen, grew);
    CHECK(grew);
    CHECK(seen == 42);
  }
}

TEST_CASE("Go's TestDeferPtrsGoexit: goexit at depths 0..99 KiB runs a deferred call with a 4 KiB argument") {
  // In Go the deferred call runs at the bottom of the stack, where its 4 KiB of
  // arguments may make the stack grow; here unwinding runs it in its own frame.
  // Either way it must write y through the pointer taken when it was deferred.
  CHECK(run_trials(deferptrs_goexit, kStable) == -1);
  CHECK(run_trials(deferptrs_goexit, kRelocatable) == -1);
}

TEST_CASE("Go's TestDeferPtrsPanic: a throw at depths 0..99 KiB, caught in the same goroutine") {
  // The same through panic and recover: a different path (the exception is
  // caught), which Go's own test never took.
  CHECK(run_trials(deferptrs_panic, kStable) == -1);
  CHECK(run_trials(deferptrs_panic, kRelocatable) == -1);
}

// panic_use_stack() is Go's TestPanicUseStack on a goroutine started with opts.
struct PanicUseStack {
  std::vector<int> caught;
  std::vector<int> pending;  // what the pending records saw, in the order they ran
  bool chain3 = false;
  bool chain0 = false;
  int frames = 0;
};

void panic_use_stack(const gort::GoOptions& opts, PanicUseStack& out) {
  // Three nested levels: a deferred call run by the unwinding of exception 1
  // recurses 100 KiB deep, throws 2 there, whose unwinding runs a deferred call
  // that recurses 200 KiB deeper and throws 3. Each level keeps one more record
  // linked (pending) while its inner ones run, and walks the stack (Go: Callers)
  // at the deepest point. A stable goroutine gets 1 MiB of stack; a
  // relocatable one grows to it, moving while records are pending.
  auto& [caught, pending, chain3, chain0, frames] = out;
  std::atomic<bool> done{false};
  gort::main([&] {
    gort::go(opts, [&] {
      try {
        int v1 = 1;
        int* p1 = &v1;
        GORT_DEFER(pending.push_back(*p1));
        GORT_DEFER(use_stack_and_call(100, [&] {
          try {
            int v2 = 2;
            int* p2 = &v2;
            GORT_DEFER(pending.push_back(*p2));
            GORT_DEFER(use_stack_and_call(200, [&] {
              try {
                int v3 = 3;
                int* p3 = &v3;
                GORT_DEFER(pending.push_back(*p3));
                GORT_DEFER(
                    // The deepest point: three pending records, innermost first.
                    chain3 = chain_ok(3, true);
                    const G* gp = gort::rt::getgp();
                    std::uintptr_t pcs[1024];
                    frames = gort::rt::callers(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)),
                                               gp->stack.lo, gp->stack.hi, pcs, 1024));
                throw 3;
              } catch (int v) {
                caught.push_back(v);
              }
            }));
            throw 2;
          } catch (int v) {
            caught.push_back(v);
          }
        }));
        throw 1;
      } catch (int v) {
        caught.push_back(v);
      }
      chain0 = chain_ok(0);
      done = true;
    });
    wait_until([&] { return done.load(); });
  });
}

TEST_CASE("Go's TestPanicUseStack: exceptions thrown and caught inside deferred calls run by unwinding") {
  for (const gort::GoOptions& opts : {gort::GoOptions{.stack_size = 1 << 20}, kRelocatable}) {
    INFO("relocatable " << opts.relocatable.has_value());
    PanicUseStack r;
    panic_use_stack(opts, r);
    CHECK(r.caught == std::vector<int>{3, 2, 1});
    CHECK(r.pending == std::vector<int>{3, 2, 1});
    CHECK(r.chain3);
    CHECK(r.chain0);
    CHECK(r.frames > 300);  // the walk went through all 300 KiB of frames
  }
}
