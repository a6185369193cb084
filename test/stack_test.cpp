// The stack layer: accounting in every debug-mode combination, cache batching,
// trimming, density, poison, jemalloc guards and allocation failure.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "mem/sys.hpp"
#include "skip.hpp"
#include "stack/stack.hpp"

using namespace gort::rt;
using gort::StackStats;

namespace {

constexpr std::size_t kOther = 64 * 1024;  // a non-default size: malloced

// DebugScope switches stack debug modes for one test and restores them after.
struct DebugScope {
  StackDebug saved = stack_debug();
  explicit DebugScope(const StackDebug& d) { set_stack_debug(d); }
  ~DebugScope() { set_stack_debug(saved); }
};

std::size_t maps_lines() {
  std::ifstream f("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(f, line);) n++;
  return n;
}

// Expected live totals, kept beside the stacks a test holds.
struct Live {
  std::int64_t cache = 0, malloced = 0, system = 0;  // counts
  std::int64_t cache_b = 0, malloced_b = 0, system_b = 0;
  void add(const Stack& s, int sign) {
    std::int64_t b = sign * static_cast<std::int64_t>(s.size());
    switch (s.origin) {
      case StackOrigin::cache: cache += sign; cache_b += b; break;
      case StackOrigin::malloced: malloced += sign; malloced_b += b; break;
      case StackOrigin::system: system += sign; system_b += b; break;
    }
  }
};

// check_accounting() compares stats against a baseline plus what the test holds
// (invariants 1 and 4).
void check_accounting(const StackOwner& g, const std::vector<Stack>& held, const Live& live,
                      const StackStats& base) {
  std::size_t sum = 0;
  for (const Stack& s : held) sum += s.size();
  CHECK(g.stacksize == sum);
  StackStats now = stack_stats();
  CHECK(static_cast<std::int64_t>(now.cache.count - base.cache.count) == live.cache);
  CHECK(static_cast<std::int64_t>(now.malloced.count - base.malloced.count) == live.malloced);
  CHECK(static_cast<std::int64_t>(now.system.count - base.system.count) == live.system);
  CHECK(static_cast<std::int64_t>(now.cache.bytes - base.cache.bytes) == live.cache_b);
  CHECK(static_cast<std::int64_t>(now.malloced.bytes - base.malloced.bytes) == live.malloced_b);
  CHECK(static_cast<std::int64_t>(now.system.bytes - base.system.bytes) == live.system_b);
  CHECK(now.stacks_inuse - base.stacks_inuse == sum);
  CHECK(now.stacks_inuse == now.cache.bytes + now.malloced.bytes + now.system.bytes);
}

}  // namespace

TEST_CASE("accounting is exact after every operation in all 16 debug-mode combinations") {
  for (int m = 0; m < 16; m++) {
    StackDebug d;
    d.fromsystem = m & 1;
    d.faultonfree = m & 2;
    d.poison = m & 4;
    d.nocache = m & 8;
    CAPTURE(m);
    DebugScope scope(d);
    const StackStats base = stack_stats();
    StackOwner g;
    g.goid = 100 + static_cast<std::uint64_t>(m);
    std::vector<Stack> held;
    Live live;
    for (int i = 0; i < 6; i++) {
      Stack s = stackalloc(&g, i % 3 == 2 ? kOther : 0);
      StackOrigin want = d.fromsystem ? StackOrigin::system
                         : i % 3 == 2 ? StackOrigin::malloced
                                      : StackOrigin::cache;
      CHECK(s.origin == want);
      CHECK(s.size() == (i % 3 == 2 ? kOther : stack_default_size()));
      CHECK(s.guard == kPageSize);
      held.push_back(s);
      live.add(s, 1);
      check_accounting(g, held, live, base);
    }
    const std::uint64_t faulted0 = stack_stats().faulted;
    std::size_t nfreed_system = 0;
    // Free from the middle outwards, so the order differs from allocation order.
    while (!held.empty()) {
      std::size_t k = held.size() / 2;
      Stack s = held[k];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      stackfree(&g, s);
      live.add(s, -1);
      nfreed_system += s.origin == StackOrigin::system;
      check_accounting(g, held, live, base);
    }
    CHECK(g.stacksize == 0);
    CHECK(stack_stats().faulted - faulted0 == (d.faultonfree ? nfreed_system : 0));
  }
}

TEST_CASE("stacks_sys covers the faulted stacks, which stay reserved") {
  DebugScope scope(StackDebug{0, true, true, false, false});
  StackStats before = stack_stats();
  StackOwner g;
  Stack s = stackalloc(&g);
  stackfree(&g, s);
  StackStats after = stack_stats();
  CHECK(after.faulted == before.faulted + 1);
  CHECK(after.faulted_bytes - before.faulted_bytes == s.size() + s.guard);
  CHECK(after.stacks_sys - before.stacks_sys == s.size() + s.guard);
}

TEST_CASE("per-M caches refill and release in batches of 16") {
  // A fresh thread starts with an empty cache.
  StackStats before, mid, after;
  std::thread([&] {
    before = stack_stats();
    StackOwner g;
    std::vector<Stack> held;
    for (int i = 0; i < 64; i++) held.push_back(stackalloc(&g));
    mid = stack_stats();
    for (const Stack& s : held) stackfree(&g, s);
    after = stack_stats();
  }).join();
  StackStats exited = stack_stats();
  // 64 stacks take 4 refills of 16 and leave the cache empty.
  CHECK(mid.refills - before.refills == 4);
  CHECK(mid.cached == before.cached);
  // Freeing 64 fills the cache to 32, then each overflow releases 16: 2 releases.
  CHECK(after.releases - before.releases == 2);
  CHECK(after.cached - before.cached == kStackCacheSize);
  // The exiting M hands its cache back to the pool.
  CHECK(exited.cached == before.cached);
  CHECK(exited.pooled - after.pooled == kStackCacheSize);
}

TEST_CASE("a stack used 200 KiB deep keeps at most stack.cache_keep bytes once cached") {
  const std::size_t keep = 16 * 1024;  // conf default; test main loads defaults
  StackOwner g;
  Stack s = stackalloc(&g);
  REQUIRE(s.origin == StackOrigin::cache);
  std::memset(reinterpret_cast<void*>(s.hi - 200 * 1024), 0x5a, 200 * 1024);
  CHECK(SysResident(reinterpret_cast<void*>(s.lo), s.size()) >= 200 * 1024);
  stackfree(&g, s);
  Stack again = stackalloc(&g);
  CHECK(again.lo == s.lo);  // the per-M cache is LIFO
  CHECK(SysResident(reinterpret_cast<void*>(again.lo), again.size()) <= keep);
  stackfree(&g, again);
}

TEST_CASE("a shallow stack is not trimmed again on every free") {
  StackOwner g;
  Stack s = stackalloc(&g);
  stackfree(&g, s);  // trims once if this stack was never trimmed
  std::uint64_t trims = stack_stats().trims;
  for (int i = 0; i < 100; i++) {
    Stack t = stackalloc(&g);
    std::memset(reinterpret_cast<void*>(t.hi - 4096), 1, 4096);
    stackfree(&g, t);
  }
  CHECK(stack_stats().trims == trims);
}

TEST_CASE("100,000 live guarded default stacks add fewer than 100 lines to /proc/self/maps" *
          doctest::test_suite("madv-guard")) {
  if (SysGuardMode() != GuardMode::madv_guard) {
    return gort::test::skip(
        "guards are mprotect(PROT_NONE) here (no MADV_GUARD_INSTALL): each splits a mapping, and "
        "vm.max_map_count caps a process near 32,000 stacks");
  }
  std::size_t before = maps_lines();
  StackOwner g;
  std::vector<Stack> held;
  held.reserve(100000);
  for (int i = 0; i < 100000; i++) held.push_back(stackalloc(&g));
  std::size_t during = maps_lines();
  CHECK(during < before + 100);
  CHECK(stack_stats().guard_mode == std::string("madv_guard"));
  for (const Stack& s : held) stackfree(&g, s);
  CHECK(g.stacksize == 0);
}

TEST_CASE("poison: 0xfd on new stacks, 0xfc on freed ones") {
  DebugScope scope(StackDebug{0, false, false, true, false});
  StackOwner g;
  for (std::size_t n : {std::size_t{0}, kOther}) {
    Stack s = stackalloc(&g, n);
    auto* lo = reinterpret_cast<unsigned char*>(s.lo);
    CHECK(lo[0] == 0xfd);
    CHECK(lo[s.size() / 2] == 0xfd);
    CHECK(lo[s.size() - 1] == 0xfd);
    if (s.origin != StackOrigin::cache) {
      stackfree(&g, s);
      continue;
    }
    stackfree(&g, s);
    // A cached stack stays mapped: its bytes are the free poison, not trimmed away.
    CHECK(lo[0] == 0xfc);
    CHECK(lo[s.size() / 2] == 0xfc);
    CHECK(lo[s.size() - 1] == 0xfc);
  }
}

TEST_CASE("a freed jemalloc stack leaves no guard behind for the next user") {
  StackOwner g;
  for (std::size_t n : {kOther, kOther, kOther + 4096, kOther - 4096}) {
    Stack s = stackalloc(&g, n);
    REQUIRE(s.origin == StackOrigin::malloced);
    std::memset(reinterpret_cast<void*>(s.lo), 0x77, s.size());
    stackfree(&g, s);
  }
  // The same size again, written end to end: a left-over guard would fault here.
  auto r = gort::test::run_in_child([&] {
    for (int i = 0; i < 8; i++) {
      Stack s = stackalloc(&g, kOther + 4096);
      std::memset(reinterpret_cast<void*>(s.lo), 0x11, s.size());
      stackfree(&g, s);
    }
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.signal == 0);
}

TEST_CASE("a stack that cannot be allocated is a clear fatal error") {
  SUBCASE("jemalloc cannot serve the size") {
    auto r = gort::test::run_in_child([] {
      StackOwner g;
      stackalloc(&g, std::size_t{1} << 50);  // beyond the 128 TiB user address space
    });
    INFO("child stderr:\n" << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("runtime: cannot allocate 1125899906842624-byte stack") != std::string::npos);
    CHECK(r.err.find("fatal error: out of memory") != std::string::npos);
  }
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // The sanitizers reserve terabytes of shadow memory, so RLIMIT_AS cannot be
  // lowered under them.
  SUBCASE("mmap fails under a lowered RLIMIT_AS") {
    auto r = gort::test::run_in_child([] {
      set_stack_debug(StackDebug{0, true, false, false, false});
      StackOwner g;
      struct rlimit rl {};
      rl.rlim_cur = rl.rlim_max = 0;
      std::ifstream f("/proc/self/statm");
      std::size_t pages = 0;
      f >> pages;
      rl.rlim_cur = rl.rlim_max = pages * 4096 + (1 << 20);
      setrlimit(RLIMIT_AS, &rl);
      for (int i = 0; i < 100; i++) stackalloc(&g);
    });
    INFO("child stderr:\n" << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.find("runtime: cannot allocate 262144-byte stack: mmap: Cannot allocate memory") !=
          std::string::npos);
  }
#endif
}

TEST_CASE("freeing a cache stack twice is caught when debugging") {
  auto r = gort::test::run_in_child([] {
    set_stack_debug(StackDebug{1, false, false, false, false});
    StackOwner g;
    Stack s = stackalloc(&g);
    g.stacksize += s.size();  // pretend the owner still holds it
    stackfree(&g, s);
    stackfree(&g, s);
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: stackfree: stack freed twice") != std::string::npos);
}

TEST_CASE("a stacksize that does not cover the freed stack is 'bad stacksize'") {
  auto r = gort::test::run_in_child([] {
    StackOwner g;
    Stack s = stackalloc(&g);
    g.stacksize = 4096;
    stackfree(&g, s);
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: bad stacksize") != std::string::npos);
}

TEST_CASE("stackdebug logs alloc and free through spdlog") {
  auto r = gort::test::run_in_child([] {
    set_stack_debug(StackDebug{2, false, false, false, false});
    StackOwner g;
    g.goid = 77;
    Stack s = stackalloc(&g);
    stackfree(&g, s);
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("stackalloc: goroutine 77 cache") != std::string::npos);
  CHECK(r.err.find("stackfree: goroutine 77 cache") != std::string::npos);
}
