/* The perf sampler of `gort-bench net`: it splits a server's CPU time over a
 * window into user and kernel mode by sampling the CPU the server is pinned
 * to, because /proc/PID/stat cannot split a window (see CpuSampler). */
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace gort::bench {

/* A CpuSampler samples whatever runs on one CPU (perf cpu-clock, every 1 ms of
 * non-idle time) into a ring buffer, each sample carrying the process it hit
 * and whether that was in user or kernel mode. Counting a window's samples per
 * mode gives the server's user/kernel split over exactly that window, without
 * the history that /proc/PID/stat drags along: the kernel scales a task's
 * whole-life tick ratio onto its run time and never lets utime or stime go
 * backwards, so the difference of two readings can show no user time at all in
 * a window after a user-heavy phase (we saw exactly that). 1 kHz because each
 * sample costs the sampled CPU a timer interrupt and VM exits: measured on our
 * VM, 5 kHz took 8-13% of a busy CPU, 2 kHz 2-4%, 1 kHz about 1%; the runs of a
 * row are pooled for precision. It needs CAP_PERFMON (root): a CPU-wide event.
 * The server must be pinned to the sampled CPU. */
class CpuSampler {
 public:
  static constexpr std::uint64_t kPeriodNs = 1'000'000;

  CpuSampler() = default;
  // The destructor unmaps the ring and closes the event. No preconditions.
  ~CpuSampler();
  CpuSampler(const CpuSampler&) = delete;
  CpuSampler& operator=(const CpuSampler&) = delete;

  // open() prepares a disabled sampler of cpu with room for `seconds` of samples; "" or the error. Pre: not open
  // yet; CAP_PERFMON (else it fails); seconds > 0.
  std::string open(int cpu, double seconds);
  // is_open() is true once open() succeeded. No preconditions.
  bool is_open() const { return fd_ >= 0; }
  // enable() starts sampling. A no-op when not open.
  void enable();
  // disable() stops sampling. A no-op when not open.
  void disable();

  // Samples of some processes: in user mode, in kernel mode; and samples the full ring dropped.
  struct Split {
    std::uint64_t user = 0, kernel = 0, lost = 0;
  };
  // take() counts and consumes the samples recorded since the last take(), keeping those of pids (all zero when
  // not open). Pre: one thread at a time; pids are process ids, not thread ids.
  Split take(const std::vector<pid_t>& pids);

 private:
  int fd_ = -1;
  void* ring_ = nullptr;
  std::size_t page_ = 0, data_pages_ = 0;
};

}  // namespace gort::bench
