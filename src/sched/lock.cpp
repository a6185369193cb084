#include "sched/lock.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace gort::rt {

std::int64_t nanotime() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t nanotime_coarse() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns) {
  struct timespec ts, *tsp = nullptr;
  if (ns >= 0) {
    ts.tv_sec = ns / 1'000'000'000;
    ts.tv_nsec = ns % 1'000'000'000;
    tsp = &ts;
  }
  // EINTR, EAGAIN and timeouts all return: callers re-check their condition.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, val, tsp, nullptr, 0);
}

void futexwakeup(std::atomic<std::uint32_t>* addr, int n) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

// Spin a little before sleeping: critical sections under a runtime lock are a
// few hundred ns, far shorter than a futex sleep and wake (~20 us across vCPUs).
constexpr int kActiveSpin = 100;

void Lock::lock_slow() {
  std::uint32_t v = 0;
  for (int i = 0; i < kActiveSpin; i++) {
    v = key_.load(std::memory_order_relaxed);
    if (v == 0 && key_.compare_exchange_weak(v, 1, std::memory_order_acquire)) return;
    __builtin_ia32_pause();
  }
  // Mark the lock contended (2) so the holder's unlock wakes a sleeper.
  while (key_.exchange(2, std::memory_order_acquire) != 0) futexsleep(&key_, 2, -1);
}

void Lock::wake() { futexwakeup(&key_, 1); }

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
