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
// Note is Go's note: a one-shot event an M (or a plain thread) sleeps on.
#pragma once

#include <atomic>
#include <cstdint>

namespace gort::rt {

class Lock {
 public:
  // lock() takes the lock, spinning briefly and then sleeping on the futex.
  void lock() {
    if (!try_lock()) [[unlikely]] lock_slow();
  }
  // unlock() releases it and wakes one sleeper if its slot counts one.
  void unlock() {
    std::atomic<std::uint32_t>& sleepers = sleepers_of(this);
    key_.store(0, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the load stays after the store
    if (sleepers.load(std::memory_order_relaxed) != 0) [[unlikely]] wake();
  }
  // try_lock() takes the lock if it is free.
  bool try_lock() {
    std::uint32_t z = 0;
    return key_.compare_exchange_strong(z, 1, std::memory_order_acquire);
  }

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

  void lock_slow();
  // wake() wakes a sleeper on key_. It may run after another thread freed the
  // lock: it passes key_'s address to the kernel and never reads it.
  void wake();
  std::atomic<std::uint32_t> key_{0};  // 0 free, 1 locked
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

// nanotime() is the monotonic clock in ns.
std::int64_t nanotime();
// nanotime_coarse() is the same clock at tick resolution (1-4 ms): 5 ns per read
// here against ~100 ns for nanotime() (KVM guest), for bookkeeping on hot paths
// such as a goroutine's park time, which dumps show in minutes.
std::int64_t nanotime_coarse();

// futexsleep() sleeps while *addr == val, at most ns (<0: forever).
void futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns);
// futexwakeup() wakes up to n threads sleeping on addr.
void futexwakeup(std::atomic<std::uint32_t>* addr, int n);

}  // namespace gort::rt
