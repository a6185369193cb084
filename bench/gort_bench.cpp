// gort-bench: micro-benchmarks of the gort runtime.
//
//   gort-bench stack [--iterations N] [--runs R]
//   gort-bench sched [--runs R] [--quick]
//   gort-bench net [--runs R] [--duration S] [--bench echo,http] ...   (--help lists all)
//
// Results are `name value` lines on stdout (and `#` comment lines); errors go to
// stderr. Bad command-line input prints one line and exits with status 2.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <unistd.h>

#include <string>

#include <CLI/CLI.hpp>

#include "init.hpp"
#include "net_bench.hpp"
#include "sched_bench.hpp"
#include "stack_bench.hpp"

namespace {

using gort::bench::StackBenchArgs;

// self_path() is this executable's path, for re-running it as a child.
std::string self_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("gort-bench");
}

// A Runner runs one parsed subcommand and returns the exit status.
using Runner = std::function<int()>;

// One subcommand: setup() declares its options on sub and returns its runner,
// which reads the values CLI11 parsed into them.
struct Command {
  const char* name;
  const char* help;
  Runner (*setup)(CLI::App& sub);
};

// setup_stack() declares `stack`'s options.
Runner setup_stack(CLI::App& sub) {
  auto args = std::make_shared<StackBenchArgs>();
  sub.add_option("--iterations", args->iterations,
                 "switch round trips and cache alloc+free pairs per run")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000'000}))
      ->capture_default_str();
  sub.add_option("--runs", args->runs, "runs per measurement; each result is their median")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  return [args] { return gort::bench::run_stack_bench(*args); };
}

// setup_sched() declares `sched`'s options.
Runner setup_sched(CLI::App& sub) {
  auto args = std::make_shared<gort::bench::SchedBenchArgs>();
  sub.add_option("--runs", args->runs, "runs per measurement; each result is their median")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  sub.add_flag("--quick", args->quick, "smaller counts (a smoke test)");
  sub.add_option("--go", args->go_peer, "the Go peer program (default: peers/go/sched beside gort-bench)");
  return [args] { return gort::bench::run_sched_bench(*args, self_path()); };
}

// setup_sched_part() declares the hidden `sched-part` used by `sched`'s children.
Runner setup_sched_part(CLI::App& sub) {
  auto args = std::make_shared<gort::bench::SchedPartArgs>();
  sub.group("");  // hidden from --help
  sub.add_option("--part", args->part, "p1, p2 or rss")->required()->check(CLI::IsMember({"p1", "p2", "rss"}));
  sub.add_option("--runs", args->runs)->check(CLI::Range(1, 1000));
  sub.add_flag("--quick", args->quick);
  return [args] { return gort::bench::run_sched_part(*args); };
}

// setup_net() declares `net`'s options.
Runner setup_net(CLI::App& sub) {
  auto args = std::make_shared<gort::bench::NetBenchArgs>();
  sub.add_option("--runs", args->runs, "measured runs per row; each value is their median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  sub.add_option("--duration", args->duration_s, "measured window per run, seconds")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  sub.add_option("--warmup", args->warmup_s,
                 "warm-up seconds (echo: before each window; http: a wrk run per server start)")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  sub.add_option("--count-duration", args->count_s, "seconds of the extra run per row that counts system calls")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  sub.add_option("--bench", args->benches, "which benchmarks: echo, http")
      ->delimiter(',')
      ->check(CLI::IsMember({"echo", "http"}))
      ->capture_default_str();
  sub.add_option("--echo-conns", args->echo_conns, "echo connection counts")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub.add_option("--http-conns", args->http_conns, "HTTP (wrk) connection counts")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub.add_option("--procs", args->procs, "--procs given to our servers and the Go peers")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub.add_option("--server-cpu", args->server_cpu, "CPU the servers are pinned to")->capture_default_str();
  sub.add_option("--load-cpu", args->load_cpu, "CPU the load generators are pinned to")->capture_default_str();
  sub.add_option("--syscalls", args->syscalls, "how to count system calls")
      ->check(CLI::IsMember({"auto", "perf", "strace", "none"}))
      ->capture_default_str();
  sub.add_option("--echo-server", args->echo_server,
                 "our echo server (default: ../examples/echo_server beside gort-bench)");
  sub.add_option("--http-server", args->http_server,
                 "our HTTP server (default: ../examples/http_server beside gort-bench)");
  sub.add_option("--go-echo", args->go_echo, "the Go echo peer (default: peers/go/echo beside gort-bench)");
  sub.add_option("--go-http", args->go_http, "the Go HTTP peer (default: peers/go/http beside gort-bench)");
  sub.add_option("--nginx", args->nginx, "nginx (default: from PATH or /usr/sbin)");
  sub.add_option("--nginx-conf", args->nginx_conf,
                 "nginx config template (default: peers/nginx/nginx.conf beside gort-bench)");
  sub.add_option("--wrk", args->wrk, "wrk (default: from PATH)");
  return [args] { return gort::bench::run_net_bench(*args, self_path()); };
}

// The subcommands.
constexpr Command kCommands[] = {
    {"stack", "context switches, stack allocation and first touch", setup_stack},
    {"sched", "goroutine scheduling beside the Go peer", setup_sched},
    {"sched-part", "", setup_sched_part},
    {"net", "echo and HTTP servers on loopback beside the Go peers and nginx", setup_net},
};

}  // namespace

// main() parses the command line, starts the runtime and runs the chosen subcommand.
int main(int argc, char** argv) {
  CLI::App app{"gort-bench: micro-benchmarks of the gort runtime"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, Runner>> commands;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    commands.emplace_back(sub, c.setup(*sub));
  }
  /* Not CLI11_PARSE: its exit statuses are CLI11's own (105, 106, 109...) and its
   * message takes two lines; scripts expect one line and status 2, as the runtime
   * itself uses for a bad configuration. --help still exits 0 through app.exit. */
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "gort-bench: %s\n", e.what());
    return 2;
  }
  gort::rt::runtime_init();
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return 2;  // unreachable: require_subcommand(1) made parse() throw
}
