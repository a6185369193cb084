/* `gort-bench net`: network servers on loopback, ours beside the peers in the
 * same run (echo: the Go peer; HTTP: the Go peer and nginx), each server
 * pinned to one CPU and the load generator to another. See net_bench.cpp. */
#pragma once

#include <string>
#include <vector>

namespace gort::bench {

struct NetBenchArgs {
  int runs = 3;           // measured runs per row; each value printed is the median
  int duration_s = 3;     // measured window per run (wrk takes whole seconds)
  double warmup_s = 0.5;  // echo: load before each window; HTTP: one wrk run of ceil(warmup) s per server start
  double count_s = 1;     // the separate run that counts the server's system calls
  std::vector<std::string> benches{"echo", "http"};
  std::vector<int> echo_conns{1, 64, 1000};
  std::vector<int> http_conns{64, 256};
  int procs = 1;                  // --procs given to our servers and the Go peers
  int server_cpu = 0;             // CPU the servers run on
  int load_cpu = 1;               // CPU the load generators (and gort-bench itself) run on
  std::string syscalls = "auto";  // how system calls are counted: auto, perf, strace or none
  // Programs; empty means the default place (see net_bench.cpp).
  std::string echo_server, http_server, go_echo, go_http, nginx, nginx_conf, wrk;
};

/* run_net_bench() measures every server and prints `name value` lines and
 * `#` comments; self is this executable's path (the default programs are
 * found relative to it). 0 when every row that could run ran, 2 when a CPU
 * is not available. Pre: called from the main thread, once at a time (it pins
 * the calling thread and owns SIGINT, SIGTERM and SIGHUP while it runs). */
int run_net_bench(const NetBenchArgs& args, const std::string& self);

}  // namespace gort::bench
