/* `gort-bench net`: our network servers beside their peers, on loopback, in
 * the same run and under the same load.
 *
 *   echo  examples/echo_server vs the Go peer (bench/peers/go/echo):
 *         64-byte ping-pong on 1, 64 and 1,000 connections, driven by
 *         gort-bench's own epoll client (loadgen.cpp) on this process's thread
 *   http  examples/http_server vs the Go peer (bench/peers/go/http) and nginx
 *         (bench/peers/nginx/nginx.conf, one worker): `GET /` answered with
 *         "Hello, World!", driven by `wrk -t1 --latency` with 64 and 256
 *         connections
 *
 * Every server runs pinned to --server-cpu (default 0) and is given
 * `--procs 1` (nginx: one worker); the load generator and gort-bench itself run
 * on --load-cpu (default 1), so the two never share a CPU. Per server and
 * connection count (a row) it prints, as `name value` lines such as
 * net_echo_c64_gort_rps:
 *
 *   _rps                 requests (round trips) per second in the window
 *   _p50_us, _p99_us     latency seen by the load generator
 *   _cpu_us_per_req      server CPU time per request: utime + stime of
 *                        /proc/PID/stat (all threads; nginx: master and
 *                        worker) over the window
 *   _user_us_per_req     its split into user and kernel mode (see below)
 *   _sys_us_per_req
 *   _syscalls_per_req    the server's system calls per request, counted in a
 *                        separate run (see below)
 *   _server_cpu_pct      server CPU time / window (100 = its CPU is saturated)
 *   _loadgen_cpu_pct     the load generator's CPU time / window; near 100 the
 *                        generator, not the server, limits _rps
 *
 * and the ratios ours / Go and ours / nginx with the targets they are held to
 * (echo: user CPU per request <= 0.5x Go's, <= 0.1 syscalls per request;
 * HTTP: CPU per request <= nginx's, user CPU below nginx's, rps >= nginx's).
 *
 * Runs: each row is measured --runs times and every value printed is the
 * median of its runs (each metric on its own; the user/kernel split pools the
 * runs' samples). Runs are interleaved: for each connection count, run 1 of
 * every server, ..., then run 2 in the reverse order, so a slow phase of the
 * shared VM hits all servers alike. Every run starts the server afresh and
 * warms it up (echo: --warmup seconds of the same load; HTTP: a wrk run).
 *
 * User/kernel split: /proc/PID/stat's utime and stime are no good over a
 * window (the kernel samples them at its tick and rescales the task's whole
 * history, see CpuSampler), so the window's CPU time is split by sampling the
 * server's CPU with perf (cpu-clock, 1 kHz). Without the permission for that
 * (not root) the /proc split is used and the header says so. The load on the
 * two CPUs from other processes is reported when it disturbs a row.
 *
 * System calls are counted in one extra run per row, after the last measured
 * one, because counting slows every system call on the machine (a syscall
 * tracepoint puts all tasks on the slow syscall path). Preferred method:
 * perf_event_open(2) on the raw_syscalls:sys_enter tracepoint, one counter per
 * server thread (inherited by threads created later), enabled exactly over the
 * window. It is opened directly: `perf stat -p` (linux-perf 6.1) counts nothing
 * when attached to a running process under our 6.18 kernel. Fallback:
 * `strace -c -f -p`, which counts the whole run, connection setup included,
 * and slows the server a lot (only the count is used from that run).
 *
 * A missing program (ours not built, Go, nginx or wrk not installed) prints
 * `# skipped: ...` and the rest goes on. Servers and load generators are our
 * children in their own process groups: each is stopped with SIGTERM, then
 * SIGKILL, when done, on every error path, and when gort-bench is interrupted;
 * a load run that outlives its time is killed. Ports come from binding port 0.
 *
 * This file's one job is the driver: check the CPUs, find the programs, print
 * the header, run the rows in the interleaved order above, then the table.
 * The pieces: child.hpp (child processes), proc_cpu.hpp (/proc CPU
 * accounting), cpu_sampler.hpp (the perf sampler), syscall_counter.hpp (the
 * syscall counter), net_server.hpp (server launch), wrk.hpp (wrk), loadgen.hpp
 * (the echo load), net_rows.hpp (the rows: measuring and printing them). */
#include "net_bench.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "child.hpp"
#include "cpu_sampler.hpp"
#include "net_rows.hpp"
#include "net_server.hpp"
#include "sys.hpp"
#include "syscall_counter.hpp"

namespace gort::bench {
namespace {

// pin_self() pins the calling thread (and the threads it creates) to cpu; "" or the error.
std::string pin_self(int cpu) {
  const int err = pin_to_cpu(cpu);
  if (err == 0) return "";
  return "sched_setaffinity(CPU " + std::to_string(cpu) + "): " + std::strerror(err);
}

// raise_fd_limit() lifts the soft open-file limit to the hard one (1,000 connections; children inherit it).
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// or_default() is path if given, else the default.
std::string or_default(const std::string& path, const std::string& dflt) { return path.empty() ? dflt : path; }

}  // namespace

int run_net_bench(const NetBenchArgs& a, const std::string& self) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  for (int cpu : {a.server_cpu, a.load_cpu}) {
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) {
      std::fprintf(stderr, "gort-bench net: CPU %d is not available to this process\n", cpu);
      return 2;
    }
  }
  if (const std::string err = pin_self(a.load_cpu); !err.empty()) {
    std::fprintf(stderr, "gort-bench net: %s\n", err.c_str());
    return 1;
  }
  raise_fd_limit();
  InterruptGuard interrupts;
  char tmpl[] = "/tmp/gort-bench-net.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "gort-bench net: %s\n", errno_text("mkdtemp").c_str());
    return 1;
  }
  static_assert(sizeof tmpl <= kInterruptDirMax);
  remove_on_interrupt(tmpl);
  const std::string dir = self.substr(0, self.rfind('/') + 1);
  std::string count_note;
  SyscallCounter counter(a.syscalls, a.load_cpu, tmpl, count_note);
  CpuSampler sampler;
  const std::string sampler_problem = sampler.open(a.server_cpu, a.duration_s);
  Bench b{a, tmpl, or_default(a.wrk, find_program("wrk")), "", &counter, &sampler, {}, {}, false};
  const std::string nginx_conf = or_default(a.nginx_conf, dir + "peers/nginx/nginx.conf");
  b.nginx_tmpl = read_text(nginx_conf);

  std::vector<std::pair<std::string, std::vector<ServerSpec>>> plan;
  for (const std::string& bench : a.benches) {
    const bool echo = bench == "echo";
    const std::string ours = echo ? "echo_server" : "http_server";
    std::vector<ServerSpec> specs{
        server_spec("gort", or_default(echo ? a.echo_server : a.http_server, dir + "../examples/" + ours),
                    "examples/" + ours + " not built"),
        server_spec("go", or_default(echo ? a.go_echo : a.go_http, dir + "peers/go/" + bench),
                    "the go-peers target builds it when golang-go is installed")};
    if (!echo) {
      specs.push_back(server_spec("nginx", or_default(a.nginx, find_program("nginx")), "Debian package nginx"));
      if (specs.back().missing.empty() && b.nginx_tmpl.empty())
        specs.back().missing = "no config template at " + nginx_conf;
    }
    if (!echo && !executable(b.wrk)) {
      for (ServerSpec& s : specs) s.missing = "wrk not found (Debian package wrk)";
    }
    plan.emplace_back(bench, std::move(specs));
  }

  std::printf("# net: servers on CPU %d (--procs %d; nginx: 1 worker), load generators on CPU %d%s\n", a.server_cpu,
              a.procs, a.load_cpu, a.server_cpu == a.load_cpu ? " (the same CPU: results are not comparable)" : "");
  std::printf("# net: %d run(s) per row, medians; %d s windows; warm-up: echo %.1f s per run, http %d s of wrk\n",
              a.runs, a.duration_s, a.warmup_s, std::max(1, static_cast<int>(std::ceil(a.warmup_s))));
  std::printf(
      "# net: echo load: gort-bench's epoll client, 64-byte ping-pong; http load: %s -t1 --latency\n",
      executable(b.wrk) ? first_output_line(shell_quoted(b.wrk) + " -v 2>&1 | cut -d' ' -f1,2").c_str() : "wrk");
  if (sampler.is_open()) {
    std::printf(
        "# net: server CPU: utime + stime of /proc/PID/stat over the window (median of runs), split into user and "
        "kernel by sampling CPU %d at %.0f Hz (perf cpu-clock, samples pooled over the runs)\n",
        a.server_cpu, 1e9 / CpuSampler::kPeriodNs);
  } else {
    std::printf(
        "# net: server CPU: utime, stime of /proc/PID/stat over the window (cannot sample: %s); the split is the "
        "kernel's tick samples scaled by the process's whole life, imprecise over a window\n",
        sampler_problem.c_str());
  }
  if (counter.method() == CountMethod::none) {
    std::printf("# net: syscalls: %s\n", count_note.c_str());
  } else {
    std::printf("# net: syscalls: %s, in a separate %.1f s run per row\n", count_note.c_str(), a.count_s);
  }
  for (const auto& [bench, specs] : plan) {
    for (const ServerSpec& s : specs) {
      if (!s.missing.empty())
        std::printf("# skipped: net_%s_*_%s: %s\n", bench.c_str(), s.name.c_str(), s.missing.c_str());
    }
  }
  std::fflush(stdout);

  std::set<std::string> broken;  // servers that failed to start: not retried
  for (int run = 0; run < a.runs; ++run) {
    for (const auto& [bench, specs] : plan) {
      const Proto proto = bench == "echo" ? Proto::echo : Proto::http;
      for (int conns : proto == Proto::echo ? a.echo_conns : a.http_conns) {
        std::vector<const ServerSpec*> order;
        for (const ServerSpec& s : specs) order.push_back(&s);
        if (run % 2 == 1) std::reverse(order.begin(), order.end());
        for (const ServerSpec* s : order) {
          const std::string key = bench + "/" + s->name;
          if (!s->missing.empty() || broken.contains(key)) continue;
          if (!b.measure(bench, proto, *s, conns, run)) broken.insert(key);
        }
      }
    }
  }

  std::vector<std::pair<std::string, std::vector<std::string>>> names;
  for (const auto& [bench, specs] : plan) {
    std::vector<std::string> n;
    for (const ServerSpec& s : specs) n.push_back(s.name);
    names.emplace_back(bench, n);
  }
  print_results(b, names);
  std::printf(
      "# targets: echo user CPU/req <= 0.5x go and <= 0.1 syscalls/req; "
      "http CPU/req <= nginx, user CPU/req < nginx, rps >= nginx\n");
  remove_on_interrupt("");
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return b.failed ? 1 : 0;
}

}  // namespace gort::bench
