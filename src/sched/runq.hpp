// Run queues (rule 1 of runtime.hpp): each P's 256-slot ring and runnext, and
// the global queue, named as in Go's proc.go.
//
// The owner's operations are inline here: taking the next goroutine and
// putting one back are half of every switch, and a call, its frame and a
// second load of the P cost a measurable share of a ~8 ns yield. Everything a
// stealer or the global queue does, and the rare branches of the owner's
// operations, are out of line in runq.cpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "sched/runtime.hpp"

namespace gort::rt {

// runqroom() is how many more Gs p's ring takes before overflowing. Owner only.
int runqroom(P* p);
// runqempty() is true when p has nothing queued, runnext included. Any M.
bool runqempty(P* p);
// runqput() queues gp on p; with next, into runnext. Only p's owner calls it.
void runqput(P* p, G* gp, bool next);
// runqput_outofline() is runqput past its inline path: swap a taken runnext,
// or queue at the ring's tail (half of a full ring goes to the global queue).
void runqput_outofline(P* p, G* gp, bool next);
// globrunqput() appends gp to the global run queue, taking sched.lock.
void globrunqput(G* gp);
// globrunqget() takes a fair share of the global queue for p (at most max when
// max > 0) and returns one G of it to run. sched.lock held; p held.
G* globrunqget(P* p, int max) REQUIRES(sched.lock);
// runqsteal() moves half of p2's queue to pp's (with stealnext, p2's runnext
// when its ring is empty) and returns one G to run, or nullptr. pp held.
G* runqsteal(P* pp, P* p2, bool stealnext);
// runnext_steal() takes p's runnext for another P's M (rule 1), after watching
// p for ~3 us: only if p neither scheduled nor queued anything in its ring
// meanwhile (that is stolen from the ring). nullptr otherwise; a p that
// scheduled is marked (P::nextnowake, ready.hpp).
G* runnext_steal(P* p);

// runqputtail() appends gp to p's ring if it has room. Only p's owner calls it.
// Inlined: a yield's requeue (after_switch) is half of every yield.
[[gnu::always_inline]] inline bool runqputtail(P* p, G* gp) {
  const std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
  const std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
  if (t - h >= kRunqSize) return false;
  p->runq[t % kRunqSize].store(gp, std::memory_order_relaxed);
  p->runqtail.store(t + 1, std::memory_order_release);
  return true;
}

// runnext_exchange() puts nu in p's runnext and returns what was there (nullptr
// if a stealer took it). Owner only (rule 1). Unless a stealer has announced
// itself, plain accesses suffice: a locked instruction would cost ~5 ns of
// every switch to a woken goroutine. Inlined: it is part of every such switch.
[[gnu::always_inline]] inline G* runnext_exchange(P* p, G* nu) {
  if (p->nostealers) {  // rule 1: nothing steals from a lone P, so no window either
    G* old = p->runnext.load(std::memory_order_relaxed);
    p->runnext.store(nu, std::memory_order_release);
    return old;
  }
  p->nextowner.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the load stays after the store
  G* old;
  if (p->nextstealers.load(std::memory_order_relaxed) == 0) [[likely]] {
    old = p->runnext.load(std::memory_order_relaxed);
    p->runnext.store(nu, std::memory_order_release);
  } else {
    old = p->runnext.exchange(nu, std::memory_order_acq_rel);
  }
  p->nextowner.store(0, std::memory_order_release);
  return old;
}

// runqput_inline() queues gp on p; with next, into runnext (it runs next,
// inheriting the time slice), kicking the old runnext to the tail. Only p's
// owner calls it (rule 1). True if gp went into an empty runnext, so that p
// has no more work queued than before plus gp, for the next turn.
[[gnu::always_inline]] inline bool runqput_inline(P* p, G* gp, bool next) {
  // Stealers only ever empty a full runnext (runqgrab) and only the owner
  // fills it, so an empty one stays empty until this store.
  if (next && p->runnext.load(std::memory_order_relaxed) == nullptr) {
    p->runnext.store(gp, std::memory_order_release);
    return true;
  }
  runqput_outofline(p, gp, next);
  return false;
}

// runqget() takes the next G of p: runnext first. Only p's owner calls it.
// Inlined: it is half of every switch.
[[gnu::always_inline]] inline G* runqget(P* p) {
  if (G* next = p->runnext.load(std::memory_order_relaxed)) {
    if (p->nostealers) {  // rule 1: a lone P empties it with a store
      p->runnext.store(nullptr, std::memory_order_relaxed);
      return next;
    }
    if ((next = runnext_exchange(p, nullptr)) != nullptr) return next;
  }
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    G* gp = p->runq[h % kRunqSize].load(std::memory_order_relaxed);
    // The CAS is for stealers: ~5 ns here, more than half of a 1-P yield.
    if (p->nostealers) {
      p->runqhead.store(h + 1, std::memory_order_relaxed);
      return gp;
    }
    if (p->runqhead.compare_exchange_weak(h, h + 1, std::memory_order_release)) return gp;
  }
}

}  // namespace gort::rt
