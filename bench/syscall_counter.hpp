/* The syscall counter of `gort-bench net`: how many system calls a server's
 * processes make over a window, counted with perf tracepoint counters on
 * every server thread, or with strace when perf cannot count. */
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "child.hpp"

namespace gort::bench {

enum class CountMethod { perf, strace, none };

/* A SyscallCounter counts the system calls a set of processes makes: with perf
 * counters on raw_syscalls:sys_enter, one per thread (inherited by threads
 * created later), enabled over a window; or with `strace -c -f -p` over the
 * whole time it is attached. One attach() ... finish() at a time. */
class SyscallCounter {
 public:
  // The constructor chooses how to count: want is auto, perf, strace or none; note says what was chosen and why.
  // strace runs pinned to load_cpu and writes into tmpdir. Pre: tmpdir exists and outlives the counter.
  SyscallCounter(const std::string& want, int load_cpu, std::string tmpdir, std::string& note);
  // method() is how this counter counts. No preconditions.
  CountMethod method() const { return method_; }
  // attach() prepares to count pids' system calls (counting is off for perf, on for strace); "" or the error.
  // Pre: method() is not none; the previous attach() was finished.
  std::string attach(const std::vector<pid_t>& pids);
  // enable() starts the perf counters (strace counts all along). Pre: attach() succeeded.
  void enable();
  // disable() stops the perf counters. Pre: attach() succeeded.
  void disable();
  // finish() detaches and returns the count, or nothing (error set). Pre: attach() was called (even if it failed).
  std::optional<std::uint64_t> finish(std::string& error);

 private:
  // ioctl_all() applies a perf ioctl to every counter.
  void ioctl_all(unsigned long request);

  CountMethod method_ = CountMethod::none;
  long tracepoint_ = -1;
  std::string strace_;
  int load_cpu_;
  std::string tmpdir_;
  std::vector<int> fds_;
  Child tracer_;
};

}  // namespace gort::bench
