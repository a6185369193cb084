// The per-M stack caches and the global pool of default-size stacks.
//
// Layout. The pool reserves arenas of kArenaBytes of address space (PROT_NONE,
// free until used) and maps spans of kStackCacheBatch stacks at the arena's
// frontier as it needs them. Each stack in a span is [guard][usable], its guard
// installed once when the span is carved; guards survive MADV_DONTNEED, so a
// stack keeps its guard for the life of the process. Spans are never unmapped:
// idle stacks give their memory back by trimming instead (below). Adjacent
// spans merge into one mapping, and MADV_GUARD_INSTALL does not split it, so a
// million stacks cost a few dozen lines of /proc/self/maps (docs/kernel.md).
//
// Trimming. An idle stack keeps at most stack.cache_keep bytes committed at its
// top, so a burst of deep goroutines does not pin memory for ever. Asking the
// kernel which pages are resident costs a system call (mincore, ~1.4 us), far
// over the 20 ns budget of a cached alloc+free, so stackfree looks at a canary
// word written at the lowest address of the kept region after each trim: a
// goroutine that ran deeper than cache_keep pushed frames across that word and
// almost always changed it. A frame that spans the word without writing it can
// hide a deep run, so every stack going back to the pool (stackcacherelease) is
// trimmed unconditionally as a backstop. stack_stats() reports the real
// committed bytes (mincore) beside the reserved ones.
#include "stack/stackpool.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/counter.hpp"
#include "base/log.hpp"
#include "base/print.hpp"
#include "mem/sys.hpp"

namespace gort::rt {

StackGeometry geom;

namespace {

// 4 GiB of address space per arena holds ~16,000 default stacks; reserving it
// costs nothing, and 1M stacks then need ~64 arenas (two maps lines each).
constexpr std::size_t kArenaBytes = std::size_t{4} << 30;

struct Arena {
  std::uintptr_t base = 0;
  std::size_t mapped = 0;  // bytes mapped from base up
};

struct Pool {
  std::mutex mu;
  std::vector<std::uintptr_t> free;  // lo of each pooled stack
  std::vector<Arena> arenas;
  StackCache* caches = nullptr;      // every live M's cache
  std::int64_t retired_inuse = 0;    // inuse counts of caches whose M exited
  std::uint64_t retired_trims = 0;
  std::uint64_t refills = 0, releases = 0;
};
// Never destroyed: Ms may still take stacks while the process runs its exit handlers.
Pool& pool = *new Pool;

constexpr std::uint64_t kCanary = 0x676f72742d6b6565;  // "gort-kee"

// stackpool_grow() maps one more span of kStackCacheBatch stacks into the pool.
// Precondition: pool.mu held.
void stackpool_grow() {
  const std::size_t span = kStackCacheBatch * geom.region();
  if (pool.arenas.empty() || pool.arenas.back().mapped + span > kArenaBytes) {
    void* r = SysReserve(kArenaBytes);
    if (r == nullptr) fatal_stack_alloc(geom.size, "reserving a stack arena", errno);
    pool.arenas.push_back({reinterpret_cast<std::uintptr_t>(r), 0});
  }
  Arena& a = pool.arenas.back();
  void* v = reinterpret_cast<void*>(a.base + a.mapped);
  if (!SysMap(v, span)) fatal_stack_alloc(geom.size, "mapping a stack span", errno);
  SysNoHugePage(v, span);
  for (int i = 0; i < kStackCacheBatch; i++) {
    std::uintptr_t base = a.base + a.mapped + i * geom.region();
    if (!SysGuardInstall(reinterpret_cast<void*>(base), geom.guard)) {
      fatal_stack_alloc(geom.size, "installing a stack guard", errno);
    }
    pool.free.push_back(base + geom.guard);
  }
  a.mapped += span;
  if (stackdebug_level() >= 2) {
    log()->trace("stackpool: mapped span of {} stacks at {:#x}", kStackCacheBatch,
                 reinterpret_cast<std::uintptr_t>(v));
  }
}

// stackpool_take() pops one pooled stack. Precondition: pool.mu held.
std::uintptr_t stackpool_take() {
  if (pool.free.empty()) stackpool_grow();
  std::uintptr_t lo = pool.free.back();
  pool.free.pop_back();
  return lo;
}

// CacheHolder ties an M's cache to its thread: the cache is created on the
// M's first stack operation and released to the pool when the thread exits.
struct CacheHolder {
  StackCache* c = nullptr;
  ~CacheHolder() {
    copycache_flush();
    if (c == nullptr) return;
    stackcache_flush();
    std::lock_guard lk(pool.mu);
    StackCache** pp = &pool.caches;
    while (*pp != c) pp = &(*pp)->next;
    *pp = c->next;
    pool.retired_inuse += c->inuse.load(std::memory_order_relaxed);
    pool.retired_trims += c->trims.load(std::memory_order_relaxed);
    delete c;
  }
};
thread_local CacheHolder tls_cache;

}  // namespace

// mcache is not inlined so that a goroutine migrating between Ms never reads a
// cached copy of another thread's TLS address (docs/design.md "Scheduler").
__attribute__((noinline)) StackCache* mcache() {
  StackCache* c = tls_cache.c;
  if (c != nullptr) [[likely]] return c;
  c = new StackCache;
  {
    std::lock_guard lk(pool.mu);
    c->next = pool.caches;
    pool.caches = c;
  }
  tls_cache.c = c;
  return c;
}

void stackcacherefill(StackCache* c) {
  int n = c->n.load(std::memory_order_relaxed);
  {
    std::lock_guard lk(pool.mu);
    for (int i = 0; i < kStackCacheBatch; i++) c->stk[n++] = stackpool_take();
    pool.refills++;
  }
  c->n.store(n, std::memory_order_relaxed);
  if (stackdebug_level() >= 2) log()->trace("stackcacherefill: {} stacks, cache now {}", kStackCacheBatch, n);
}

void stackcacherelease(StackCache* c) {
  int n = c->n.load(std::memory_order_relaxed);
  std::uintptr_t batch[kStackCacheBatch];
  for (int i = 0; i < kStackCacheBatch; i++) {
    batch[i] = c->stk[--n];
    stacktrim(c, batch[i], true);
  }
  c->n.store(n, std::memory_order_relaxed);
  {
    std::lock_guard lk(pool.mu);
    pool.free.insert(pool.free.end(), batch, batch + kStackCacheBatch);
    pool.releases++;
  }
  if (stackdebug_level() >= 2) log()->trace("stackcacherelease: {} stacks, cache now {}", kStackCacheBatch, n);
}

void stackcache_flush() {
  StackCache* c = tls_cache.c;
  if (c == nullptr) return;
  int n = c->n.load(std::memory_order_relaxed);
  for (int i = 0; i < n; i++) stacktrim(c, c->stk[i], true);
  std::lock_guard lk(pool.mu);
  pool.free.insert(pool.free.end(), c->stk, c->stk + n);
  c->n.store(0, std::memory_order_relaxed);
}

std::uintptr_t stackpool_get() {
  std::lock_guard lk(pool.mu);
  return stackpool_take();
}

void stackpool_put(std::uintptr_t lo) {
  std::lock_guard lk(pool.mu);
  pool.free.push_back(lo);
}

void stacktrim(StackCache* c, std::uintptr_t lo, bool always) {
  if (geom.keep >= geom.size) return;
  std::uintptr_t kept = lo + geom.size - geom.keep;  // lowest kept byte
  auto* canary = reinterpret_cast<std::uint64_t*>(kept);
  const std::uint64_t want = kCanary ^ lo;
  if (geom.keep != 0 && !always && *canary == want) return;
  SysUnused(reinterpret_cast<void*>(lo), kept - lo);
  if (geom.keep != 0) *canary = want;
  owner_add(c->trims);
  if (stackdebug_level() >= 2) log()->trace("stacktrim: released [{:#x}, {:#x})", lo, kept);
}

void stackpool_stats(StackStats& st) {
  std::lock_guard lk(pool.mu);
  std::int64_t inuse = pool.retired_inuse;
  st.trims = pool.retired_trims;
  for (StackCache* c = pool.caches; c != nullptr; c = c->next) {
    inuse += c->inuse.load(std::memory_order_relaxed);
    st.trims += c->trims.load(std::memory_order_relaxed);
    st.cached += static_cast<std::uint64_t>(c->n.load(std::memory_order_relaxed));
  }
  st.cache.count = static_cast<std::uint64_t>(inuse);
  st.cache.bytes = st.cache.count * geom.size;
  st.pooled = pool.free.size();
  st.refills = pool.refills;
  st.releases = pool.releases;
  for (const Arena& a : pool.arenas) {
    st.stacks_sys += a.mapped;
    st.stacks_committed += SysResident(reinterpret_cast<void*>(a.base), a.mapped);
  }
}

void stackpool_init(const Config& cfg) {
  geom.size = cfg.stack_size;
  geom.guard = cfg.stack_guard_pages * kPageSize;
  geom.keep = cfg.stack_cache_keep;
}

[[noreturn]] void fatal_stack_alloc(std::size_t n, const char* what, int err) {
  const char* name = strerrorname_np(err);
  Printer(2).str("runtime: cannot allocate ").dec(n).str("-byte stack: ").str(what).str(": ")
      .str(std::strerror(err)).str(" (").str(name ? name : "?").str(")\n");
  fatal("out of memory");
}

}  // namespace gort::rt
