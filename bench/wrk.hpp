/* wrk, the HTTP load generator of `gort-bench net`: one `wrk -t1 --latency`
 * run against a loopback port, pinned to the load CPU, and what its output
 * and resource usage say. */
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace gort::bench {

// What one wrk run measured.
struct WrkResult {
  std::string error;  // "" when the run counts
  double rps = 0;
  std::uint64_t requests = 0;  // completed in wrk's run
  double p50_us = 0, p99_us = 0;
  double cpu_s = 0;           // wrk's CPU time (user + system)
  double wall_s = 0;          // from starting wrk to reaping it
  std::string socket_errors;  // wrk's "Socket errors: ..." line, if any
};

/* run_wrk() runs `wrk -t1 -cN -dS --latency` against 127.0.0.1:port, pinned to
 * cpu, its output in tmpdir/wrk.out; a run that outlives seconds + 15 s is
 * killed. started() runs just before wrk starts, ended() just after it is
 * reaped (also on failure), so the server's counters can be read over wrk's
 * whole life. Pre: wrk is an executable path; conns >= 1; seconds >= 1;
 * tmpdir exists. */
WrkResult run_wrk(const std::string& wrk, std::uint16_t port, int conns, int seconds, int cpu,
                  const std::string& tmpdir, const std::function<void()>& started, const std::function<void()>& ended);

}  // namespace gort::bench
