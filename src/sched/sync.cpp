// gort's sync package: the slow paths of Mutex, RWMutex, WaitGroup, Cond and
// Semaphore (include/gort/sync.hpp), on the runtime semaphores of sema.cpp.
// Mutex, RWMutex and WaitGroup are Go's sync algorithms, comments and all.
#include <stdexcept>

#include "base/print.hpp"
#include "gort/sync.hpp"
#include "sched/lock.hpp"
#include "sched/runtime.hpp"
#include "sched/sema.hpp"

namespace gort {

// ---- Mutex ----
//
// Two modes, as Go's sync.Mutex. Normal mode: waiters queue FIFO, but a woken
// waiter does not own the mutex; it competes with newly arriving lockers, which
// have an advantage (they are already on a CPU, and there may be many), so a
// woken waiter that loses goes back to the front of the queue. This keeps the
// mutex fast: a locker that finds it free takes it even if others wait.
// Starvation mode: entered when a waiter has failed to get the mutex for more
// than 1 ms. unlock() then hands the mutex directly to the first waiter, and
// newcomers neither take it nor spin but queue at the tail. The last waiter, or
// one that waited less than 1 ms, switches back to normal mode.

namespace {

constexpr std::int64_t kStarvationThresholdNs = 1'000'000;
static_assert(sizeof(Mutex) == 8, "a Mutex is two 32-bit words, as in Go");

}  // namespace

void Mutex::lock_slow() {
  rt::checkpreempt();
  std::int64_t waitstart = 0;
  bool starving = false;
  bool awoke = false;
  int iter = 0;
  std::int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin while it is locked in normal mode and the holder is likely running:
    // it may be unlocked within our spin, and a park and wake cost ~20 us here.
    // In starvation mode it goes to a waiter, so spinning is pointless.
    if ((old & (kLocked | kStarving)) == kLocked && rt::canspin(iter)) {
      // Set woken, so unlock() does not wake a waiter while we are about to take it.
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_strong(old, old | kWoken)) {
        awoke = true;
      }
      rt::dospin();
      iter++;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    std::int32_t next = old;
    if ((old & kStarving) == 0) next |= kLocked;  // newcomers don't take a starving mutex
    if ((old & (kLocked | kStarving)) != 0) next += 1 << kWaiterShift;
    // Switch to starvation mode, but only if it is still locked: unlock()
    // expects waiters in starvation mode.
    if (starving && (old & kLocked) != 0) next |= kStarving;
    if (awoke) {
      // We were woken (or set woken while spinning): clear the flag either way.
      if ((next & kWoken) == 0) rt::fatal("sync: inconsistent mutex state");
      next &= ~kWoken;
    }
    if (!state_.compare_exchange_strong(old, next, std::memory_order_acquire, std::memory_order_relaxed)) {
      continue;
    }
    if ((old & (kLocked | kStarving)) == 0) return;  // took it with the CAS
    // A waiter that has waited before goes back to the front of the queue.
    const bool lifo = waitstart != 0;
    if (waitstart == 0) waitstart = rt::nanotime();
    rt::semacquire(&sema_, lifo, rt::WaitReason::sync_mutex_lock);
    starving = starving || rt::nanotime() - waitstart > kStarvationThresholdNs;
    old = state_.load(std::memory_order_relaxed);
    if ((old & kStarving) != 0) {
      // Handed to us in starvation mode: the state is inconsistent (not marked
      // locked, and we are still counted as a waiter); fix it up.
      if ((old & (kLocked | kWoken)) != 0 || (old >> kWaiterShift) == 0) {
        rt::fatal("sync: inconsistent mutex state");
      }
      std::int32_t delta = kLocked - (1 << kWaiterShift);
      // Leave starvation mode if we are the last waiter or did not wait long:
      // it is so inefficient that two lockers could go on in lock-step forever.
      if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
      state_.fetch_add(delta, std::memory_order_acquire);
      return;
    }
    awoke = true;
    iter = 0;
  }
}

void Mutex::unlock_slow(std::int32_t s) {
  if (((s + kLocked) & kLocked) == 0) rt::fatal("sync: unlock of unlocked mutex");
  if ((s & kStarving) != 0) {
    // Starvation mode: hand the mutex to the first waiter and yield to it. It
    // is not marked locked until that waiter wakes, but the starving bit keeps
    // newcomers from taking it.
    rt::semrelease(&sema_, true);
    return;
  }
  std::int32_t old = s;
  for (;;) {
    // Nothing to do if nobody waits, or a waiter is already woken or spinning,
    // or someone took the mutex meanwhile (they will wake a waiter on unlock).
    if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
    // Take the right to wake one waiter.
    if (state_.compare_exchange_strong(old, (old - (1 << kWaiterShift)) | kWoken)) {
      rt::semrelease(&sema_, false);
      return;
    }
  }
}

// ---- RWMutex ----

void RWMutex::lock() {
  w_.lock();  // first exclude other writers
  // Announce the writer to readers, then wait for the active ones to leave.
  const std::int32_t r = reader_count_.fetch_sub(kMaxReaders);
  if (r != 0 && reader_wait_.fetch_add(r) + r != 0) rt::semacquire(&writer_sem_, false, rt::WaitReason::sync_rwmutex_lock);
}

bool RWMutex::try_lock() {
  if (!w_.try_lock()) return false;
  std::int32_t z = 0;
  if (!reader_count_.compare_exchange_strong(z, -kMaxReaders, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  // Announce to readers that no writer is active; r is the readers that came
  // and waited meanwhile.
  const std::int32_t r = reader_count_.fetch_add(kMaxReaders, std::memory_order_release) + kMaxReaders;
  if (r >= kMaxReaders) rt::fatal("sync: Unlock of unlocked RWMutex");
  for (std::int32_t i = 0; i < r; i++) rt::semrelease(&reader_sem_, false);
  w_.unlock();  // let other writers in
}

void RWMutex::lock_shared_slow() {
  // A writer holds or waits for the lock: it lets us in when it unlocks.
  rt::semacquire(&reader_sem_, false, rt::WaitReason::sync_rwmutex_rlock);
}

bool RWMutex::try_lock_shared() {
  std::int32_t c = reader_count_.load(std::memory_order_relaxed);
  while (c >= 0) {
    if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void RWMutex::unlock_shared_slow(std::int32_t r) {
  if (r + 1 == 0 || r + 1 == -kMaxReaders) rt::fatal("sync: RUnlock of unlocked RWMutex");
  // A writer waits: the last of the readers it waits for lets it in.
  if (reader_wait_.fetch_sub(1) - 1 == 0) rt::semrelease(&writer_sem_, false);
}

// ---- WaitGroup ----

namespace {

constexpr const char* kAddRacedWait = "sync: WaitGroup misuse: add called concurrently with wait";

}  // namespace

void WaitGroup::add_slow(int delta, std::uint64_t s) {
  const auto v = static_cast<std::int32_t>(s >> 32);
  auto w = static_cast<std::uint32_t>(s);
  if (v < 0) throw panic_error("sync: negative WaitGroup counter");
  // The first increment from zero must happen before wait(): with waiters
  // counted, it raced with them.
  if (w != 0 && delta > 0 && v == delta) throw panic_error(kAddRacedWait);
  if (v > 0 || w == 0) return;
  // The counter is zero and there are waiters. Nothing may change the state now:
  // add() must not race with wait() here, and wait() does not count itself in
  // at zero. Reset the waiter count and wake them all.
  if (state_.load() != s) throw panic_error(kAddRacedWait);
  state_.store(0);
  for (; w != 0; w--) rt::semrelease(&sema_, false);
}

void WaitGroup::wait() {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<std::int32_t>(s >> 32) == 0) return;
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      rt::semacquire(&sema_, false, rt::WaitReason::sync_waitgroup_wait);
      if (state_.load() != 0) {
        throw panic_error("sync: WaitGroup is reused before previous wait has returned");
      }
      return;
    }
  }
}

// ---- Cond ----

void Cond::wait_ticket(std::uint32_t t) { rt::notifylistwait(&notify_, t); }

void Cond::signal() { rt::notifylistnotifyone(&notify_); }

void Cond::broadcast() { rt::notifylistnotifyall(&notify_); }

// ---- Semaphore ----

namespace {

constexpr std::int64_t kMaxSemaphore = std::int64_t{1} << 62;

std::int64_t checksize(std::int64_t n) {
  if (n < 0 || n >= kMaxSemaphore) throw std::invalid_argument("gort::Semaphore: size must be in [0, 2^62)");
  return n;
}

void checkunits(std::int64_t k) {
  if (k < 0) throw panic_error("semaphore: negative number of units");
}

}  // namespace

Semaphore::Semaphore(std::int64_t n) : size_(checksize(n)), state_(rt::semweighted(size_)) {}

void Semaphore::acquire(std::int64_t k) {
  checkunits(k);
  if (k > size_) throw panic_error("semaphore: acquire of more units than the semaphore has");
  rt::semacquire_weighted(&state_, k);
}

bool Semaphore::try_acquire(std::int64_t k) {
  checkunits(k);
  return rt::semtryacquire_weighted(&state_, k);
}

void Semaphore::release(std::int64_t k) {
  checkunits(k);
  if (!rt::semrelease_weighted(&state_, size_, k)) throw panic_error("semaphore: released more than held");
}

}  // namespace gort
