#include "sched/lock.hpp"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/print.hpp"
#include "sched/backstop.hpp"

namespace gort::rt {

// Spin a little before sleeping: critical sections under a runtime lock are a
// few hundred ns, far shorter than a futex sleep and wake (~20 us across vCPUs).
constexpr int kActiveSpin = 100;
// Without membarrier a sleeper may miss an unlock's wake (it raced the
// unlocker's unfenced read of the sleeper count): it looks again this often.
// Only reached after kActiveSpin failed tries, when the holder was descheduled.
constexpr std::int64_t kLockPollNs = 1'000'000;

std::atomic<std::uint32_t> Lock::sleeper_slots[Lock::kSleeperSlots];
namespace {
std::atomic<std::uint64_t> nlockpoll{0};  // lockpoll_rescues()
}  // namespace

bool lock_init() {
  static const bool ok = ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  return ok;
}

bool membarrier_all() {
  return lock_init() && ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void Lock::lock_slow() {
  std::uint32_t v = 0;
  for (int i = 0; i < kActiveSpin; i++) {
    v = key_.load(std::memory_order_relaxed);
    if (v == 0 && key_.compare_exchange_weak(v, 1, std::memory_order_acquire)) return;
    __builtin_ia32_pause();
  }
  // Count ourselves, then make every other CPU running our threads pass a full
  // barrier (~11 us here with the other vCPU busy; a futex wake costs ~20).
  // An unlock whose sleeper-count read came before our count was visible had
  // its store of 0 drained by that barrier, so our reads below see it; any
  // later unlock reads our count and wakes us. A woken locker that loses the
  // lock again stays counted, so later unlocks keep waking it.
  std::atomic<std::uint32_t>& sleepers = sleepers_of(this);
  sleepers.fetch_add(1, std::memory_order_seq_cst);
  const bool fenced = membarrier_all();
  bool polled = false;
  for (;;) {
    v = 0;
    if (key_.compare_exchange_strong(v, 1, std::memory_order_acquire)) break;
    polled = futexsleep(&key_, v, fenced ? -1 : kLockPollNs);
  }
  sleepers.fetch_sub(1, std::memory_order_relaxed);
  // Free when the poll timed out: the unlock's wake was missed (or the unlock
  // came between the timeout and our look, which cannot be told apart, but
  // that window is a few instructions against 1 ms). A rescue (backstop.hpp),
  // counted but never fatal: without membarrier this race is the known cost
  // of an unfenced unlock, not a lost hand-off, and a dump from here could
  // need the very lock being taken.
  if (polled) nlockpoll.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t lockpoll_rescues() { return nlockpoll.load(std::memory_order_relaxed); }

void Lock::wake() { futexwakeup(&key_, 1); }

// A lock is biased to a P after this many takes in a row by it: a channel two
// goroutines of one P pass values through. A channel used a few times and then
// by another P (a reply channel whose goroutine was stolen) never gets biased,
// so it never costs a revocation.
constexpr std::uint32_t kBiasAfter = 64;
// After each revocation the run must be 8x longer: 512, 4,096, 32,768, then
// 262,144 takes for good (kMaxRevocations). A revocation costs ~11 us, what
// the bias saves (~3 ns a take) in ~4,000 takes; so a lock biased and revoked
// over and over wastes at most ~1% of its unbiased takes once capped, and a
// few revocations early in its life (~45 us in all) before that.
constexpr int kRebiasShift = 3;

void Lock::countbias(std::uintptr_t me) {
  if (lastp_ != me) {
    lastp_ = me;
    nsame_ = 0;
  }
  if (me != 0 && ++nsame_ >= kBiasAfter << (kRebiasShift * nrevoke_) && lock_init()) {
    bias_.store(me, std::memory_order_relaxed);
  }
}

void Lock::taken_twice() {
  fatal("a goroutine took a channel's lock while another goroutine of its P held it: a channel element's move or copy constructor blocked, yielded or called gort::syscall");
}

void Lock::revoke() {
  bias_.store(kBiasOff, std::memory_order_relaxed);
  // After the barrier the owner's busy_ store, if it came before its check of
  // bias_, is visible here; if it came after, that check sees kBiasOff.
  if (!membarrier_all()) fatal("lock: membarrier failed while revoking a lock's bias (registered at start; a seccomp filter added since?)");
  for (int i = 0; busy_.load(std::memory_order_acquire) != 0; i++) {
    // The owner's critical section is short, unless its thread lost its CPU.
    if (i < kActiveSpin) __builtin_ia32_pause();
    else sched_yield();
  }
  // Counting again, from zero, towards a longer run (countbias).
  if (nrevoke_ < kMaxRevocations) nrevoke_++;
  lastp_ = 0;
  nsame_ = 0;
  bias_.store(kBiasCounting, std::memory_order_relaxed);
}

void Note::sleep() {
  while (key_.load(std::memory_order_acquire) == 0) futexsleep(&key_, 0, -1);
}

bool Note::sleep_for(std::int64_t ns) {
  if (ns < 0) {
    sleep();
    return true;
  }
  const std::int64_t deadline = nanotime() + ns;
  while (key_.load(std::memory_order_acquire) == 0) {
    std::int64_t left = deadline - nanotime();
    if (left <= 0) return false;
    futexsleep(&key_, 0, left);
  }
  return true;
}

void Note::wakeup() {
  key_.store(1, std::memory_order_release);
  futexwakeup(&key_, 1);
}

}  // namespace gort::rt
