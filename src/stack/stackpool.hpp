// Internal to src/stack: the per-M stack caches and the global pool behind them.
//
// Locking and ownership:
//  1. A StackCache belongs to one M (thread) and only that M touches its stack
//     array; counters are relaxed atomics so stack_stats() may read them.
//  2. pool.mu guards the pool's free list, its arenas and the cache registry.
//     It is taken only by refill/release (once per kStackCacheBatch stacks), in
//     stacknocache mode, and by stack_stats(); never while holding another lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "stack/stack.hpp"

namespace gort::rt {

struct StackCache {
  std::uintptr_t stk[kStackCacheSize];   // lo of each cached stack; [0, n) valid
  std::atomic<int> n{0};
  std::atomic<std::int64_t> inuse{0};    // cache-origin stacks allocated by this M minus freed
  std::atomic<std::uint64_t> trims{0};
  StackCache* next = nullptr;            // registry link, under pool.mu
};

// Geometry of cache-origin stacks, fixed by stackinit().
struct StackGeometry {
  std::size_t size = 0;   // usable bytes (stack.size)
  std::size_t guard = 0;  // guard bytes below lo
  std::size_t keep = 0;   // bytes kept committed at the top of an idle stack
  std::size_t region() const { return size + guard; }
};
extern StackGeometry geom;

// mcache() is the calling M's cache, created on first use.
StackCache* mcache();
// stackcacherefill() moves kStackCacheBatch stacks from the pool into c.
void stackcacherefill(StackCache* c);
// stackcacherelease() moves kStackCacheBatch stacks from c to the pool.
void stackcacherelease(StackCache* c);
// stackpool_get() takes one stack from the pool (stacknocache). Returns its lo.
std::uintptr_t stackpool_get();
// stackpool_put() returns one stack to the pool (stacknocache).
void stackpool_put(std::uintptr_t lo);
// stacktrim() releases the pages of an idle cache-origin stack below its top
// stack.cache_keep bytes, if it may have been used that deep.
void stacktrim(StackCache* c, std::uintptr_t lo, bool always);
// stackpool_stats() adds the pool's and the caches' part to st.
void stackpool_stats(StackStats& st);
// stackpool_init() reads the geometry.
void stackpool_init(const Config& cfg);

// fatal_stack_alloc() reports that an n-byte stack could not be had and exits 2.
[[noreturn]] void fatal_stack_alloc(std::size_t n, const char* what, int err);

}  // namespace gort::rt

namespace gort::rt {
// stackdebug_level() is the current stackdebug level (0-4).
int stackdebug_level();
}  // namespace gort::rt
