// The clock and the futex, as Go's os_linux.go and its time functions.
#include "sched/os_linux.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

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

bool futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns) {
  struct timespec ts, *tsp = nullptr;
  if (ns >= 0) {
    ts.tv_sec = ns / 1'000'000'000;
    ts.tv_nsec = ns % 1'000'000'000;
    tsp = &ts;
  }
  // EINTR, EAGAIN and timeouts all return: callers re-check their condition.
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, val, tsp, nullptr, 0) != 0 &&
         errno == ETIMEDOUT;
}

void futexwakeup(std::atomic<std::uint32_t>* addr, int n) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

}  // namespace gort::rt
