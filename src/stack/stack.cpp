// stackalloc and stackfree: the only code that changes StackOwner::stacksize.
#include "stack/stack.hpp"

#include <jemalloc/jemalloc.h>
#include <sys/mman.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/counter.hpp"
#include "base/log.hpp"
#include "base/print.hpp"
#include "mem/sys.hpp"
#include "stack/copystack.hpp"
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
  // hold()/unhold() count a stack of n usable bytes taken by / given back
  // from an owner; add()/sub() also count its region as obtained / returned.
  void hold(std::size_t n) {
    count.fetch_add(1, std::memory_order_relaxed);
    bytes.fetch_add(n, std::memory_order_relaxed);
  }
  void unhold(std::size_t n) {
    count.fetch_sub(1, std::memory_order_relaxed);
    bytes.fetch_sub(n, std::memory_order_relaxed);
  }
  void add(std::size_t n, std::size_t region) {
    hold(n);
    sys.fetch_add(region, std::memory_order_relaxed);
  }
  void sub(std::size_t n, std::size_t region) {
    unhold(n);
    sys.fetch_sub(region, std::memory_order_relaxed);
  }
};
OriginCounters malloced_ctr, system_ctr;

// Live system stacks (base -> region bytes): lets stackfree catch a system stack
// freed twice or never allocated (invariant 2) and stack_stats() count their
// resident pages. copystack allocates and frees system stacks in the fault
// handler, which may have interrupted any code, so the table takes no lock:
// open addressing over a fixed array, a slot claimed by a CAS of its base (0
// or a tombstone -> base) and released by a CAS to a tombstone. A slot never
// goes back to 0, so a lookup that reaches an empty slot has seen every slot
// its key could be in; inserts reuse the first tombstone, so probe sequences
// stay as short as the live count makes them.
class SystemStacks {
 public:
  // insert() records a live region. Async-signal-safe.
  void insert(std::uintptr_t base, std::size_t region) {
    Slot* t = table();
    for (std::size_t i = 0, h = hash(base); i < kMaxProbe; i++) {
      Slot& sl = t[(h + i) & (kSlots - 1)];
      std::uintptr_t b = sl.base.load(std::memory_order_acquire);
      while (b == 0 || b == kTomb) {
        if (sl.base.compare_exchange_weak(b, base, std::memory_order_acq_rel)) {
          sl.region.store(region, std::memory_order_release);
          return;
        }
      }
    }
    fatal("stackalloc: more live system stacks than the table of system stacks holds");
  }
  // remove() forgets the region at base and returns its bytes, or 0 if none is
  // recorded there. Async-signal-safe.
  std::size_t remove(std::uintptr_t base) {
    Slot* t = table();
    for (std::size_t i = 0, h = hash(base); i < kMaxProbe; i++) {
      Slot& sl = t[(h + i) & (kSlots - 1)];
      std::uintptr_t b = sl.base.load(std::memory_order_acquire);
      if (b == 0) return 0;
      if (b == base) {
        const std::size_t region = sl.region.exchange(0, std::memory_order_acq_rel);
        sl.base.store(kTomb, std::memory_order_release);
        return region;
      }
    }
    return 0;
  }
  // reserve() maps the table now: stackinit calls it, so that a process that
  // later lowers RLIMIT_AS or runs short of address space still has it.
  void reserve() { (void)table(); }
  // resident() is the bytes of live system stacks resident in memory.
  // Only the table's resident pages are read: a page never written holds no
  // slot, and reading all 32 MiB would fault in the zero page 8,192 times.
  std::size_t resident() {
    Slot* t = slots_.load(std::memory_order_acquire);
    if (t == nullptr) return 0;
    constexpr std::size_t kTableBytes = kSlots * sizeof(Slot), kPerPage = kPageSize / sizeof(Slot);
    std::vector<unsigned char> in(kTableBytes / kPageSize);
    if (mincore(t, kTableBytes, in.data()) != 0) std::fill(in.begin(), in.end(), 1);
    std::size_t r = 0;
    for (std::size_t pg = 0; pg < in.size(); pg++) {
      if (!(in[pg] & 1)) continue;
      for (std::size_t i = pg * kPerPage; i < (pg + 1) * kPerPage; i++) {
        const std::uintptr_t b = t[i].base.load(std::memory_order_acquire);
        const std::size_t region = t[i].region.load(std::memory_order_acquire);
        if (b != 0 && b != kTomb && region != 0) r += SysResident(reinterpret_cast<void*>(b), region);
      }
    }
    return r;
  }

 private:
  struct Slot {
    std::atomic<std::uintptr_t> base;
    std::atomic<std::size_t> region;
  };
  // 2M slots (32 MiB of address space, committed only where touched) hold a
  // million live system stacks at half load; under the mprotect guard fallback
  // vm.max_map_count stops a process near 32,000 long before.
  static constexpr std::size_t kSlots = std::size_t{1} << 21;
  static constexpr std::size_t kMaxProbe = 4096;
  static constexpr std::uintptr_t kTomb = 1;
  static std::size_t hash(std::uintptr_t base) { return static_cast<std::size_t>((base >> 12) * 0x9e3779b97f4a7c15ull >> 43); }
  // table() maps the array on first use (reserve() makes that start-up);
  // racing first users keep one mapping.
  Slot* table() {
    Slot* t = slots_.load(std::memory_order_acquire);
    if (t != nullptr) [[likely]] return t;
    void* p = SysAlloc(kSlots * sizeof(Slot));
    if (p == nullptr) {
      fatal("stackinit: cannot map the 32 MiB table of system stacks (address space: check ulimit -v)");
    }
    if (!slots_.compare_exchange_strong(t, static_cast<Slot*>(p), std::memory_order_acq_rel)) {
      SysFree(p, kSlots * sizeof(Slot));
      return t;
    }
    return static_cast<Slot*>(p);
  }
  std::atomic<Slot*> slots_{nullptr};
};
SystemStacks& system_live = *new SystemStacks;
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

// Async-signal-safe, as stackfree_system.
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
  system_live.insert(reinterpret_cast<std::uintptr_t>(p), guard + n);
  return make_stack(reinterpret_cast<std::uintptr_t>(p), guard, n, StackOrigin::system);
}

void stackfree_system(const StackOwner* g, const Stack& s, std::uint32_t dbg, const char* why,
                      const StackMoveRecord* moved) {
  void* p = reinterpret_cast<void*>(s.base());
  const std::size_t region = s.guard + s.size();
  if (system_live.remove(s.base()) != region) fatal("stackfree: system stack freed twice or never allocated");
  if (dbg & kFaultOnFree) {
    SysFault(p, region);
    fault_record_freed(s, g->goid, why, moved);
    faulted_count.fetch_add(1, std::memory_order_relaxed);
    faulted_bytes.fetch_add(region, std::memory_order_relaxed);
  } else {
    SysFree(p, region);
  }
  system_ctr.sub(s.size(), region);
}

// ---- The copying-stack cache ----
//
// Copying stacks idle on this thread, by size class (copying_min << i), so
// that a relocatable goroutine's growth, and the next one's spawn, reuse
// committed regions instead of paying an mmap, a munmap and a first-touch
// fault per page (1.3 us a page on a quiet host here, 20 us on a busy one;
// a goroutine growing to 1 MiB touches ~500 fresh pages: docs/stacks.md).
//
// Signal safety: the cache belongs to its thread and is used in two places,
// the fault handler, which grows a stack only while the thread runs a
// goroutine (an owner is set), and code on g0 or a plain thread (no owner:
// newg_slow and gfstackfree, which DCHECK it). The handler never grows
// while the thread is in the second, so the two never interleave. It is a
// trivially destructible initial-exec thread_local, so the handler's first
// use registers nothing; an exiting M empties it (copycache_flush).
struct CopyCache {
  static constexpr int kClasses = 10;  // copying_min << 0..9: 4 KiB .. 2 MiB by default
  static constexpr int kDepth = 4;     // per class: at most ~8 MiB idle per thread
  std::uintptr_t base[kClasses][kDepth];
  int n[kClasses];
};
__attribute__((tls_model("initial-exec"))) thread_local CopyCache copycache;
std::atomic<std::uint64_t> copycache_bytes{0};

// copy_class_index() is the class of a copying stack of n bytes in CopyCache,
// or -1 for sizes it does not keep.
int copy_class_index(std::size_t n) {
  for (int i = 0; i < CopyCache::kClasses; i++) {
    if (copying_geom.min << i == n) return i;
  }
  return -1;
}

// copycache_get() takes a cached copying region of n usable bytes, or
// returns an empty stack. Async-signal-safe (see above).
Stack copycache_get(std::size_t n) {
  const int c = copy_class_index(n);
  if (c < 0 || copycache.n[c] == 0) return {};
  const std::uintptr_t base = copycache.base[c][--copycache.n[c]];
  copycache_bytes.fetch_sub(geom.guard + n, std::memory_order_relaxed);
  system_ctr.hold(n);
  return make_stack(base, geom.guard, n, StackOrigin::system);
}

// copycache_put() keeps s, a copying region its owner gave back, if its class
// has room; false if the caller must free it. Async-signal-safe.
bool copycache_put(const Stack& s) {
  const int c = copy_class_index(s.size());
  if (c < 0 || copycache.n[c] == CopyCache::kDepth || s.guard != geom.guard) return false;
  copycache.base[c][copycache.n[c]++] = s.base();
  copycache_bytes.fetch_add(s.guard + s.size(), std::memory_order_relaxed);
  system_ctr.unhold(s.size());
  return true;
}

// stacklog() writes a stackdebug line. Copying stacks are allocated and freed
// in the fault handler, where the logger (which allocates and locks) must not
// run, so their lines go straight to stderr through Printer.
void stacklog(const char* op, const StackOwner* g, const Stack& s, const char* why) {
  if (s.kind == StackKind::copying) {
    Printer out(2);
    out.str(op).str(": goroutine ").dec(g->goid).str(" copying ").str(origin_name(s.origin)).str(" [")
        .hex(s.lo).str(", ").hex(s.hi).str(") ").dec(s.size()).str(" bytes");
    if (why != nullptr) out.str(" (").str(why).str(")");
    out.str(", stacksize ").dec(g->stacksize).str("\n");
  } else if (why != nullptr) {
    log()->trace("{}: goroutine {} {} [{:#x}, {:#x}) {} bytes ({}), stacksize {}", op, g->goid,
                 origin_name(s.origin), s.lo, s.hi, s.size(), why, g->stacksize);
  } else {
    log()->trace("{}: goroutine {} {} [{:#x}, {:#x}) {} bytes, stacksize {}", op, g->goid,
                 origin_name(s.origin), s.lo, s.hi, s.size(), g->stacksize);
  }
}

void debug_alloc(const StackOwner* g, const Stack& s, std::uint32_t dbg) {
  if (dbg & kPoison) std::memset(reinterpret_cast<void*>(s.lo), 0xfd, s.size());
  if (dbg & kLevelMask) stacklog("stackalloc", g, s, nullptr);
}

void debug_free(const StackOwner* g, const Stack& s, std::uint32_t dbg, const char* why) {
  if (dbg & kPoison) std::memset(reinterpret_cast<void*>(s.lo), 0xfc, s.size());
  if (dbg & kLevelMask) stacklog("stackfree", g, s, why);
}

}  // namespace

std::atomic<std::size_t> stack_keep_size{0};
StackKind stack_keep_kind = StackKind::stable;
CopyingGeometry copying_geom;

int stackdebug_level() { return static_cast<int>(debug_bits.load(std::memory_order_relaxed) & kLevelMask); }

void stackinit(const Config& cfg) {
  stackpool_init(cfg);
  std::size_t sz = sizeof stack_arena;
  if (mallctl("arenas.create", &stack_arena, &sz, nullptr, 0) != 0) {
    fatal("stackinit: jemalloc cannot create the stack arena");
  }
  system_live.reserve();
  copying_geom.min = cfg.stack_copying_min;
  copying_geom.max = cfg.stack_copying_max;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  copying_geom.supported = false;
  copying_geom.stable_fallback = std::min(copying_geom.stable_fallback, copying_geom.max);
  if (cfg.stack_copying) {
    log()->warn("stack.kind = \"copying\": this is a sanitizer build, whose shadow memory does not "
                "follow a moved stack; relocatable goroutines run on stable {}-byte stacks here",
                copying_geom.stable_fallback);
  }
#endif
  copying_geom.by_default = cfg.stack_copying && copying_geom.supported;
  stack_keep_kind = copying_geom.by_default ? StackKind::copying : StackKind::stable;
  set_stack_debug(cfg.stack_debug);
}

std::size_t stack_default_size() { return geom.size; }

std::size_t copying_class(std::size_t n) {
  std::size_t c = copying_geom.min;
  while (c < n) c *= 2;
  return c;
}

void copycache_flush() {
  for (int c = 0; c < CopyCache::kClasses; c++) {
    const std::size_t n = copying_geom.min << c, region = geom.guard + n;
    while (copycache.n[c] > 0) {
      const std::uintptr_t base = copycache.base[c][--copycache.n[c]];
      if (system_live.remove(base) != region) fatal("copycache_flush: a cached copying stack is not live");
      SysFree(reinterpret_cast<void*>(base), region);
      copycache_bytes.fetch_sub(region, std::memory_order_relaxed);
      system_ctr.sys.fetch_sub(region, std::memory_order_relaxed);
    }
  }
}

// The debug modes that want every copying stack fresh from the system and
// given back to it: the cache would hide a touch of a freed one.
constexpr std::uint32_t kCopyCacheBypass = kFromSystem | kFaultOnFree | kNoCache;

Stack stackalloc_copying(StackOwner* g, std::size_t n) {
  const std::uint32_t dbg = debug_bits.load(std::memory_order_relaxed);
  Stack s = dbg & kCopyCacheBypass ? Stack{} : copycache_get(n);
  if (s.empty()) s = stackalloc_system(n);
  s.kind = StackKind::copying;
  g->stacksize += n;
  if (dbg != 0) [[unlikely]] debug_alloc(g, s, dbg);
  return s;
}

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

void stackfree(StackOwner* g, const Stack& s, const char* why) { stackfree_moved(g, s, why, nullptr); }

void stackfree_moved(StackOwner* g, const Stack& s, const char* why, const StackMoveRecord* moved) {
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
      if (s.kind == StackKind::copying && !(dbg & kCopyCacheBypass) && copycache_put(s)) break;
      stackfree_system(g, s, dbg, why, moved);
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
  const std::size_t keep = stack_keep_kind == StackKind::copying ? copying_geom.min : geom.size;
  stack_keep_size.store(d.faultonfree || d.poison ? 0 : keep, std::memory_order_relaxed);
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
  st.copying_cached = copycache_bytes.load(std::memory_order_relaxed);
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
  st.stacks_committed += system_live.resident();
  copystack_stats(st);
  return st;
}

}  // namespace gort::rt
