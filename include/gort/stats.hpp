// gort::StackStats: memory statistics of goroutine stacks; gort::Stats: the
// scheduler's, with them.
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
  StackOriginStats system;    // stackfromsystem, and copying stacks: one mmap each
  std::uint64_t cached = 0;          // default-size stacks idle in per-M caches
  std::uint64_t pooled = 0;          // default-size stacks idle in the global pool
  std::uint64_t copying_cached = 0;  // bytes of copying stacks idle in per-thread caches, guards included
  std::uint64_t faulted = 0;         // stacks freed under stackfaultonfree
  std::uint64_t faulted_bytes = 0;   // their bytes, guards included
  std::uint64_t refills = 0;         // stackcacherefill batches
  std::uint64_t releases = 0;        // stackcacherelease batches
  std::uint64_t trims = 0;           // cached stacks whose deep pages were released
  // copystack (relocatable goroutines): stacks moved to a larger region, the
  // bytes copied, the words adjusted because they pointed into the old
  // region (registers included), and the time spent copying, in ns.
  std::uint64_t copies = 0;
  std::uint64_t copy_bytes = 0;
  std::uint64_t copy_words_adjusted = 0;
  std::uint64_t copy_ns = 0;
  const char* guard_mode = "";       // "madv_guard" or "mprotect"
};

// Stats is a snapshot of the scheduler (gort::stats()), named after Go's
// GODEBUG=schedtrace output. Nothing is stopped to take it: the per-state counts
// are read one goroutine at a time while goroutines change state, so they need
// not add up to goroutines.
struct Stats {
  std::uint64_t goroutines = 0;  // live: started and not yet exited
  std::uint64_t runnable = 0;    // queued, waiting for a processor
  std::uint64_t running = 0;     // running on a thread
  std::uint64_t waiting = 0;     // parked: channel, lock, sleep, I/O
  std::uint64_t syscall = 0;     // in gort::syscall
  int ms = 0;           // threads made to run goroutines (Ms), idle ones included
  int idle_ms = 0;      // of them, parked with nothing to do
  int spinning_ms = 0;  // of them, looking for work to steal
  int ps = 0;           // processors (Ps): goroutines that can run at once
  int idle_ps = 0;      // of them, unused
  int global_runq = 0;  // goroutines in the global run queue
  std::uint64_t spawns = 0;  // goroutines started since the runtime started
  std::uint64_t steals = 0;  // successful steals of half a run queue
  std::uint64_t parks = 0;   // times a goroutine parked
  // Backstops that ran work a missed wake-up left waiting (src/sched/backstop.hpp);
  // each is a bug in a hand-off, so both stay 0 in a healthy run.
  std::uint64_t kickidle_rescues = 0;  // sysmon started an M: work waited >1 ms with every P idle
  std::uint64_t lockpoll_rescues = 0;  // a runtime lock's sleeper found it free at its poll (no membarrier)
  const char* io_backend = "";  // "io_uring" or "epoll" (conf io.backend)
  StackStats stacks;         // gort::stack_stats()
};

}  // namespace gort
