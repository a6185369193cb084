// gort::StackStats: memory statistics of goroutine stacks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gort {

// Per-origin counters: how many stacks, and their usable bytes (guards excluded).
struct StackOriginStats {
  std::uint64_t count = 0;  // stacks of this origin held by goroutines
  std::uint64_t bytes = 0;  // their usable bytes
};

// StackStats is a snapshot; fields are named after Go's runtime.MemStats.
struct StackStats {
  // Bytes of stacks held by goroutines (usable size, guards excluded): the sum of
  // every owner's stacksize.
  std::uint64_t stacks_inuse = 0;
  // Bytes of address space obtained from the system for stacks: pool spans, system
  // stacks and jemalloc blocks including their guards, and faulted (freed under
  // stackfaultonfree) stacks, which stay reserved for ever.
  std::uint64_t stacks_sys = 0;
  // Bytes of stack memory really resident (mincore over pool spans and system
  // stacks, jemalloc's resident count for its arena). Computed by stack_stats().
  std::uint64_t stacks_committed = 0;
  StackOriginStats cache;     // default-size stacks from the per-M caches and pool
  StackOriginStats malloced;  // other sizes, from jemalloc
  StackOriginStats system;    // stackfromsystem: one mmap each
  std::uint64_t cached = 0;          // default-size stacks idle in per-M caches
  std::uint64_t pooled = 0;          // default-size stacks idle in the global pool
  std::uint64_t faulted = 0;         // stacks freed under stackfaultonfree
  std::uint64_t faulted_bytes = 0;   // their bytes, guards included
  std::uint64_t refills = 0;         // stackcacherefill batches
  std::uint64_t releases = 0;        // stackcacherelease batches
  std::uint64_t trims = 0;           // cached stacks whose deep pages were released
  const char* guard_mode = "";       // "madv_guard" or "mprotect"
};

}  // namespace gort
