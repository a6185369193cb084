// The operating system's clock and futex, named as in Go's os_linux.go: the
// primitives Lock, Note, timers and sysmon are built on.
#pragma once

#include <atomic>
#include <cstdint>

namespace gort::rt {

// nanotime() is the monotonic clock in ns.
std::int64_t nanotime();
// nanotime_coarse() is the same clock at tick resolution (1-4 ms): 5 ns per read
// here against ~100 ns for nanotime() (KVM guest), for bookkeeping on hot paths
// such as a goroutine's park time, which dumps show in minutes.
std::int64_t nanotime_coarse();

// futexsleep() sleeps while *addr == val, at most ns (<0: forever). Returns
// true if it slept the whole ns (timed out) rather than being woken.
bool futexsleep(std::atomic<std::uint32_t>* addr, std::uint32_t val, std::int64_t ns);
// futexwakeup() wakes up to n threads sleeping on addr.
void futexwakeup(std::atomic<std::uint32_t>* addr, int n);

}  // namespace gort::rt
