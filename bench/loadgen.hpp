/* The echo load generator of `gort-bench net`, and the latency histogram it
 * records into.
 *
 * It measures an echo server from the client side: N TCP connections to
 * 127.0.0.1:port, each in a closed loop (write a message, read the same number
 * of bytes back, record the round trip, write the next). One thread drives all
 * of them with level-triggered epoll, so it can be pinned to one CPU and its
 * CPU time read as that thread's. It is plain epoll on purpose: it must not
 * share code, or bugs, with the runtime it measures.
 *
 * A run: connect every connection, prime them (one verified round trip each,
 * so every connection has been accepted and served before the clock starts),
 * load for the warm-up, then the measured window. The caller's hooks run at
 * the window's two edges, on this thread, so server-side counters can be read
 * over exactly the window the requests are counted in. */
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace gort::bench {

/* LatencyHistogram counts nanosecond latencies in log-linear buckets: 32
 * sub-buckets per power of two, so a percentile read from it is within about
 * 3% of the exact value, at a fixed 15 KiB and O(1) per sample. */
class LatencyHistogram {
 public:
  // record() adds one sample.
  void record(std::uint64_t ns);
  // clear() forgets every sample.
  void clear();
  // percentile_ns() is the q-quantile (0 < q <= 1) of the samples, 0 with none.
  double percentile_ns(double q) const;

 private:
  static constexpr int kSubBits = 5;
  static constexpr std::size_t kBuckets = std::size_t{64 - kSubBits + 1} << kSubBits;
  // index() is the bucket of a latency.
  static std::size_t index(std::uint64_t ns);
  // midpoint_ns() is the middle of bucket i's range.
  static double midpoint_ns(std::size_t i);

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

struct EchoLoadConfig {
  std::uint16_t port = 0;          // the server listens on 127.0.0.1:port
  int connections = 1;             // concurrent closed-loop connections
  std::size_t message_bytes = 64;  // written and expected back per request
  double warmup_s = 0.5;           // load before the window, not counted
  double duration_s = 3;           // the measured window
};

struct EchoLoadResult {
  bool ok = false;
  std::string error;                 // why not ok
  std::uint64_t requests = 0;        // round trips completed in the window
  std::uint64_t total_requests = 0;  // round trips completed in the whole run (priming and warm-up too)
  double window_s = 0;               // the window's measured length
  double p50_us = 0, p99_us = 0;     // round-trip latency in the window
  double cpu_s = 0;                  // this thread's CPU time (user + system) in the window
};

/* run_echo_load() runs one load run on the calling thread. window_start() is
 * called when the warm-up ends, window_end() when the window ends, both before
 * anything else happens on the connections. */
EchoLoadResult run_echo_load(const EchoLoadConfig& cfg, const std::function<void()>& window_start,
                             const std::function<void()>& window_end);

}  // namespace gort::bench
