// Runtime locks and notes, usable from goroutines, from g0 and from plain threads.
//
// Lock is Go's lock_futex for short critical sections (run queues, channels,
// timers), with an unlock that has no locked instruction: a channel round trip
// takes and releases four of them, and a locked instruction costs ~5 ns here.
// A goroutine never parks while holding one; a goroutine about to park hands
// its lock to gopark, which releases it only once the goroutine is off its stack.
//
// The wake-up protocol (lock.cpp) is an asymmetric Dekker: unlock() stores 0,
// then reads the count of sleepers, in program order but without a fence; a
// locker about to sleep counts itself, then runs membarrier(), which makes every
// thread of ours on another CPU execute a full barrier. Either the unlocker
// sees the sleeper, or the sleeper sees the unlock. Unlike Go's, this unlock is
// not a full barrier: code that needs one after it says so (storeload_fence).
//
// The sleeper counts live in a global table hashed by the lock's address, not
// in the lock: once its store of 0 is visible, another thread may take the
// lock, release it and free it (a channel, a select's frame), so the unlocker
// must not read the lock again. A count shared by two locks only costs a
// spurious wake (every futex sleeper here re-checks its condition).
//
// Biased locks (channels). A lock that one P keeps taking is biased to it:
// that P's goroutines then take and release it with plain loads and stores
// (busy_, inside a window as runnext's, runtime.hpp rule 1), saving the CAS
// on each of a channel round trip's four acquisitions. Every other taker uses
// the CAS on key_ and, holding it, revokes the bias: it clears bias_, runs
// membarrier, and waits for busy_ to fall. After the barrier the owner either
// saw the bias gone (and uses the CAS as well), or its busy_ store is visible
// and the revoker waits for its critical section to end. Only the P's
// goroutines run in the owner's window, one at a time, so there is never more
// than one owner-side taker. A revoked lock counts again, but needs runs 8x
// longer after each revocation (lock.cpp) before it is biased again: a pair
// that a steal moved to another P gets its bias back there, and a lock that
// keeps changing hands stops paying for revocations. Without membarrier no
// lock is biased.
//
// Note is Go's note: a one-shot event an M (or a plain thread) sleeps on.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/tsa.h"
#include "sched/os_linux.hpp"

namespace gort::rt {

// A capability for -Wthread-safety (base/tsa.h). Its own methods carry the
// contracts but are not checked: they implement the capability.
class CAPABILITY("mutex") Lock {
 public:
  // lock() takes the lock, spinning briefly and then sleeping on the futex.
  // Precondition: the lock does not allow bias (allow_bias); those are taken
  // with lock_biased, a plain thread's too (self nullptr).
  void lock() ACQUIRE() NO_THREAD_SAFETY_ANALYSIS {
    if (!try_lock()) [[unlikely]] lock_slow();
  }
  // try_lock_biased() takes the lock for self, the caller's P (nullptr off
  // Ps), without a locked instruction if it is biased to self; false (not
  // taken) otherwise.
  bool try_lock_biased(const void* self) TRY_ACQUIRE(true) NO_THREAD_SAFETY_ANALYSIS {
    const auto me = reinterpret_cast<std::uintptr_t>(self);
    if (bias_.load(std::memory_order_relaxed) != me || me == 0) return false;
    // Only one goroutine of a P runs at a time and none switches holding the
    // lock, so busy_ is 0 here unless that rule was broken (taken_twice).
    if (busy_.load(std::memory_order_relaxed) != 0) [[unlikely]] taken_twice();
    busy_.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the loads stay after the store
    if (bias_.load(std::memory_order_relaxed) == me && key_.load(std::memory_order_acquire) == 0) [[likely]] {
      heldbusy_ = true;
      return true;
    }
    busy_.store(0, std::memory_order_release);
    return false;
  }
  // lock_biased() is lock() for self: on a lock that allows bias, without a
  // locked instruction once the lock is biased to self (try_lock_biased), and
  // it biases the lock after enough takes in a row by self (countbias). Any
  // other taker revokes a bias (the ~11 us of a membarrier).
  void lock_biased(const void* self) ACQUIRE() NO_THREAD_SAFETY_ANALYSIS {
    if (try_lock_biased(self)) return;
    const auto me = reinterpret_cast<std::uintptr_t>(self);
    if (!try_lock()) [[unlikely]] lock_slow();
    const std::uintptr_t b = bias_.load(std::memory_order_relaxed);
    if (b == kBiasCounting) [[unlikely]] countbias(me);
    else if (b > kBiasCounting && b != me) [[unlikely]] revoke();
  }
  // unlock() releases it and wakes one sleeper if its slot counts one.
  void unlock() RELEASE() NO_THREAD_SAFETY_ANALYSIS {
    if (heldbusy_) {
      heldbusy_ = false;
      busy_.store(0, std::memory_order_release);
      return;
    }
    std::atomic<std::uint32_t>& sleepers = sleepers_of(this);
    key_.store(0, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the load stays after the store
    if (sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] wake();
  }
  // held() is true while someone holds the lock, for GORT_DCHECK(l.held())
  // where the caller must hold it: it cannot tell who, but costs two loads
  // (busy_: held, or being taken, by the biased P's goroutine).
  bool held() const {
    return key_.load(std::memory_order_relaxed) != 0 || busy_.load(std::memory_order_relaxed) != 0;
  }
  // allow_bias() lets lock_biased() bias the lock. Precondition: nobody holds it.
  void allow_bias() { bias_.store(kBiasCounting, std::memory_order_relaxed); }
  // biased() is true while the lock is biased to a P (tests).
  bool biased() const { return bias_.load(std::memory_order_relaxed) > kBiasCounting; }
  // revocations() is how many times a bias was revoked, up to kMaxRevocations (tests).
  int revocations() const { return nrevoke_; }
  static constexpr int kMaxRevocations = 4;

 private:
  static constexpr int kSleeperSlots = 1024;
  // sleepers_of() is the count of lockers past spinning (lock_slow) on l and
  // on the other locks that hash to its slot.
  static std::atomic<std::uint32_t>& sleepers_of(const Lock* l) {
    const auto a = reinterpret_cast<std::uintptr_t>(l);
    return sleeper_slots[(a * 0x9e3779b97f4a7c15ull) >> (64 - 10)];
  }
  static_assert(kSleeperSlots == 1 << 10);
  static std::atomic<std::uint32_t> sleeper_slots[kSleeperSlots];
  // bias_: kBiasOff (the default: not allowed), kBiasCounting (allowed,
  // counting takes; again after a revocation), or the P it is biased to.
  static constexpr std::uintptr_t kBiasOff = 0, kBiasCounting = 1;

  bool try_lock() {
    std::uint32_t z = 0;
    return key_.compare_exchange_strong(z, 1, std::memory_order_acquire);
  }
  void lock_slow();
  // wake() wakes a sleeper on key_. It may run after another thread freed the
  // lock: it passes key_'s address to the kernel and never reads it.
  void wake();
  // countbias() and revoke() run with key_ held.
  void countbias(std::uintptr_t me);
  void revoke();
  // taken_twice() dies naming the broken rule (runtime.hpp rule 6).
  [[noreturn]] static void taken_twice();

  std::atomic<std::uint32_t> key_{0};   // 0 free, 1 locked (the CAS side)
  std::atomic<std::uint32_t> busy_{0};  // the owner P's side: taking or held
  bool heldbusy_ = false;               // held through busy_ (written by the holder)
  std::uint8_t nrevoke_ = 0;            // revocations so far, capped (key_ held)
  std::uint32_t nsame_ = 0;             // takes in a row by lastp_ (key_ held)
  std::atomic<std::uintptr_t> bias_{kBiasOff};
  std::uintptr_t lastp_ = 0;
};

// storeload_fence() orders every earlier store before every later load, as
// Linux's smp_mb on x86 (a locked no-op on the stack). Not
// std::atomic_thread_fence: TSan builds reject it.
inline void storeload_fence() { asm volatile("lock orl $0, (%%rsp)" ::: "memory", "cc"); }

// membarrier_all() makes every thread of this process that is running on
// another CPU execute a full barrier before it returns (the heavy side of an
// asymmetric fence; ~11 us here with the other vCPU busy). False if the kernel
// does not offer it (lock_init).
bool membarrier_all();

// lock_init() sets up the sleeper's side of Lock's wake-up protocol; false if
// the kernel lacks membarrier(PRIVATE_EXPEDITED), and then a sleeping locker
// re-checks the lock every kLockPollNs instead of trusting the unlocker's wake.
bool lock_init();

class Note {
 public:
  // sleep() blocks until wakeup(); returns at once if it already happened.
  void sleep();
  // sleep_for() is sleep() with a timeout in ns (<0: none). True if woken.
  bool sleep_for(std::int64_t ns);
  // wakeup() wakes the sleeper (there is at most one).
  void wakeup();
  // clear() re-arms the note; only when nobody sleeps on it.
  void clear() { key_.store(0, std::memory_order_relaxed); }
  bool woken() const { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace gort::rt
