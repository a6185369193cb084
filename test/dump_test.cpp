// Goroutine dumps (SIGQUIT in a child process, gort::dump_goroutines),
// gort::stats() and the scheduler's backstops (sched.backstop_fatal).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/runq.hpp"
#include "sched/runtime.hpp"
#include "sched/traceback.hpp"

using namespace std::chrono_literals;
using gort::rt::G;

// Never inlined, and calling without a tail call, so that backtraces show
// their frames.
__attribute__((noinline)) void gort_test_dump_sleeper() {
  gort::sleep(1h);
  asm volatile("");
}

__attribute__((noinline)) void gort_test_dump_parked(std::atomic<G*>* slot, gort::rt::WaitReason reason) {
  gort::rt::gopark(
      [](G* gp, void* arg) {
        static_cast<std::atomic<G*>*>(arg)->store(gp);
        return true;
      },
      slot, reason);
  asm volatile("");  // not a tail call: this frame stays in the backtrace
}

namespace {

template <class F>
void wait_until(F pred) {
  while (!pred()) gort::yield();
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// Parked is a goroutine parked with a wait reason until release(). Its G is
// published by gopark's unlock function, which runs once it is off its stack:
// from then on it is parked for sure.
struct Parked {
  std::atomic<G*> g{nullptr};
  std::atomic<bool> done{false};

  // start() runs a goroutine named name that parks with reason, and waits until
  // it is parked. Precondition: on a goroutine.
  std::uint64_t start(const char* name, gort::rt::WaitReason reason) {
    gort::go({.name = name}, [this, reason] {
      gort_test_dump_parked(&g, reason);
      done = true;
    });
    wait_until([&] { return g.load() != nullptr; });
    return g.load()->goid;
  }
  // release() readies it and waits until it has run to its end.
  void release() {
    gort::rt::goready(g.load());
    wait_until([&] { return done.load(); });
  }
};

std::string read_all(FILE* f) {
  std::rewind(f);
  std::string s;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  return s;
}

// block_of() is the dump's paragraph of goroutine id (header to blank line).
std::string block_of(const std::string& dump, std::uint64_t id) {
  const std::string head = "goroutine " + std::to_string(id) + " [";
  std::size_t at = dump.rfind(head, 0) == 0 ? 0 : dump.find("\n" + head);
  if (at == std::string::npos) return {};
  if (at != 0) at++;
  return dump.substr(at, dump.find("\n\n", at) - at);
}

}  // namespace

TEST_CASE("dump_goroutines prints parked goroutines: header, wait reason, name, stack, frames") {
  FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  std::uint64_t me = 0, a = 0, b = 0;
  gort::main([&] {
    Parked pa, pb;
    a = pa.start("parked-a", gort::rt::WaitReason::sync_cond_wait);
    b = pb.start("parked-b", gort::rt::WaitReason::chan_receive);
    me = gort::goid();
    gort::dump_goroutines(f);
    pa.release();
    pb.release();
  });
  const std::string d = read_all(f);
  std::fclose(f);
  INFO("dump:\n" << d);
  // The caller first, walked in place.
  CHECK(d.rfind("goroutine " + std::to_string(me) + " [running]:\nstack=[0x", 0) == 0);
  const std::string ba = block_of(d, a), bb = block_of(d, b);
  CHECK(ba.rfind("goroutine " + std::to_string(a) + " [sync.Cond.Wait] \"parked-a\":\nstack=[0x", 0) == 0);
  CHECK(bb.rfind("goroutine " + std::to_string(b) + " [chan receive] \"parked-b\":\nstack=[0x", 0) == 0);
  // Named, for GCC 12's false -Wrestrict (net.cpp, Addr::to_string).
  const std::string stack_bytes = std::to_string(gort::rt::stack_default_size());
  CHECK(contains(ba, " " + stack_bytes + " bytes, "));
  CHECK(contains(ba, " used\n"));
  // (gopark's own frame is gone: it tail-calls the switch.)
  CHECK(contains(ba, "\ngort_test_dump_parked(std::atomic<gort::rt::G*>*, gort::rt::WaitReason)\n"));
  CHECK(contains(ba, "\ngort::rt::run_goroutine("));
  CHECK(contains(bb, "\ngort_test_dump_parked("));
}

TEST_CASE("dump_goroutines from a plain thread to a FILE without a descriptor") {
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  REQUIRE(f != nullptr);
  std::uint64_t me = 0, a = 0;
  gort::main([&] {
    Parked pa;
    a = pa.start("parked-plain", gort::rt::WaitReason::sync_cond_wait);
    me = gort::goid();
    gort::syscall([&] { std::thread([&] { gort::dump_goroutines(f); }).join(); });
    pa.release();
  });
  std::fclose(f);
  const std::string d(buf, len);
  std::free(buf);
  INFO("dump:\n" << d);
  // No caller goroutine: ours is in a syscall, on another thread.
  CHECK(block_of(d, me).rfind("goroutine " + std::to_string(me) + " [syscall]:\nstack=[0x", 0) == 0);
  CHECK(contains(block_of(d, me), "\n(running on another thread)"));
  CHECK(block_of(d, a).rfind("goroutine " + std::to_string(a) + " [sync.Cond.Wait] \"parked-plain\":\n", 0) == 0);
  CHECK(contains(block_of(d, a), "\ngort_test_dump_parked("));
}

TEST_CASE("SIGQUIT prints every goroutine to stderr and the process goes on") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      // Three sleepers that never wake before the process ends.
      for (int i = 1; i <= 3; i++) {
        gort::go({.name = i == 1 ? "sleeper-1" : i == 2 ? "sleeper-2" : "sleeper-3"}, gort_test_dump_sleeper);
      }
      wait_until([] { return gort::stats().waiting >= 3; });
      std::raise(SIGQUIT);
      wait_until([] { return gort::rt::sigquit_dumps() == 1; });
      std::fputs("went on after SIGQUIT\n", stderr);
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(contains(r.err, "SIGQUIT: goroutine dump\n\n"));
  // Goroutine 1 runs gort::main's function; 2..4 are the sleepers.
  CHECK(contains(r.err, "\ngoroutine 2 [sleep] \"sleeper-1\":\nstack=[0x"));
  CHECK(contains(r.err, "\ngoroutine 3 [sleep] \"sleeper-2\":\nstack=[0x"));
  CHECK(contains(r.err, "\ngoroutine 4 [sleep] \"sleeper-3\":\nstack=[0x"));
  CHECK(contains(r.err, "\ngort_test_dump_sleeper()\n"));
  CHECK(contains(r.err, "goroutine 1 ["));
  const auto went_on = r.err.find("went on after SIGQUIT\n");
  CHECK(went_on != std::string::npos);
  CHECK(went_on > r.err.find("goroutine 4 ["));
}

TEST_CASE("stats counts goroutines by state, processors and events") {
  gort::Stats before{}, parked{}, after{};
  gort::main([&] {
    before = gort::stats();
    Parked p[3];
    for (auto& x : p) x.start("counted", gort::rt::WaitReason::sync_cond_wait);
    parked = gort::stats();
    for (auto& x : p) x.release();
    // An exited goroutine stops counting once it is off its stack.
    wait_until([&] { return gort::stats().goroutines <= parked.goroutines - 3; });
    after = gort::stats();
  });
  CHECK(parked.waiting >= 3);
  CHECK(parked.running >= 1);  // the caller
  CHECK(parked.goroutines >= 4);
  CHECK(parked.spawns >= before.spawns + 3);
  CHECK(parked.parks >= before.parks + 3);
  CHECK(after.waiting <= parked.waiting - 3);
  CHECK(after.spawns == parked.spawns);
  CHECK(parked.ps == gort::rt::sched.procs);
  CHECK(parked.ps >= 1);
  CHECK(parked.idle_ps < parked.ps);  // the caller holds one
  CHECK(parked.ms >= 1);
  CHECK(parked.stacks.cache.count >= 4);  // the caller's and the parked ones' default stacks
  CHECK(parked.stacks.stacks_inuse >= parked.stacks.cache.bytes);
}

TEST_CASE("stats counts no rescues in a run of spawns and sleeps and channels") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      // Every hand-off here is an ordinary one: a rescue would be a lost wake-up.
      gort::Chan<int> ch(0);
      for (int i = 0; i < 100; i++) {
        gort::go([&ch, i] {
          if (i % 10 == 0) gort::sleep(1ms);
          ch.send(i);
        });
      }
      for (int i = 0; i < 100; i++) (void)ch.recv();
      gort::sleep(5ms);
      const gort::Stats s = gort::stats();
      std::fprintf(stderr, "kickidle_rescues=%llu lockpoll_rescues=%llu\n",
                   static_cast<unsigned long long>(s.kickidle_rescues),
                   static_cast<unsigned long long>(s.lockpoll_rescues));
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(contains(r.err, "kickidle_rescues=0 lockpoll_rescues=0\n"));
}

TEST_CASE("sched.backstop_fatal: a lost wake-up is fatal and prints the scheduler state") {
  gort::test::ScopedEnv fatal_on("GORT_TEST_BACKSTOP_FATAL", "1");
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      // The victim parks again each time it runs, republishing its G.
      static std::atomic<G*> victim{nullptr};
      gort::go({.name = "lost-wakeup"}, [] {
        for (;;) gort_test_dump_parked(&victim, gort::rt::WaitReason::sync_cond_wait);
      });
      // A plain thread readies the victim as ready() does but drops its wakep:
      // queued globally while every P is idle and no M spins, only sysmon's
      // kickidle can run it. An M still in its last look before parking may
      // take it instead; then the victim parks again and the thread retries.
      std::thread([] {
        for (;;) {
          G* gp = victim.exchange(nullptr);
          if (gp == nullptr) {
            sched_yield();
            continue;
          }
          for (gort::Stats s = gort::stats(); s.idle_ps != s.ps || s.spinning_ms != 0; s = gort::stats()) sched_yield();
          gp->status.store(gort::rt::Gstatus::runnable, std::memory_order_release);
          gort::rt::globrunqput(gp);
        }
      }).detach();
      std::atomic<G*> never{nullptr};
      gort_test_dump_parked(&never, gort::rt::WaitReason::sync_cond_wait);  // the process ends in fatal
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "backstop: kickidle: goroutines waited on the global queue with every P idle"));
  CHECK(contains(r.err, "SCHED "));
  // Every P idle: as many as the child had (the parent never started its scheduler).
  const auto at = r.err.find("gomaxprocs=");
  REQUIRE(at != std::string::npos);
  const std::string procs = std::to_string(std::atoi(r.err.c_str() + at + 11));
  CHECK(contains(r.err, "gomaxprocs=" + procs + " idleprocs=" + procs + " "));
  CHECK(contains(r.err, " spinningthreads=0 runqueue=1 timers_earliest="));
  CHECK(contains(r.err, "\n  P0: status=idle runqsize=0 runnext=empty "));
  CHECK(contains(r.err, "\ngoroutine 2 [runnable] \"lost-wakeup\":\n"));
  CHECK(contains(r.err, "fatal error: a scheduler backstop fired: a wake-up was lost\n"));
}
