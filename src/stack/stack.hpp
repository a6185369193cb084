// Goroutine stacks: stackalloc and stackfree, named as in Go's runtime/stack.go.
//
// A stack is one region [guard][usable ............ hi), growing down. Its
// origin says where it came from and so where it must go back (getting this
// wrong was the 2014 Go bug, CL 72440043, this project starts from):
//
//   cache     default size (stack.size), from the per-M cache, which refills
//             from and releases to a global pool in batches; the pool carves
//             spans mapped out of large reservations. Never unmapped.
//   malloced  any other size, from a dedicated jemalloc arena.
//   system    stackfromsystem mode, and every copying stack (for now: see
//             docs/stacks.md "Copying stacks"): each stack its own mmap; freed
//             by SysFree, or SysFault under stackfaultonfree so any later touch
//             faults. Allocation and free are async-signal-safe, because
//             copystack runs them in the fault handler.
//
// Invariants (a violation is a fatal error):
//  1. owner.stacksize == usable bytes of every stack the owner holds, after every
//     stackalloc and stackfree; they are the only code that changes it.
//  2. A stack is freed to the place its origin says, exactly once.
//  3. A cache-origin stack has the cache's size; any other size is malloced or system.
//  4. stack_stats() counters equal the sums over live stacks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/config.hpp"
#include "gort/stats.hpp"

namespace gort::rt {

enum class StackOrigin : std::uint8_t { cache, malloced, system };

// How a stack grows (docs/stacks.md "Kinds"): a stable stack never moves; a
// copying one (a relocatable goroutine's) is a power of two between
// stack.copying_min and stack.copying_max, and copystack moves it to a region
// twice as large when it runs into its guard.
enum class StackKind : std::uint8_t { stable, copying };

struct Stack {
  std::uintptr_t lo = 0;   // lowest usable byte
  std::uintptr_t hi = 0;   // one past the highest usable byte
  std::uint32_t guard = 0;  // bytes of guard just below lo
  StackOrigin origin = StackOrigin::cache;
  StackKind kind = StackKind::stable;

  std::size_t size() const { return hi - lo; }
  std::uintptr_t base() const { return lo - guard; }  // start of the whole region
  bool empty() const { return hi == 0; }
};

// The part of a goroutine the stack layer knows: who is charged for a stack.
// The scheduler's G derives from it.
struct StackOwner {
  Stack stack;                // the stack the owner runs on (set by its user)
  std::uint64_t goid = 0;     // reported by the fault handler
  std::size_t stacksize = 0;  // invariant 1
  // Copying stacks only. nomove names the runtime path the owner is in while
  // something outside its stack points into it (a waiter record linked into a
  // channel, an I/O submission): a guard fault then cannot move the stack and
  // is a fatal error naming the path. stackneed is the headroom morestack()
  // asks the fault handler for.
  const char* nomove = nullptr;
  std::size_t stackneed = 0;
};

// stackinit() applies the stack part of cfg; called once by runtime_init before
// any stackalloc. Sizes and guards are fixed from then on.
void stackinit(const Config& cfg);

// stack_default_size() is stack.size, the size served by the caches.
std::size_t stack_default_size();

// The size a stack must have for an exited goroutine's G to keep it (gfput):
// stack.size, or 0 (no stack is kept) while stackfaultonfree or stackpoison is
// on. Those modes exist to catch a pointer into an exited goroutine's stack,
// which a stack kept for the G's next goroutine would let through silently.
// Written by stackinit and set_stack_debug; read through stack_keep_on_exit.
extern std::atomic<std::size_t> stack_keep_size;

// stack_keep_kind is the kind of the stacks free Gs keep: the kind a goroutine
// gets without GoOptions (stack.kind). Kept copying stacks have copying_min
// bytes, so stack_keep_size is copying_min then. Fixed by stackinit.
extern StackKind stack_keep_kind;

// stack_keep_on_exit() says whether the G of an exited goroutine keeps s for
// its next goroutine instead of freeing it: s has the default kind and size.
inline bool stack_keep_on_exit(const Stack& s) {
  return !s.empty() && s.size() == stack_keep_size.load(std::memory_order_relaxed) && s.kind == stack_keep_kind;
}

// stackalloc() returns a fresh stack of n usable bytes (0 means stack.size) and
// charges it to g. n is rounded up to whole pages. Never fails: running out of
// memory is a fatal error.
Stack stackalloc(StackOwner* g, std::size_t n = 0);

// stackalloc_copying() returns a fresh copying stack of n usable bytes, a power
// of two in [copying_min, copying_max], charged to g. Async-signal-safe (the
// fault handler grows stacks with it); never fails, as stackalloc.
Stack stackalloc_copying(StackOwner* g, std::size_t n);

// The bounds of copying stacks (stack.copying_min, stack.copying_max), and
// whether goroutines are relocatable unless their GoOptions say otherwise
// (stack.kind). Fixed by stackinit.
struct CopyingGeometry {
  std::size_t min = 4096;
  std::size_t max = std::size_t{1} << 30;
  bool by_default = false;
  // False in ASan and TSan builds: their shadow memory and fiber records do
  // not follow a moved stack, so relocatable goroutines run stable there, on
  // stable_fallback bytes: a thread's default 8 MiB, or max if smaller.
  bool supported = true;
  std::size_t stable_fallback = std::size_t{8} << 20;
};
extern CopyingGeometry copying_geom;

// copying_class() is the copying stack size serving a request of n usable
// bytes: n rounded up to a power of two, at least copying_min.
std::size_t copying_class(std::size_t n);

// stackfree() returns s, which g holds, to where its origin says. why is kept
// for the fault handler's report when the stack is faulted (stackfaultonfree).
void stackfree(StackOwner* g, const Stack& s, const char* why = "freed by stackfree");

// What copystack remembers of a move for the report of a later touch of the
// old region under stackfaultonfree ("use of moved stack"): the new bounds and
// the return addresses of the frames that were running when it moved.
constexpr int kMoveFrames = 16;
struct StackMoveRecord {
  std::uintptr_t newlo = 0, newhi = 0;
  int npcs = 0;
  std::uintptr_t pcs[kMoveFrames] = {};
};

// stackfree_moved() is stackfree() for the old region of a stack copystack
// moved: under stackfaultonfree the report of a later touch shows moved.
// Async-signal-safe for copying stacks.
void stackfree_moved(StackOwner* g, const Stack& s, const char* why, const StackMoveRecord* moved);

// set_stack_debug() switches the debug modes at run time. Stacks keep the origin
// they were allocated with, so a mode switch never frees a stack to the wrong place.
void set_stack_debug(const StackDebug& d);
StackDebug stack_debug();

// stack_stats() returns a snapshot of the stack memory statistics.
StackStats stack_stats();

// stackcache_flush() releases the calling M's cached stacks to the global pool
// (an M does this before it exits).
void stackcache_flush();

// copycache_flush() frees the copying stacks the calling thread keeps idle
// (an M does this before it exits). Not on a goroutine.
void copycache_flush();

// Batching constants, as Go 1.3 named them: an M caches up to StackCacheSize
// default-size stacks and moves StackCacheBatch at a time to and from the pool,
// so an M alternating alloc and free at a boundary does not thrash the pool lock.
constexpr int kStackCacheSize = 32;
constexpr int kStackCacheBatch = 16;

}  // namespace gort::rt
