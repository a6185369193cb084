// Waiter records (Go's sudog) and wait queues, for channels, select and sync.
//
// A waiter is either a goroutine (g != nullptr), which parks with gopark, or a
// plain std::thread (g == nullptr), which sleeps on a Note: channels, mutexes,
// wait groups and semaphores work from both. Like Go's sudogs, records live on
// the waiting goroutine's stack and are linked from its G (G::waiting), so the
// later copying-stack work can find and adjust them.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/print.hpp"
#include "sched/lock.hpp"
#include "sched/ready.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

// caseindex and ticket have no default member initializer: a channel's waiter
// (chanpark) never reads them and does not pay to clear them on every park.
// select and sema, which use them, value-initialize their records (Sudog s{}).
struct Sudog {
  G* g = nullptr;       // the waiting goroutine, or nullptr for a plain thread
  Note* note = nullptr;  // a plain thread sleeps on it (shared by a select's records)
  Sudog* next = nullptr;
  Sudog* prev = nullptr;
  void* elem = nullptr;      // channels: value to send, or slot to receive into
  void* c = nullptr;         // the channel or semaphore waited on
  Sudog* waitlink = nullptr;  // G::waiting list (select's records)
  // select: the first case to fire CASes *selectdone 0 -> 1 and wins; the rest
  // of its records are dequeued by the selecting goroutine when it wakes.
  std::atomic<std::uint32_t>* selectdone = nullptr;
  int caseindex;         // select: which case this record belongs to
  bool success = false;  // channels: woken by a value (true) or by close (false)
  std::uint64_t ticket;  // semaphores: handoff/FIFO bookkeeping
};

// WaitQ is a FIFO of waiters, guarded by the owner's Lock. Inline, as are the
// waiter functions below: they are most of a channel operation that waits.
struct WaitQ {
  Sudog* first = nullptr;
  Sudog* last = nullptr;

  // enqueue() appends s.
  void enqueue(Sudog* s) {
    s->next = nullptr;
    s->prev = last;
    if (last != nullptr) last->next = s;
    else first = s;
    last = s;
  }
  // dequeue() removes and returns the first waiter that can be woken: for select
  // records, only one whose select has not fired yet (and it marks it fired).
  Sudog* dequeue() {
    while (Sudog* s = first) {
      // remove(s) for the head, whose prev is null: every channel hand-off
      // passes here.
      first = s->next;
      if (first != nullptr) first->prev = nullptr;
      else last = nullptr;
      s->next = nullptr;
      if (s->selectdone != nullptr) {
        std::uint32_t z = 0;
        // Another case of that select already fired: skip the stale record.
        if (!s->selectdone->compare_exchange_strong(z, 1, std::memory_order_acq_rel)) continue;
      }
      return s;
    }
    return nullptr;
  }
  // remove() unlinks s if it is queued (select cleanup).
  void remove(Sudog* s) {
    if (s->prev == nullptr && first != s) return;  // not queued
    if (s->prev != nullptr) s->prev->next = s->next;
    else first = s->next;
    if (s->next != nullptr) s->next->prev = s->prev;
    else last = s->prev;
    s->next = s->prev = nullptr;
  }
  bool empty() const { return first == nullptr; }
};

// waiter_init() fills s for the caller, whose getgp_parkable() is gp (callers
// that have it pass it): its G, or, on a plain thread, note.
inline void waiter_init(Sudog& s, Note* note, G* gp) {
  s.g = gp;
  s.note = gp == nullptr ? note : nullptr;
  if (gp == nullptr && note == nullptr) fatal("waiter_init: a plain thread needs a note");
}
inline void waiter_init(Sudog& s, Note* note) { waiter_init(s, note, getgp_parkable()); }

// park_waiter() blocks the caller, running on m, until ready_waiter(s).
// Preconditions: waiter_init(s) ran on m, l is held and s is where a waker
// will find it; l is released once the caller is parked (a goroutine: off its
// stack; a thread: before it sleeps).
inline void park_waiter(Sudog& s, Lock& l, WaitReason reason, M* m) RELEASE(l) {
  if (s.g != nullptr) {
    goparkunlock(m, s.g, &l, reason);
    return;
  }
  l.unlock();
  s.note->sleep();
}
inline void park_waiter(Sudog& s, Lock& l, WaitReason reason) RELEASE(l) { park_waiter(s, l, reason, getm()); }

// park_waiter_until() is park_waiter() with a deadline (nanotime(), 0: none).
// s.selectdone must be set: the timeout and the wakers race for it (0 -> 1) and
// only the winner wakes the caller. Returns false if the timeout won; the
// caller's records may then still be queued: it takes the lock and removes them.
bool park_waiter_until(Sudog& s, Lock& l, WaitReason reason, std::int64_t deadline) RELEASE(l);

// ready_waiter() wakes the waiter of s. Precondition: s has been taken off every
// queue; s must not be touched afterwards (its owner may return at once).
// Inline, with goready: it ends every hand-off to a waiter.
[[gnu::always_inline]] inline void ready_waiter(Sudog& s) {
  if (s.g != nullptr) {
    goready_inline(s.g);
    return;
  }
  s.note->wakeup();
}

}  // namespace gort::rt
