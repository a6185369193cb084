// The channel (Go's hchan) and the steps that chan.cpp and select.cpp share.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gort/chan.hpp"
#include "sched/lock.hpp"
#include "sched/sudog.hpp"

namespace gort::detail {

// hchan is Go's: a circular buffer of dataqsiz slots and the queues of waiting
// receivers and senders, all under lock. A waiting receiver implies an empty
// buffer and a waiting sender a full one, so a value is handed straight to a
// waiter whenever there is one.
// dataqsiz, buf and ops are set by makechan and never change.
struct hchan {
  rt::Lock lock;
  bool closed GUARDED_BY(lock) = false;
  std::size_t qcount GUARDED_BY(lock) = 0;  // values in buf
  std::size_t dataqsiz = 0;                 // capacity
  std::size_t sendx GUARDED_BY(lock) = 0;   // next slot to fill
  std::size_t recvx GUARDED_BY(lock) = 0;   // next slot to take
  unsigned char* buf = nullptr;
  const elemops* ops = nullptr;
  rt::WaitQ recvq GUARDED_BY(lock);  // Sudog::elem: a std::optional<T> to fill
  rt::WaitQ sendq GUARDED_BY(lock);  // Sudog::elem: the T to send
  std::atomic<std::size_t> refs{1};  // Chan handles (and pending after() timers)

  void* slot(std::size_t i) { return buf + i * ops->size; }
  // advance() steps a buffer index (sendx, recvx) round the ring.
  void advance(std::size_t& x) const {
    if (++x == dataqsiz) x = 0;
  }
};

}  // namespace gort::detail

namespace gort::rt {

using gort::detail::hchan;

// selectwait is what the records of one blocked select share. Each record's
// Sudog::selectdone points at done, its first member, which is how a waker
// finds the rest.
//
// A select waits on several channel locks, but may release them only once it
// is parked (goready on a goroutine that has not parked yet is fatal, and its
// timeout timer is armed only then), and park_waiter_until releases one Lock.
// So the select takes parked before releasing the channel locks and parks with
// it; a waker that fired one of its records takes parked once, after releasing
// its own channel lock, before readying it (readysudog).
struct selectwait {
  std::atomic<std::uint32_t> done{0};
  Lock parked;
  Sudog* fired = nullptr;  // the record its waker fired; nullptr: timed out

  static selectwait* of(Sudog* sg) { return reinterpret_cast<selectwait*>(sg->selectdone); }
};

// chanlock() takes c's lock for m's P: without a locked instruction once the
// lock is biased to that P (lock.hpp). m: the caller's M (nullptr on a plain
// thread); inside gort::syscall its P is null, and it takes the CAS path.
inline void chanlock(hchan* c, M* m) ACQUIRE(c->lock) { c->lock.lock_biased(m != nullptr ? m->p : nullptr); }
inline void chanlock(hchan* c) ACQUIRE(c->lock) { chanlock(c, getm()); }

// What a channel operation found it could do without waiting.
enum class chanstate { blocked, done, closed };

// trysend() and tryrecv() do what a send or receive of ep can do at once; c->lock
// is held. A peer taken from a wait queue comes back in *wake, to be readied
// (readysudog) once every lock is released. trysend reports closed first;
// tryrecv reports closed only once the buffer is drained (ep stays empty).
// Inline, as readysudog: they are the core of every channel operation.
[[gnu::always_inline]] inline chanstate trysend(hchan* c, void* ep, Sudog** wake) REQUIRES(c->lock) {
  if (c->closed) return chanstate::closed;
  if (Sudog* sg = c->recvq.dequeue()) {
    // A receiver waits, so the buffer is empty: straight into its slot.
    c->ops->emplace(sg->elem, ep);
    sg->success = true;
    *wake = sg;
    return chanstate::done;
  }
  if (c->qcount < c->dataqsiz) {
    c->ops->construct(c->slot(c->sendx), ep);
    c->advance(c->sendx);
    c->qcount++;
    return chanstate::done;
  }
  return chanstate::blocked;
}

[[gnu::always_inline]] inline chanstate tryrecv(hchan* c, void* ep, Sudog** wake) REQUIRES(c->lock) {
  if (Sudog* sg = c->sendq.dequeue()) {
    if (c->dataqsiz == 0) {
      c->ops->emplace(ep, sg->elem);
    } else {
      // A sender waits, so the buffer is full: take its head and put the
      // sender's value at its tail (the same slot), keeping FIFO order.
      void* head = c->slot(c->recvx);
      c->ops->emplace(ep, head);
      c->ops->destroy(head);
      c->ops->construct(head, sg->elem);
      c->advance(c->recvx);
      c->sendx = c->recvx;
    }
    sg->success = true;
    *wake = sg;
    return chanstate::done;
  }
  if (c->qcount > 0) {
    void* head = c->slot(c->recvx);
    c->ops->emplace(ep, head);
    c->ops->destroy(head);
    c->advance(c->recvx);
    c->qcount--;
    return chanstate::done;
  }
  return c->closed ? chanstate::closed : chanstate::blocked;
}

// readysudog() wakes the owner of sg, which a channel operation took from a wait
// queue and completed. Precondition: no channel lock is held.
[[gnu::always_inline]] inline void readysudog(Sudog* sg) {
  if (sg->selectdone != nullptr) {
    selectwait* sw = selectwait::of(sg);
    sw->fired = sg;
    sw->parked.lock();  // the select is parked once it has released this
    sw->parked.unlock();
  }
  ready_waiter(*sg);
}

// panic_send_closed() throws Go's "send on closed channel".
[[noreturn]] void panic_send_closed();

}  // namespace gort::rt
