// Channels: Go's runtime/chan.go for C++ values (timerchan.cpp has the timers
// that deliver on channels).
//
// The algorithm is not a template: elements move through the three functions
// of the channel's elemops (chan.hpp), and a waiter's value lives where it
// waits (the sender's T, the receiver's std::optional<T>), so a hand-off to a
// waiter copies straight from one stack to the other with no allocation.
//
// Waiting: a waiter is a Sudog on the waiting goroutine's (or thread's) stack,
// linked from G::waiting. A goroutine parks with its channel's lock, which
// the scheduler releases once it is off its stack; a plain thread releases the
// lock and sleeps on a Note (sudog.hpp). The waker completes the exchange under
// the lock (Sudog::success: value or close), releases the lock, then readies
// the waiter: on one P that switches straight to it (gopark/goready's runnext).
#include <algorithm>
#include <chrono>
#include <limits>
#include <new>

#include "base/print.hpp"
#include "sched/chan_impl.hpp"
#include "sched/runtime.hpp"
#include "sched/stackmove.hpp"
#include "sched/time.hpp"

namespace gort::rt {

namespace {

// chanpark() queues the caller, goroutine gp running on m (checkpreempt()'s M
// and its getgp_parkable(): both null off a P), on q (c's recvq or sendq) with
// ep and blocks until a peer or close completes it. c->lock is held; it is
// released once the caller is parked. Returns true if a peer completed the
// exchange, false if c was closed.
[[gnu::always_inline]] inline bool chanpark(hchan* c, WaitQ& q, void* ep, WaitReason reason, M* m, G* gp)
    RELEASE(c->lock) {
  NoMove nomove(gp, "a channel send or receive");
  Note note;  // a plain thread sleeps on it
  Sudog s;
  waiter_init(s, &note, gp);
  s.elem = ep;
  s.c = c;
  if (s.g != nullptr) s.g->waiting = &s;
  q.enqueue(&s);
  park_waiter(s, c->lock, reason, m);
  if (s.g != nullptr) s.g->waiting = nullptr;
  return s.success;
}

}  // namespace

void panic_send_closed() { throw gort::panic_error("send on closed channel"); }

}  // namespace gort::rt

namespace gort::detail {

using namespace gort::rt;

namespace {

std::size_t bufoffset(const elemops* ops) {
  return (sizeof(hchan) + ops->align - 1) / ops->align * ops->align;
}

std::align_val_t chanalign(const elemops* ops) { return std::align_val_t{std::max(ops->align, alignof(hchan))}; }

}  // namespace

// The channel and its buffer are one allocation.
hchan* makechan(const elemops* ops, std::size_t cap) {
  const std::size_t off = bufoffset(ops);
  if (cap > (std::numeric_limits<std::size_t>::max() - off) / ops->size) {
    throw std::length_error("gort::Chan: capacity out of range");
  }
  void* mem = ::operator new(off + cap * ops->size, chanalign(ops));
  auto* c = ::new (mem) hchan;
  c->lock.allow_bias();
  c->dataqsiz = cap;
  c->buf = static_cast<unsigned char*>(mem) + off;
  c->ops = ops;
  return c;
}

void chanretain(hchan* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

// Not checked by -Wthread-safety: the last handle's release reads c unlocked,
// as nothing else can reach c any more.
void chanrelease(hchan* c) noexcept NO_THREAD_SAFETY_ANALYSIS {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Whoever waits on a channel holds a handle to it.
  if (!c->recvq.empty() || !c->sendq.empty()) fatal("chan: last handle released while operations wait on it");
  for (; c->qcount > 0; c->qcount--) {
    c->ops->destroy(c->slot(c->recvx));
    c->advance(c->recvx);
  }
  const std::align_val_t al = chanalign(c->ops);
  c->~hchan();
  ::operator delete(c, al);
}

namespace {

// sendlocked() and recvlocked() are chansend and chanrecv once the caller,
// goroutine gp running on m (both null off a P), holds c->lock.
[[gnu::always_inline]] inline bool sendlocked(hchan* c, void* ep, bool block, M* m, G* gp) RELEASE(c->lock) {
  Sudog* sg = nullptr;
  switch (trysend(c, ep, &sg)) {
    case chanstate::done:
      c->lock.unlock();
      if (sg != nullptr) readysudog(sg);
      return true;
    case chanstate::closed:
      c->lock.unlock();
      panic_send_closed();
    case chanstate::blocked:
      break;
  }
  if (!block) {
    c->lock.unlock();
    return false;
  }
  if (!chanpark(c, c->sendq, ep, WaitReason::chan_send, m, gp)) panic_send_closed();  // closed while waiting
  return true;
}

[[gnu::always_inline]] inline bool recvlocked(hchan* c, void* ep, bool block, M* m, G* gp) RELEASE(c->lock) {
  Sudog* sg = nullptr;
  if (tryrecv(c, ep, &sg) != chanstate::blocked) {
    c->lock.unlock();
    if (sg != nullptr) readysudog(sg);
    return true;
  }
  if (!block) {
    c->lock.unlock();
    return false;
  }
  chanpark(c, c->recvq, ep, WaitReason::chan_receive, m, gp);
  return true;
}

using LockedOp = bool (*)(hchan*, void*, bool, M*, G*);

// chanop_slow() is chanop past its common case: a caller off Ps, a yield
// sysmon asked for, or a lock that is not biased to the caller's P. It and
// chanop are not checked by -Wthread-safety: op releases c->lock, but through
// a function pointer, whose contract (RELEASE) the analysis cannot see.
template <LockedOp op>
[[gnu::noinline]] bool chanop_slow(hchan* c, void* ep, bool block) NO_THREAD_SAFETY_ANALYSIS {
  M* m = checkpreempt();
  chanlock(c, m);
  return op(c, ep, block, m, getgp_parkable(m));
}

// chanop() runs op with c->lock held, at a safe point (checkpreempt). Its
// common case, a goroutine whose P the lock is biased to, takes the lock
// inline and calls nothing before op: the rarer paths are out of line
// (chanop_slow), so that chansend and chanrecv keep few registers across
// their calls and push few on entry. It reads the M's fields once, before
// the safe point's count (a store the compiler cannot tell from them).
template <LockedOp op>
[[gnu::always_inline]] inline bool chanop(hchan* c, void* ep, bool block) NO_THREAD_SAFETY_ANALYSIS {
  M* m = getm();
  G* gp;
  P* p;
  if (m == nullptr || (gp = m->curg) == nullptr || (p = m->p) == nullptr ||
      gp->preempt.load(std::memory_order_relaxed) || !c->lock.try_lock_biased(p)) [[unlikely]] {
    return chanop_slow<op>(c, ep, block);
  }
  countsafepoint(p);
  return op(c, ep, block, m, gp);
}

}  // namespace

bool chansend(hchan* c, void* ep, bool block) { return chanop<sendlocked>(c, ep, block); }

bool chanrecv(hchan* c, void* ep, bool block) { return chanop<recvlocked>(c, ep, block); }

void closechan(hchan* c) {
  chanlock(c);
  if (c->closed) {
    c->lock.unlock();
    throw gort::panic_error("close of closed channel");
  }
  c->closed = true;
  // Receivers get no value and senders panic. Collect them and ready them once
  // the lock is released, so that it is not held across thousands of wakeups.
  // Both loops count safe points: for a million waiters they take tens of ms,
  // runtime work that sysmon must not report as a loop without runtime calls.
  Sudog* woken = nullptr;
  for (WaitQ* q : {&c->recvq, &c->sendq}) {
    while (Sudog* sg = q->dequeue()) {
      sg->success = false;
      sg->next = woken;
      woken = sg;
      safepoint();
    }
  }
  c->lock.unlock();
  while (woken != nullptr) {
    Sudog* sg = woken;
    woken = sg->next;  // before sg's owner may return
    readysudog(sg);
    safepoint();
  }
}

std::size_t chanlen(hchan* c) {
  chanlock(c);
  const std::size_t n = c->qcount;
  c->lock.unlock();
  return n;
}

std::size_t chancap(hchan* c) noexcept { return c->dataqsiz; }

}  // namespace gort::detail
