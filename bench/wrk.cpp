/* Running wrk and reading its `--latency` report (see wrk.hpp). */
#include "wrk.hpp"

#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

#include "child.hpp"
#include "sys.hpp"

namespace gort::bench {
namespace {

// wrk_time_us() converts a wrk time such as "403.00us", "1.20ms" or "2.00s" to microseconds, -1 if malformed.
double wrk_time_us(const std::string& s) {
  double v = 0;
  char unit[8] = "";
  if (std::sscanf(s.c_str(), "%lf%7s", &v, unit) != 2) return -1;
  const std::string u = unit;
  if (u == "us") return v;
  if (u == "ms") return v * 1e3;
  if (u == "s") return v * 1e6;
  if (u == "m") return v * 60e6;
  return -1;
}

// parse_wrk() reads `wrk --latency` output into r (error set when something is missing).
void parse_wrk(const std::string& out, WrkResult& r) {
  std::stringstream ss(out);
  bool have_rps = false, have_p50 = false, have_p99 = false;
  for (std::string line; std::getline(ss, line);) {
    const std::size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    const std::string t = line.substr(start);
    unsigned long long n = 0;
    double secs = 0;
    char first[32] = "", second[32] = "";
    const bool pair = std::sscanf(t.c_str(), "%31s %31s", first, second) == 2;
    if (t.rfind("Requests/sec:", 0) == 0) {
      have_rps = std::sscanf(t.c_str(), "Requests/sec: %lf", &r.rps) == 1;
    } else if (std::sscanf(t.c_str(), "%llu requests in %lf", &n, &secs) == 2) {
      r.requests = n;
    } else if (pair && std::strcmp(first, "50%") == 0) {
      r.p50_us = wrk_time_us(second);
      have_p50 = r.p50_us >= 0;
    } else if (pair && std::strcmp(first, "99%") == 0) {
      r.p99_us = wrk_time_us(second);
      have_p99 = r.p99_us >= 0;
    } else if (t.rfind("Socket errors:", 0) == 0) {
      r.socket_errors = t;
    } else if (t.rfind("Non-2xx or 3xx responses:", 0) == 0) {
      r.error = t;
    }
  }
  if (r.error.empty() && (!have_rps || !have_p50 || !have_p99 || r.requests == 0)) {
    r.error = "cannot read wrk's output: " + last_line(out);
  }
}

}  // namespace

WrkResult run_wrk(const std::string& wrk, std::uint16_t port, int conns, int seconds, int cpu,
                  const std::string& tmpdir, const std::function<void()>& started, const std::function<void()>& ended) {
  WrkResult r;
  const std::string out = tmpdir + "/wrk.out";
  const std::vector<std::string> argv{wrk,
                                      "-t1",
                                      "-c" + std::to_string(conns),
                                      "-d" + std::to_string(seconds) + "s",
                                      "--latency",
                                      "http://127.0.0.1:" + std::to_string(port) + "/"};
  Child c;
  started();
  const double t0 = now_s();
  r.error = c.start(argv, cpu, out);
  if (!r.error.empty()) {
    ended();
    return r;
  }
  int status = 0;
  rusage ru{};
  const bool done = c.wait(seconds + 15.0, status, ru);
  r.wall_s = now_s() - t0;
  ended();
  if (!done) {
    r.error = "wrk did not finish within " + std::to_string(seconds + 15) + " s: killed";
    return r;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.error = "wrk " + Child::describe(status) + ": " + last_line(read_text(out));
    return r;
  }
  r.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  parse_wrk(read_text(out), r);
  return r;
}

}  // namespace gort::bench
