// Timers: a 4-ary min-heap per P, as in Go since 1.14 (issue 6239: a global
// timer heap was a bottleneck). Idle Ms sleep until the earliest timer of any P.
#pragma once

#include <atomic>
#include <cstdint>

namespace gort::rt {

struct P;

// RuntimeTimer is Go's runtime timer (gort::Timer, the public one, is built on
// it in timerchan.cpp): a deadline and a function run on a P's M.
struct RuntimeTimer {
  std::int64_t when = 0;    // nanotime() deadline
  std::int64_t period = 0;  // > 0: fires again every period ns
  // f runs on an M with a P, with no runtime lock held. It must not block.
  void (*f)(void* arg) = nullptr;
  void* arg = nullptr;
  // Only the M holding the P whose heap has the timer may run it (io_uring
  // deadlines act on that P's ring); other Ms' checktimers stop at it.
  bool owneronly = false;
  // In a heap: its P and index, under that P's timerslock.
  std::atomic<P*> pp{nullptr};
  int index = -1;
};

// addtimer() schedules t (not already scheduled) on the caller's P, or on a P
// chosen at random from a plain thread, and wakes an M if one must sleep less.
void addtimer(RuntimeTimer* t);
// deltimer() unschedules t; false if it was not pending (already fired or firing).
bool deltimer(RuntimeTimer* t);
// checktimers() runs p's timers that are due by now.
void checktimers(P* p, std::int64_t now);
// timers_earliest() is the earliest deadline over all Ps, 0 if none.
std::int64_t timers_earliest();

}  // namespace gort::rt
