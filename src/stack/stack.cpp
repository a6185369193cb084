// stackalloc and stackfree: the only code that changes StackOwner::stacksize.
#include "stack/stack.hpp"

#include <jemalloc/jemalloc.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "base/counter.hpp"
#include "base/log.hpp"
#include "base/print.hpp"
#include "mem/sys.hpp"
#include "stack/fault.hpp"
#include "stack/stackpool.hpp"

namespace gort::rt {

namespace {

// The debug modes packed in one word, so that stackalloc and stackfree test a
// single relaxed load for "no debug mode on" (the common case).
constexpr std::uint32_t kLevelMask = 0x7;
constexpr std::uint32_t kFromSystem = 1u << 3;
constexpr std::uint32_t kFaultOnFree = 1u << 4;
constexpr std::uint32_t kPoison = 1u << 5;
constexpr std::uint32_t kNoCache = 1u << 6;
std::atomic<std::uint32_t> debug_bits{0};

std::uint32_t pack(const StackDebug& d) {
  return (static_cast<std::uint32_t>(d.level) & kLevelMask) | (d.fromsystem ? kFromSystem : 0) |
         (d.faultonfree ? kFaultOnFree : 0) | (d.poison ? kPoison : 0) | (d.nocache ? kNoCache : 0);
}

// Counters of the origins that do not go through the per-M caches. Those cost a
// system call or a jemalloc call each, so an atomic add is noise beside them.
struct OriginCounters {
  std::atomic<std::uint64_t> count{0}, bytes{0}, sys{0};
  void add(std::size_t n, std::size_t region) {
    count.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(n, std::memory_order_relaxed);
    sys.fetch_add(region, std::memory_order_relaxed);
  }
  void sub(std::size_t n, std::size_t region) {
    count.fetch_sub(1, std::memory_order_relaxed);
    bytes.fetch_sub(n, std::memory_order_relaxed);
    sys.fetch_sub(region, std::memory_order_relaxed);
  }
};
OriginCounters malloced_ctr, system_ctr;

// Live system stacks (base -> region bytes): lets stackfree catch a system stack
// freed twice or never allocated (invariant 2) and stack_stats() count their
// resident pages. stackfromsystem is a debug mode that costs an mmap per stack,
// so a lock here is noise.
std::mutex system_mu;
std::unordered_map<std::uintptr_t, std::size_t>& system_live = *new std::unordered_map<std::uintptr_t, std::size_t>;
std::atomic<std::uint64_t> faulted_count{0}, faulted_bytes{0};

// The jemalloc arena that serves malloced stacks, kept apart from the heap so
// stacks do not fragment it and its resident bytes can be reported on their own.
unsigned stack_arena = 0;

const char* origin_name(StackOrigin o) {
  switch (o) {
    case StackOrigin::cache: return "cache";
    case StackOrigin::malloced: return "malloced";
    case StackOrigin::system: return "system";
  }
  return "?";
}

Stack make_stack(std::uintptr_t base, std::size_t guard, std::size_t n, StackOrigin o) {
  Stack s;
  s.lo = base + guard;
  s.hi = s.lo + n;
  s.guard = static_cast<std::uint32_t>(guard);
  s.origin = o;
  return s;
}

Stack stackalloc_cache(std::uint32_t dbg) {
  StackCache* c = mcache();
  std::uintptr_t lo;
  if (dbg & kNoCache) {
    lo = stackpool_get();
  } else {
    int n = c->n.load(std::memory_order_relaxed);
    if (n == 0) {
      stackcacherefill(c);
      n = c->n.load(std::memory_order_relaxed);
    }
    lo = c->stk[--n];
    c->n.store(n, std::memory_order_relaxed);
  }
  owner_add(c->inuse);
  return make_stack(lo - geom.guard, geom.guard, geom.size, StackOrigin::cache);
}

void stackfree_cache(const Stack& s, std::uint32_t dbg) {
  StackCache* c = mcache();
  if (!(dbg & kPoison)) stacktrim(c, s.lo, false);
  if (dbg & kNoCache) {
    stackpool_put(s.lo);
  } else {
    int n = c->n.load(std::memory_order_relaxed);
    if (dbg != 0) {
      // Invariant 2, checked when debugging: a stack already in the cache is
      // being freed again.
      for (int i = 0; i < n; i++) {
        if (c->stk[i] == s.lo) fatal("stackfree: stack freed twice");
      }
    }
    if (n == kStackCacheSize) {
      stackcacherelease(c);
      n = c->n.load(std::memory_order_relaxed);
    }
    c->stk[n++] = s.lo;
    c->n.store(n, std::memory_order_relaxed);
  }
  owner_add(c->inuse, std::int64_t{-1});
}

Stack stackalloc_malloced(std::size_t n) {
  const std::size_t guard = geom.guard;
  void* p = mallocx(guard + n, MALLOCX_ALIGN(kPageSize) | MALLOCX_ARENA(stack_arena) | MALLOCX_TCACHE_NONE);
  if (p == nullptr) fatal_stack_alloc(n, "jemalloc mallocx", ENOMEM);
  if (!SysGuardInstall(p, guard)) {
    int e = errno;
    dallocx(p, MALLOCX_TCACHE_NONE);
    fatal_stack_alloc(n, "installing a stack guard", e);
  }
  // Outside THP "always" mode nothing gives our pages huge pages, and madvising
  // part of a jemalloc extent would split its mapping: only advise when needed.
  if (SysHugePagesAlways()) SysNoHugePage(p, guard + n);
  malloced_ctr.add(n, guard + n);
  return make_stack(reinterpret_cast<std::uintptr_t>(p), guard, n, StackOrigin::malloced);
}

void stackfree_malloced(const Stack& s) {
  void* p = reinterpret_cast<void*>(s.base());
  // The guard must go before dallocx: jemalloc hands the block to its next user,
  // whose first write would otherwise fault (docs/kernel.md).
  if (!SysGuardRemove(p, s.guard)) fatal("stackfree: cannot remove the guard of a malloced stack");
  dallocx(p, MALLOCX_TCACHE_NONE);
  malloced_ctr.sub(s.size(), s.guard + s.size());
}

Stack stackalloc_system(std::size_t n) {
  const std::size_t guard = geom.guard;
  void* p = SysAlloc(guard + n);
  if (p == nullptr) fatal_stack_alloc(n, "mmap", errno);
  SysNoHugePage(p, guard + n);
  if (!SysGuardInstall(p, guard)) {
    int e = errno;
    SysFree(p, guard + n);
    fatal_stack_alloc(n, "installing a stack guard", e);
  }
  system_ctr.add(n, guard + n);
  {
    std::lock_guard lk(system_mu);
    system_live.emplace(reinterpret_cast<std::uintptr_t>(p), guard + n);
  }
  return make_stack(reinterpret_cast<std::uintptr_t>(p), guard, n, StackOrigin::system);
}

void stackfree_system(const StackOwner* g, const Stack& s, std::uint32_t dbg, const char* why) {
  void* p = reinterpret_cast<void*>(s.base());
  const std::size_t region = s.guard + s.size();
  {
    std::lock_guard lk(system_mu);
    auto it = system_live.find(s.base());
    if (it == system_live.end() || it->second != region) {
      fatal("stackfree: system stack freed twice or never allocated");
    }
    system_live.erase(it);
  }
  if (dbg & kFaultOnFree) {
    SysFault(p, region);
    fault_record_freed(s, g->goid, why);
    faulted_count.fetch_add(1, std::memory_order_relaxed);
    faulted_bytes.fetch_add(region, std::memory_order_relaxed);
  } else {
    SysFree(p, region);
  }
  system_ctr.sub(s.size(), region);
}

void debug_alloc(const StackOwner* g, const Stack& s, std::uint32_t dbg) {
  if (dbg & kPoison) std::memset(reinterpret_cast<void*>(s.lo), 0xfd, s.size());
  if (dbg & kLevelMask) {
    log()->trace("stackalloc: goroutine {} {} [{:#x}, {:#x}) {} bytes, stacksize {}", g->goid,
                 origin_name(s.origin), s.lo, s.hi, s.size(), g->stacksize);
  }
}

void debug_free(const StackOwner* g, const Stack& s, std::uint32_t dbg, const char* why) {
  if (dbg & kPoison) std::memset(reinterpret_cast<void*>(s.lo), 0xfc, s.size());
  if (dbg & kLevelMask) {
    log()->trace("stackfree: goroutine {} {} [{:#x}, {:#x}) {} bytes ({}), stacksize {}", g->goid,
                 origin_name(s.origin), s.lo, s.hi, s.size(), why, g->stacksize);
  }
}

}  // namespace

std::atomic<std::size_t> stack_keep_size{0};

int stackdebug_level() { return static_cast<int>(debug_bits.load(std::memory_order_relaxed) & kLevelMask); }

void stackinit(const Config& cfg) {
  stackpool_init(cfg);
  std::size_t sz = sizeof stack_arena;
  if (mallctl("arenas.create", &stack_arena, &sz, nullptr, 0) != 0) {
    fatal("stackinit: jemalloc cannot create the stack arena");
  }
  set_stack_debug(cfg.stack_debug);
}

std::size_t stack_default_size() { return geom.size; }

Stack stackalloc(StackOwner* g, std::size_t n) {
  n = n == 0 ? geom.size : (n + kPageSize - 1) & ~(kPageSize - 1);
  const std::uint32_t dbg = debug_bits.load(std::memory_order_relaxed);
  Stack s;
  if (dbg & kFromSystem) [[unlikely]] {
    s = stackalloc_system(n);
  } else if (n == geom.size) [[likely]] {
    s = stackalloc_cache(dbg);
  } else {
    s = stackalloc_malloced(n);
  }
  g->stacksize += n;
  if (dbg != 0) [[unlikely]] debug_alloc(g, s, dbg);
  return s;
}

void stackfree(StackOwner* g, const Stack& s, const char* why) {
  const std::size_t n = s.size();
  if (g->stacksize < n) {
    Printer(2).str("runtime: goroutine ").dec(g->goid).str(" stacksize ").dec(g->stacksize)
        .str(" < freed stack ").dec(n).str("\n");
    fatal("bad stacksize");
  }
  const std::uint32_t dbg = debug_bits.load(std::memory_order_relaxed);
  g->stacksize -= n;
#if defined(__SANITIZE_ADDRESS__)
  // A context that ended with a final switch leaves its frames' redzones
  // poisoned; the stack's next user must start from clean shadow memory.
  __asan_unpoison_memory_region(reinterpret_cast<void*>(s.lo), n);
#endif
  if (dbg != 0) [[unlikely]] debug_free(g, s, dbg, why);
  switch (s.origin) {
    case StackOrigin::cache:
      // Invariant 3: only the cache's size may go back to the cache.
      if (n != geom.size) fatal("stackfree: cache-origin stack of the wrong size");
      stackfree_cache(s, dbg);
      break;
    case StackOrigin::malloced:
      stackfree_malloced(s);
      break;
    case StackOrigin::system:
      stackfree_system(g, s, dbg, why);
      break;
  }
}

void set_stack_debug(const StackDebug& d) {
  if (d.level > 0 && log()->level() > spdlog::level::trace) log()->set_level(spdlog::level::trace);
  if (d.faultonfree && !d.fromsystem) {
    log()->warn(
        "stackfaultonfree affects only stacks from the system: set stackfromsystem=1 too "
        "(efence=1 sets both)");
  }
  debug_bits.store(pack(d), std::memory_order_relaxed);
  stack_keep_size.store(d.faultonfree || d.poison ? 0 : geom.size, std::memory_order_relaxed);
}

StackDebug stack_debug() {
  const std::uint32_t b = debug_bits.load(std::memory_order_relaxed);
  return StackDebug{static_cast<int>(b & kLevelMask), (b & kFromSystem) != 0, (b & kFaultOnFree) != 0,
                    (b & kPoison) != 0, (b & kNoCache) != 0};
}

StackStats stack_stats() {
  StackStats st;
  st.guard_mode = SysGuardModeName();
  stackpool_stats(st);
  st.malloced.count = malloced_ctr.count.load(std::memory_order_relaxed);
  st.malloced.bytes = malloced_ctr.bytes.load(std::memory_order_relaxed);
  st.system.count = system_ctr.count.load(std::memory_order_relaxed);
  st.system.bytes = system_ctr.bytes.load(std::memory_order_relaxed);
  st.faulted = faulted_count.load(std::memory_order_relaxed);
  st.faulted_bytes = faulted_bytes.load(std::memory_order_relaxed);
  st.stacks_inuse = st.cache.bytes + st.malloced.bytes + st.system.bytes;
  st.stacks_sys += malloced_ctr.sys.load(std::memory_order_relaxed) +
                   system_ctr.sys.load(std::memory_order_relaxed) + st.faulted_bytes;
  // jemalloc's resident count for the stack arena (it refreshes on "epoch").
  std::uint64_t epoch = 1;
  std::size_t sz = sizeof epoch;
  mallctl("epoch", &epoch, &sz, &epoch, sz);
  char name[64];
  std::snprintf(name, sizeof name, "stats.arenas.%u.resident", stack_arena);
  std::size_t resident = 0;
  sz = sizeof resident;
  if (mallctl(name, &resident, &sz, nullptr, 0) == 0) st.stacks_committed += resident;
  std::lock_guard lk(system_mu);
  for (const auto& [base, region] : system_live) {
    st.stacks_committed += SysResident(reinterpret_cast<void*>(base), region);
  }
  return st;
}

}  // namespace gort::rt
