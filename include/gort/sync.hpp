// Synchronization: Mutex, RWMutex, WaitGroup, Once, Cond (Go's sync package) and
// a weighted Semaphore (golang.org/x/sync/semaphore).
//
// Every primitive works from goroutines, from plain std::threads, and from both
// at once: a goroutine that has to wait parks (its thread goes on running other
// goroutines), a plain thread sleeps on a futex. Around code that may block in
// gort (a channel operation, I/O, sleep) use gort::Mutex, never std::mutex: a
// std::mutex held by a parked goroutine blocks every thread that wants it, and
// with it every goroutine queued on those threads.
//
// As in Go the objects are a few plain words (Mutex is 8 bytes), ready to use
// when zero-initialised, so they can be constinit globals; the waiters are kept
// by the runtime in its semaphore table, keyed by address (src/sched/sema.cpp).
// None may be copied or moved, nor destroyed while a call on it is still in
// progress; a WaitGroup may go as soon as every wait() on it has returned (the
// last done() no longer touches it then), so a WaitGroup on the stack is fine.
//
// Misuse that Go reports with a recoverable panic throws gort::panic_error
// (gort/panic.hpp); misuse that Go reports with a
// fatal error is a fatal error here too, e.g. "fatal error: sync: unlock of
// unlocked mutex" and exit status 2.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

#include "gort/panic.hpp"

namespace gort {

// Mutex is Go's sync.Mutex: a mutual exclusion lock, a BasicLockable with
// try_lock, so std::lock_guard, std::unique_lock and std::scoped_lock work.
//
// Uncontended, lock() is one CAS and unlock() one atomic add. A contended lock()
// spins briefly (on a goroutine, when other processors are running) and then
// parks. Waiters queue in FIFO order but compete with newly arriving lockers,
// which usually win (they are already running): this is what makes a mutex fast
// under contention. A waiter that has waited more than 1 ms switches the mutex
// to starvation mode, where unlock() hands it directly to the first waiter and
// newcomers queue behind, so no waiter waits forever.
//
// It is not tied to the goroutine or thread that locked it: one may lock and
// another unlock, as in Go.
class Mutex {
 public:
  constexpr Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // lock() takes the mutex, waiting until it is free.
  void lock() {
    std::int32_t z = 0;
    if (state_.compare_exchange_strong(z, kLocked, std::memory_order_acquire, std::memory_order_relaxed))
        [[likely]] {
      return;
    }
    lock_slow();
  }

  // try_lock() takes the mutex if it is free and not owed to a waiter; it never
  // waits. Returns whether it took it.
  bool try_lock() {
    std::int32_t old = state_.load(std::memory_order_relaxed);
    if ((old & (kLocked | kStarving)) != 0) return false;
    return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  // unlock() releases the mutex. Precondition: it is locked; unlocking an
  // unlocked mutex is a fatal error.
  void unlock() {
    const std::int32_t s = state_.fetch_sub(kLocked, std::memory_order_release) - kLocked;
    if (s != 0) [[unlikely]] unlock_slow(s);
  }

 private:
  // state_ is Go's: bit 0 locked, bit 1 a waiter is awake (so unlock need not
  // wake another), bit 2 starvation mode, the rest the number of waiters.
  static constexpr std::int32_t kLocked = 1;
  static constexpr std::int32_t kWoken = 2;
  static constexpr std::int32_t kStarving = 4;
  static constexpr int kWaiterShift = 3;

  void lock_slow();
  void unlock_slow(std::int32_t s);

  std::atomic<std::int32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};  // the runtime semaphore waiters park on
};

// RWMutex is Go's sync.RWMutex: any number of readers or one writer. It meets
// Lockable for writers and SharedLockable for readers, so std::unique_lock and
// std::shared_lock work. Writers are preferred: once a writer waits in lock(),
// new readers wait until it has had its turn, so a stream of overlapping readers
// cannot starve writers (and a reader must not lock_shared() recursively).
class RWMutex {
 public:
  constexpr RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // lock() takes it for writing, waiting for other writers and for the readers
  // that hold it.
  void lock();
  // try_lock() takes it for writing if nobody holds it; never waits.
  bool try_lock();
  // unlock() releases a write lock and lets the readers that waited for it in.
  // Precondition: write-locked (else a fatal error).
  void unlock();

  // lock_shared() takes it for reading, waiting while a writer holds or waits for it.
  void lock_shared() {
    if (reader_count_.fetch_add(1, std::memory_order_acquire) + 1 < 0) [[unlikely]] lock_shared_slow();
  }
  // try_lock_shared() takes it for reading if no writer holds or waits for it;
  // never waits.
  bool try_lock_shared();
  // unlock_shared() releases a read lock. Precondition: read-locked (else a
  // fatal error).
  void unlock_shared() {
    const std::int32_t r = reader_count_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) [[unlikely]] unlock_shared_slow(r);
  }

 private:
  // A writer announces itself by subtracting kMaxReaders from reader_count_:
  // readers that then see a negative count wait on reader_sem_.
  static constexpr std::int32_t kMaxReaders = 1 << 30;

  void lock_shared_slow();
  void unlock_shared_slow(std::int32_t r);

  Mutex w_;                                   // held by the writer, or one waiting
  std::atomic<std::uint32_t> writer_sem_{0};  // the writer waits here for readers
  std::atomic<std::uint32_t> reader_sem_{0};  // readers wait here for the writer
  std::atomic<std::int32_t> reader_count_{0};  // readers holding or waiting
  std::atomic<std::int32_t> reader_wait_{0};   // readers the writer waits for
};

// WaitGroup is Go's sync.WaitGroup: waits for a collection of goroutines (or
// threads) to finish. add(n) before starting them, done() as each finishes,
// wait() to block until the counter is zero. add and done are one atomic add when
// nobody waits.
class WaitGroup {
 public:
  constexpr WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // add() adds delta, which may be negative, to the counter; at zero every
  // wait() returns. An add() of a positive delta when the counter is zero must
  // happen before the wait() it is meant for. Throws panic_error("sync: negative
  // WaitGroup counter") if the counter goes below zero; the WaitGroup is then
  // unusable, as in Go.
  void add(int delta) {
    const std::uint64_t d = static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)) << 32;
    const std::uint64_t s = state_.fetch_add(d, std::memory_order_acq_rel) + d;
    if (static_cast<std::int32_t>(s >> 32) > 0 && static_cast<std::uint32_t>(s) == 0) [[likely]] return;
    add_slow(delta, s);
  }
  // done() is add(-1).
  void done() { add(-1); }
  // wait() blocks until the counter is zero.
  void wait();

 private:
  void add_slow(int delta, std::uint64_t s);

  std::atomic<std::uint64_t> state_{0};  // counter in the high 32 bits, waiters in the low 32
  std::atomic<std::uint32_t> sema_{0};
};

// Once is Go's sync.Once: call(fn) runs fn the first time it is called on this
// Once and never again. Concurrent callers wait until that first fn has returned,
// so when any call() returns, fn's effects are visible. As in Go, if fn throws
// (or the goroutine exits inside it) it counts as done, and fn must not call
// call() on the same Once (deadlock).
class Once {
 public:
  constexpr Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // call() runs fn() if no call() on this Once has run one yet.
  template <class F>
  void call(F&& fn) {
    if (done_.load(std::memory_order_acquire) == 0) [[unlikely]] call_slow(std::forward<F>(fn));
  }

 private:
  template <class F>
  void call_slow(F&& fn) {
    std::lock_guard lk(m_);
    if (done_.load(std::memory_order_relaxed) != 0) return;
    struct SetDone {
      std::atomic<std::uint32_t>& done;
      ~SetDone() { done.store(1, std::memory_order_release); }
    } set{done_};
    std::forward<F>(fn)();
  }

  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

namespace detail {

// NotifyList is Go's notifyList, the ticket counters of a Cond; its waiters are
// in the runtime's semaphore table under its address.
struct NotifyList {
  std::atomic<std::uint32_t> wait{0};    // the next ticket to hand out
  std::atomic<std::uint32_t> notify{0};  // the next ticket to wake
};

}  // namespace detail

// Cond is Go's sync.Cond: a condition variable for goroutines and threads to
// wait on until signalled, always used with a lock, which is passed to wait()
// as for std::condition_variable_any: a std::unique_lock<gort::Mutex>, or the
// gort::Mutex itself, or any BasicLockable.
//
// As in Go a wake promises nothing about the condition: check it in a loop, or
// use wait(lk, pred). A signal() or broadcast() wakes only waiters that entered
// wait() before it, whether or not they have parked yet, so nothing is lost
// between unlocking lk and parking. No spurious wakeups.
class Cond {
 public:
  constexpr Cond() = default;
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  // wait() unlocks lk, waits for signal() or broadcast(), and locks lk again
  // before returning. Precondition: lk is locked by the caller.
  template <class L>
  void wait(L& lk) {
    const std::uint32_t t = notify_.wait.fetch_add(1);  // Go's notifyListAdd
    lk.unlock();
    wait_ticket(t);
    lk.lock();
  }
  // wait() with a predicate waits until pred() holds. Precondition: lk is
  // locked; pred is called with it locked.
  template <class L, class Pred>
  void wait(L& lk, Pred pred) {
    while (!pred()) wait(lk);
  }
  // signal() wakes the longest-waiting waiter, if any. The lock need not be held.
  void signal();
  // broadcast() wakes every waiter. The lock need not be held.
  void broadcast();

 private:
  void wait_ticket(std::uint32_t t);

  detail::NotifyList notify_;
};

// Semaphore is golang.org/x/sync/semaphore's Weighted: a counting semaphore of n
// units where each acquire asks for k of them. Waiters are served strictly in
// FIFO order, so a large request is not starved by a stream of small ones: while
// anyone waits, later acquires queue behind even if enough units are free for
// them. Uncontended acquire and release are one CAS each.
class Semaphore {
 public:
  // Semaphore() makes a semaphore with n units, all free. Throws
  // std::invalid_argument unless 0 <= n < 2^62.
  explicit Semaphore(std::int64_t n);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire() takes k units, waiting until they are free and every earlier
  // waiter has been served. Throws panic_error if k < 0 or k is more than the
  // semaphore has (such a request could never be served).
  void acquire(std::int64_t k = 1);
  // try_acquire() takes k units if they are free and nobody waits; never waits.
  bool try_acquire(std::int64_t k = 1);
  // release() returns k units, waking waiters in order while the first one can
  // be served. Throws panic_error("semaphore: released more than held") if that
  // would make more units free than the semaphore has, or if k < 0.
  void release(std::int64_t k = 1);

 private:
  const std::int64_t size_;
  std::atomic<std::int64_t> state_;  // free units and a "waiters queued" bit (rt::semacquire_weighted)
};

}  // namespace gort
