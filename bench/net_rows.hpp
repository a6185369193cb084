/* The rows of `gort-bench net`, the benchmark table itself: one row per
 * server and connection count, its measured runs (a fresh server each, a
 * window of load, the server's CPU time and its user/kernel split, an extra
 * run that counts system calls), and printing every row's medians as
 * `name value` lines with the ratios ours / the peers' and their targets. */
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cpu_sampler.hpp"
#include "net_bench.hpp"
#include "net_server.hpp"
#include "proc_cpu.hpp"
#include "syscall_counter.hpp"

namespace gort::bench {

// One measured run of a row.
struct Sample {
  double rps, p50_us, p99_us;
  double cpu_us;                                      // server CPU time per request (user + kernel)
  double proc_user_us, proc_sys_us;                   // its split by /proc/PID/stat (the fallback)
  double user_samples, kernel_samples;                // the sampler's samples of the server
  double server_cpu_pct, loadgen_cpu_pct;             // CPU time / window
  double others_server_cpu_pct, others_load_cpu_pct;  // other processes' (and the host's) share of the two CPUs
};

// One row: a server at one connection count, its runs and its syscall count.
struct Row {
  std::string prefix;  // net_echo_c64_gort
  std::vector<Sample> samples;
  std::optional<double> syscalls_per_req;
};

// Everything one `gort-bench net` needs while it runs.
struct Bench {
  const NetBenchArgs& a;
  std::string tmpdir;
  std::string wrk;
  std::string nginx_tmpl;
  SyscallCounter* counter;
  CpuSampler* sampler;
  std::map<std::string, Row> rows;
  std::set<std::string> announced;  // servers whose first output line has been printed
  bool failed = false;

  // row() is the row for a bench, connection count and server, created on first use. No preconditions.
  Row& row(const std::string& bench, int conns, const std::string& server);
  // error() prints `# error: what: why` and remembers the failure. No preconditions.
  void error(const std::string& what, const std::string& why);
  // progress() prints one run's sample as a comment line. Pre: run counts from 0.
  static void progress(const std::string& prefix, int run, const Sample& s);
  // window_start() starts a measured window on s: the sampler's leftovers dropped, the counters read, sampling on.
  // Pre: s is running; no window is open.
  Snapshot window_start(const RunningServer& s);
  // window_end() ends a measured window on s: sampling off, the counters read. Pre: window_start() was called.
  Snapshot window_end(const RunningServer& s);
  // take_samples() collects the window's samples of s, saying so if the sampler's ring overflowed. Pre: the window
  // has ended.
  CpuSampler::Split take_samples(const RunningServer& s, const std::string& prefix);
  // echo_run() measures one echo window on s with the echo load generator; nothing on failure (reported). Pre: s
  // is a running echo server.
  std::optional<Sample> echo_run(RunningServer& s, int conns, const std::string& prefix);
  // http_run() measures one wrk run on s; nothing on failure (reported). Pre: s is a running HTTP server; wrk is
  // executable.
  std::optional<Sample> http_run(RunningServer& s, int conns, const std::string& prefix);
  // count_syscalls() runs the extra load run that counts s's system calls per request; nothing on failure
  // (reported). Pre: s is running; counter->method() is not none.
  std::optional<double> count_syscalls(RunningServer& s, Proto proto, int conns, const std::string& prefix);
  /* measure() starts a fresh server for one run at one connection count, warms
   * it up (HTTP: a wrk run), measures, counts system calls after the last run,
   * and stops it. A fresh process per row keeps rows independent: no goroutines,
   * buffers or CPU-time history left by the previous connection count. False
   * when the server could not be started. Pre: spec.missing is empty; 0 <= run < a.runs. */
  bool measure(const std::string& bench, Proto proto, const ServerSpec& spec, int conns, int run);
};

// print_results() prints every row's medians, then the ratios and targets per connection count; servers lists,
// per bench ("echo" or "http"), the server names of its rows. Pre: the runs are done.
void print_results(const Bench& b, const std::vector<std::pair<std::string, std::vector<std::string>>>& servers);

}  // namespace gort::bench
