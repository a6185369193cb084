// Making a goroutine runnable: goready's body, inline.
//
// Every hand-off to a waiter (a channel's, a semaphore's) ends in a wake-up,
// so ready_waiter (sudog.hpp) inlines it, as the scheduler does: the call,
// its frame and a second getm() were 10 of a 1-P channel round trip's ~600
// instructions. The rare branches (a full runnext, a caller without a P, an
// idle P to wake) stay out of line.
#pragma once

#include "base/print.hpp"
#include "sched/runq.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

// ready() queues a runnable gp to run next on the caller's P, or globally from
// a thread without one, and wakes an idle P if there is one, unless gp waits
// alone in the runnext of a P seen serving its runnext itself (nextnowake).
//
// Go wakes one on every ready. A ping-pong pair (a request and its reply, a
// mutex handed back and forth) then wakes the idle P's M over and over for a
// goroutine its own P runs ~20 ns later: the M spins, finds the runnext gone
// each time, parks, and the next ready wakes it again. On 2 Ps that cost the
// pair a futex wake per spell, the spinning (which slows the pair's vCPU: the
// two share a physical core here), and a runnext steal, with a membarrier and
// a channel bias revoked, whenever the pair's vCPU stalled for 3 us: a 2-P
// round trip cost well over a 1-P one (figures: bench/results/
// 2026-12-04-history-from-docs.txt). A stealer that watched a P
// schedule before it could take its runnext (runnext_steal) marks the P, and
// until sysmon's next look clears the mark a lone runnext wakes nobody: if the
// readier then computes instead of parking, sysmon wakes an idle P for it, one
// look (<= 10 ms) late, where Go's stealer would come after roughly 80 us.
[[gnu::always_inline]] inline void ready(G* gp) {
  M* m = getm();
  if (m != nullptr && m->p != nullptr) {
    P* p = m->p;
    if (runqput_inline(p, gp, true) && p->nextnowake.load(std::memory_order_relaxed)) return;
  } else {
    globrunqput(gp);
  }
  wakep();
}

// goready_inline() is goready (runtime.hpp) for the paths that inline it.
[[gnu::always_inline]] inline void goready_inline(G* gp) {
  // Every caller owns the wake-up it delivers (it dequeued the waiter under the
  // lock the goroutine parked with, or won a selectdone or wake-word CAS), so
  // this is a check and a store, not a CAS: a locked instruction costs ~5 ns
  // here, ~4% of a channel round trip.
  if (gp->status.load(std::memory_order_acquire) != Gstatus::waiting) fatal("goready: goroutine not waiting");
  gp->status.store(Gstatus::runnable, std::memory_order_release);
  ready(gp);
}

}  // namespace gort::rt
