/* Server launch for `gort-bench net`: which server programs there are, and
 * starting one on a free loopback port, pinned to the server CPU, until it
 * answers a correct echo or `GET /`. */
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "child.hpp"
#include "net_bench.hpp"

namespace gort::bench {

enum class Proto { echo, http };

// One server under test: its short name in the result names, and how to start it.
struct ServerSpec {
  std::string name;     // gort, go or nginx
  std::string program;  // path; empty when not found
  bool is_nginx = false;
  std::string missing;  // why it cannot run, or ""
};

// A running server: the child, its port and the processes whose CPU is its CPU.
struct RunningServer {
  Child child;
  std::uint16_t port = 0;
  std::vector<pid_t> pids;
  std::string log;
};

// server_spec() describes the server program at path (nginx when name is "nginx"), missing set from hint when it
// is not executable. No preconditions (path may be "").
ServerSpec server_spec(const std::string& name, const std::string& path, const std::string& hint);

/* start_server() starts spec on a free port, pinned to a.server_cpu with
 * `--procs a.procs` (nginx: the config template nginx_tmpl), and waits (up to
 * 10 s) until it answers a probe; then s.pids are its process tree. "" or why
 * it could not; a port someone took in the meantime is retried with another.
 * Pre: spec.missing is empty; tmpdir exists; s is not running. */
std::string start_server(const ServerSpec& spec, Proto proto, const NetBenchArgs& a, const std::string& nginx_tmpl,
                         const std::string& tmpdir, RunningServer& s);

}  // namespace gort::bench
