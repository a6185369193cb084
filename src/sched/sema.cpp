// Semaphores and notify lists for gort's sync package: Go's runtime/sema.go.
//
// The sync objects (include/gort/sync.hpp) are plain words: a Mutex is a state
// word and a semaphore count. Their waiters are kept here, in semtable: a fixed
// table of buckets chosen by hashing the address waited on, each bucket with a
// Lock and, per address that has waiters, a SemaRoot holding their FIFO queue.
//
// Why a table keyed by address rather than a queue inside each object: the public
// types then need no runtime internals in a public header, stay as small as Go's
// (8 bytes for a Mutex, against 40 for std::mutex), are constant-initialised, and
// need no destructor; the cost of a wait or wake is one hash and a short walk of
// the bucket's roots (one per address that has waiters, almost always one or
// none). Roots are recycled per bucket, so in steady state nothing is allocated;
// the Sudogs themselves live on the waiters' stacks (sudog.hpp).
//
// Locking rules:
//  1. A bucket's lock guards its roots, its spare roots and every waiter queue
//     in them. It is a leaf: nothing else is locked under it, and waiters are
//     readied only after it is released. It is held across a park only by being
//     handed to park_waiter, which releases it once the waiter is parked.
//  2. No lost wakeups for semacquire: it increments the bucket's nwait under the
//     lock before its last try at the count, and semrelease increments the count
//     before reading nwait without the lock; both sequentially consistent, so
//     either the releaser sees the waiter or the waiter sees the count.
//  3. A dequeued Sudog belongs to whoever dequeued it, until ready_waiter; it is
//     never touched after that (its owner may return at once). What the waiter
//     reads when it wakes (ticket) is written before ready_waiter.
//  4. A notify list's notify counter is written only under its bucket's lock;
//     the "nothing to notify" fast checks read it without.
//  5. While a weighted semaphore's queued bit is set, its state changes only
//     under its bucket's lock: the lock-free fast paths back off on seeing it.
#include "sched/sema.hpp"

#include <cstddef>

#include "sched/proc.hpp"
#include "sched/stackmove.hpp"
#include "sched/sudog.hpp"

namespace gort::rt {

namespace {

// SemaRoot is the queue of waiters on one address.
struct SemaRoot {
  const void* addr = nullptr;
  WaitQ q;
  SemaRoot* next = nullptr;
};

constexpr std::size_t kSemTabSize = 251;  // Go's semTabSize: a prime, so strides spread

struct alignas(64) SemaBucket {
  Lock lock;
  std::atomic<std::uint32_t> nwait{0};  // semacquire waiters in this bucket (rule 2)
  SemaRoot* roots GUARDED_BY(lock) = nullptr;  // addresses with waiters
  SemaRoot* spare GUARDED_BY(lock) = nullptr;  // retired roots, for reuse

  // find() returns addr's root, or nullptr if nobody waits on addr.
  SemaRoot* find(const void* addr) REQUIRES(lock) {
    for (SemaRoot* r = roots; r != nullptr; r = r->next) {
      if (r->addr == addr) return r;
    }
    return nullptr;
  }

  // queue() adds s to addr's waiters: at the tail, or with lifo at the head.
  void queue(const void* addr, Sudog* s, bool lifo) REQUIRES(lock) {
    SemaRoot* r = find(addr);
    if (r == nullptr) {
      if (spare != nullptr) {
        r = spare;
        spare = r->next;
      } else {
        r = new SemaRoot;
      }
      r->addr = addr;
      r->next = roots;
      roots = r;
    }
    if (!lifo || r->q.empty()) {
      r->q.enqueue(s);
      return;
    }
    s->prev = nullptr;
    s->next = r->q.first;
    r->q.first->prev = s;
    r->q.first = s;
  }

  // dequeue() takes the first waiter on addr, or returns nullptr.
  Sudog* dequeue(const void* addr) REQUIRES(lock) {
    SemaRoot* r = find(addr);
    if (r == nullptr) return nullptr;
    Sudog* s = r->q.dequeue();
    retire(r);
    return s;
  }

  // retire() unlinks r and keeps it for reuse if nobody waits on it any more.
  void retire(SemaRoot* r) REQUIRES(lock) {
    if (!r->q.empty()) return;
    SemaRoot** pp = &roots;
    while (*pp != r) pp = &(*pp)->next;
    *pp = r->next;
    r->addr = nullptr;
    r->next = spare;
    spare = r;
  }
};

SemaBucket semtable[kSemTabSize];

SemaBucket& semroot(const void* addr) {
  return semtable[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % kSemTabSize];
}

// Waiter is the caller's waiter record, with the Note it sleeps on if it is a
// plain thread.
struct Waiter {
  NoMove nomove{getgp_parkable(), "a semaphore or lock wait"};
  Note note;
  Sudog s{};

  Waiter(const void* addr, std::uint64_t ticket) {
    waiter_init(s, &note);
    s.c = const_cast<void*>(addr);
    s.ticket = ticket;
  }

  // park() blocks until the record is readied. Precondition: it is queued in
  // b, whose lock is held; the lock is released once the caller is parked.
  void park(SemaBucket& b, WaitReason reason) RELEASE(b.lock) {
    // Linked from the G while parked, so stack walkers can find the record.
    if (s.g != nullptr) s.g->waiting = &s;
    park_waiter(s, b.lock, reason);
    if (s.g != nullptr) s.g->waiting = nullptr;
  }
};

// readyall() wakes every waiter of q (already taken off its root).
void readyall(WaitQ& q) {
  Sudog* s = q.first;
  while (s != nullptr) {
    Sudog* next = s->next;  // read first: s is not ours once readied (rule 3)
    ready_waiter(*s);
    s = next;
  }
}

// cansemacquire() decrements *addr if it is positive.
bool cansemacquire(std::atomic<std::uint32_t>* addr) {
  std::uint32_t v = addr->load();
  while (v != 0) {
    if (addr->compare_exchange_weak(v, v - 1)) return true;
  }
  return false;
}

}  // namespace

// ---- Counting semaphores ----

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason) {
  if (cansemacquire(addr)) return;
  checkpreempt();
  SemaBucket& b = semroot(addr);
  Waiter w(addr, 0);
  for (;;) {
    b.lock.lock();
    b.nwait.fetch_add(1);  // before the last try (rule 2)
    if (cansemacquire(addr)) {
      b.nwait.fetch_sub(1);
      b.lock.unlock();
      return;
    }
    b.queue(addr, &w.s, lifo);
    w.park(b, reason);
    // Handed the count directly (ticket), or woken to compete for it.
    if (w.s.ticket != 0 || cansemacquire(addr)) return;
    w.note.clear();
  }
}

void semrelease(std::atomic<std::uint32_t>* addr, bool handoff) {
  SemaBucket& b = semroot(addr);
  addr->fetch_add(1);
  if (b.nwait.load() == 0) return;  // rule 2
  b.lock.lock();
  Sudog* s = b.nwait.load() != 0 ? b.dequeue(addr) : nullptr;
  if (s != nullptr) b.nwait.fetch_sub(1);
  b.lock.unlock();
  if (s == nullptr) return;
  // Take the count back on the waiter's behalf: it wakes owning it.
  const bool handed = handoff && cansemacquire(addr);
  if (handed) s->ticket = 1;
  const bool isg = s->g != nullptr;
  ready_waiter(*s);
  // Let the waiter (now in our runnext) run at once rather than at the end of
  // our time slice: in starvation mode it owns the mutex and everyone waits on it.
  if (handed && isg && getgp() != nullptr) gosched();
}

bool canspin(int i) {
  constexpr int kActiveSpin = 4;  // Go's active_spin
  if (i >= kActiveSpin || sched.procs <= 1 || getgp() == nullptr) return false;
  if (sched.procs <= sched.npidle.load(std::memory_order_relaxed) +
                         sched.nmspinning.load(std::memory_order_relaxed) + 1) {
    return false;
  }
  P* p = getm()->p;  // none inside gort::syscall
  return p != nullptr && runqempty(p);
}

void dospin() {
  constexpr int kActiveSpinCnt = 30;  // Go's active_spin_cnt
  for (int i = 0; i < kActiveSpinCnt; i++) __builtin_ia32_pause();
}

// ---- Notify lists ----

namespace {

// notifyless() compares tickets that may have wrapped around.
bool notifyless(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }

}  // namespace

void notifylistwait(NotifyList* l, std::uint32_t t) {
  SemaBucket& b = semroot(l);
  b.lock.lock();
  if (notifyless(t, l->notify.load())) {  // notified before we got here
    b.lock.unlock();
    return;
  }
  Waiter w(l, t);
  b.queue(l, &w.s, false);
  w.park(b, WaitReason::sync_cond_wait);
}

void notifylistnotifyone(NotifyList* l) {
  if (l->wait.load() == l->notify.load()) return;  // rule 4
  SemaBucket& b = semroot(l);
  b.lock.lock();
  const std::uint32_t t = l->notify.load(std::memory_order_relaxed);
  if (t == l->wait.load()) {
    b.lock.unlock();
    return;
  }
  l->notify.store(t + 1);
  // Ticket t's holder may not have queued yet (it took the ticket, then released
  // its lock); then it will see the new notify count and not park. Tickets are
  // taken in order and queued almost in order, so the search is short.
  Sudog* s = nullptr;
  if (SemaRoot* r = b.find(l)) {
    for (s = r->q.first; s != nullptr && s->ticket != t; s = s->next) {
    }
    if (s != nullptr) {
      r->q.remove(s);
      b.retire(r);
    }
  }
  b.lock.unlock();
  if (s != nullptr) ready_waiter(*s);
}

void notifylistnotifyall(NotifyList* l) {
  if (l->wait.load() == l->notify.load()) return;  // rule 4
  SemaBucket& b = semroot(l);
  b.lock.lock();
  WaitQ q;
  if (SemaRoot* r = b.find(l)) {
    q = r->q;
    r->q = WaitQ{};
    b.retire(r);
  }
  l->notify.store(l->wait.load());
  b.lock.unlock();
  readyall(q);
}

// ---- Weighted semaphores ----

namespace {

constexpr std::int64_t kQueued = 1;  // the state bit: waiters are queued (rule 5)

}  // namespace

bool semtryacquire_weighted(std::atomic<std::int64_t>* state, std::int64_t k) {
  std::int64_t v = state->load(std::memory_order_relaxed);
  while ((v & kQueued) == 0 && v >= semweighted(k)) {
    if (state->compare_exchange_weak(v, v - semweighted(k), std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void semacquire_weighted(std::atomic<std::int64_t>* state, std::int64_t k) {
  if (semtryacquire_weighted(state, k)) return;
  checkpreempt();
  SemaBucket& b = semroot(state);
  Waiter w(state, static_cast<std::uint64_t>(k));
  b.lock.lock();
  // Take the units if they are free and nobody is queued, else set the queued
  // bit in the same CAS, so that no fast path can slip in ahead of us.
  std::int64_t v = state->load();
  for (;;) {
    if ((v & kQueued) == 0 && v >= semweighted(k)) {
      if (state->compare_exchange_weak(v, v - semweighted(k))) {
        b.lock.unlock();
        return;
      }
    } else if (state->compare_exchange_weak(v, v | kQueued)) {
      break;
    }
  }
  b.queue(state, &w.s, false);
  w.park(b, WaitReason::semaphore_acquire);
  // semrelease_weighted took our units for us before waking us.
}

bool semrelease_weighted(std::atomic<std::int64_t>* state, std::int64_t size, std::int64_t k) {
  SemaBucket& b = semroot(state);
  std::int64_t v = state->load(std::memory_order_relaxed);
  for (;;) {
    if ((v & kQueued) == 0) {
      if (v + semweighted(k) > semweighted(size)) return false;
      if (state->compare_exchange_weak(v, v + semweighted(k), std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return true;
      }
      continue;
    }
    b.lock.lock();
    v = state->load();
    if ((v & kQueued) != 0) break;
    b.lock.unlock();  // another release served the waiters meanwhile
  }
  // Locked with the bit set: only we change the state now (rule 5).
  std::int64_t free = v / 2 + k;
  if (free > size) {
    b.lock.unlock();
    return false;
  }
  // Serve waiters in order while the first fits; a small request never passes a
  // large one queued before it.
  WaitQ ready;
  SemaRoot* r = b.find(state);
  while (!r->q.empty() && static_cast<std::int64_t>(r->q.first->ticket) <= free) {
    Sudog* s = r->q.dequeue();
    free -= static_cast<std::int64_t>(s->ticket);
    ready.enqueue(s);
  }
  const bool queued = !r->q.empty();
  b.retire(r);
  state->store(semweighted(free) | (queued ? kQueued : 0));
  b.lock.unlock();
  readyall(ready);
  return true;
}

}  // namespace gort::rt
