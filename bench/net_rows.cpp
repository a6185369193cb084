/* The rows of `gort-bench net` (see net_rows.hpp): measuring a row's runs
 * and printing the table of medians, ratios and targets. */
#include "net_rows.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "loadgen.hpp"
#include "measure.hpp"
#include "sys.hpp"
#include "wrk.hpp"

namespace gort::bench {
namespace {

/* A CpuSplit is cpu_us_per_req divided into user and kernel: by the sampler's
 * samples when there are enough (user_samples says how many were in user
 * mode), else by /proc/PID/stat (user_samples -1). */
struct CpuSplit {
  double user_us, sys_us, user_samples;
};

// split_cpu() splits cpu_us by the pooled samples of some runs, or by their /proc/PID/stat medians with too few.
CpuSplit split_cpu(double cpu_us, double user_samples, double kernel_samples, double proc_user_us, double proc_sys_us) {
  constexpr double kMinSamples = 20;
  if (user_samples + kernel_samples >= kMinSamples) {
    const double user = cpu_us * user_samples / (user_samples + kernel_samples);
    return CpuSplit{user, cpu_us - user, user_samples};
  }
  return CpuSplit{proc_user_us, proc_sys_us, -1};
}

/* sample_of() turns a window (its requests and length, the snapshots at its
 * edges, the sampler's split, the load generator's CPU time) into a Sample.
 * The server's CPU time is /proc/PID/stat's (its utime + stime is the exact run
 * time); the split into user and kernel is the sampler's when it caught enough
 * samples. What else kept the server's and the load generator's CPUs busy is
 * their busy time minus ours. */
Sample sample_of(const NetBenchArgs& a, double rps, double p50_us, double p99_us, std::uint64_t requests,
                 double window_s, const Snapshot& s0, const Snapshot& s1, const CpuSampler::Split& split,
                 double loadgen_cpu_s) {
  const double n = static_cast<double>(std::max<std::uint64_t>(requests, 1));
  const double user = s1.server.user_s - s0.server.user_s, sys = s1.server.sys_s - s0.server.sys_s;
  const auto others_pct = [&](int cpu) {
    const auto c = static_cast<std::size_t>(cpu);
    if (c >= s0.busy_s.size() || c >= s1.busy_s.size()) return 0.0;
    double others = s1.busy_s[c] - s0.busy_s[c];
    if (cpu == a.server_cpu) others -= user + sys;
    if (cpu == a.load_cpu) others -= loadgen_cpu_s;
    return std::max(0.0, 100 * others / window_s);
  };
  return Sample{rps,
                p50_us,
                p99_us,
                (user + sys) * 1e6 / n,
                user * 1e6 / n,
                sys * 1e6 / n,
                static_cast<double>(split.user),
                static_cast<double>(split.kernel),
                100 * (user + sys) / window_s,
                100 * loadgen_cpu_s / window_s,
                others_pct(a.server_cpu),
                others_pct(a.load_cpu)};
}

// median_of() is the median of one field over a row's samples.
double median_of(const std::vector<Sample>& v, double Sample::*field) {
  std::vector<double> xs;
  for (const Sample& s : v) xs.push_back(s.*field);
  return median(std::move(xs));
}

// The medians of a row, by metric name.
using Medians = std::map<std::string, double>;

// print_row() prints a row's medians and returns them.
Medians print_row(const Row& r) {
  Medians m;
  if (r.samples.empty()) return m;
  m["rps"] = median_of(r.samples, &Sample::rps);
  m["p50_us"] = median_of(r.samples, &Sample::p50_us);
  m["p99_us"] = median_of(r.samples, &Sample::p99_us);
  /* CPU per request is the median of the runs; its split is the fraction of
   * user-mode samples pooled over all runs (a ratio of counts: pooling keeps
   * every sample, where a median would keep one run's). */
  m["cpu_us_per_req"] = median_of(r.samples, &Sample::cpu_us);
  double user_samples = 0, kernel_samples = 0;
  for (const Sample& s : r.samples) {
    user_samples += s.user_samples;
    kernel_samples += s.kernel_samples;
  }
  const CpuSplit c = split_cpu(m["cpu_us_per_req"], user_samples, kernel_samples,
                               median_of(r.samples, &Sample::proc_user_us), median_of(r.samples, &Sample::proc_sys_us));
  m["user_us_per_req"] = c.user_us;
  m["sys_us_per_req"] = c.sys_us;
  if (r.syscalls_per_req) m["syscalls_per_req"] = *r.syscalls_per_req;
  m["server_cpu_pct"] = median_of(r.samples, &Sample::server_cpu_pct);
  m["loadgen_cpu_pct"] = median_of(r.samples, &Sample::loadgen_cpu_pct);
  for (const char* k : {"rps", "p50_us", "p99_us", "user_us_per_req", "sys_us_per_req", "cpu_us_per_req",
                        "syscalls_per_req", "server_cpu_pct", "loadgen_cpu_pct"}) {
    auto it = m.find(k);
    if (it == m.end()) continue;
    int decimals = 3;
    if (it->first == "rps") decimals = 0;
    if (it->first.ends_with("_pct")) decimals = 1;
    if (it->first == "syscalls_per_req") decimals = 4;
    emit((r.prefix + "_" + k).c_str(), it->second, decimals);
  }
  const double others = std::max(median_of(r.samples, &Sample::others_server_cpu_pct),
                                 median_of(r.samples, &Sample::others_load_cpu_pct));
  if (others >= 10) {
    std::printf("# %s: other processes kept the server's or the load generator's CPU %.0f%% busy: disturbed\n",
                r.prefix.c_str(), others);
  }
  // A split from few user-mode samples is imprecise (about 1/sqrt(samples)).
  if (c.user_samples >= 0 && c.user_samples < 100) {
    std::printf("# %s: user_us_per_req rests on %.0f user-mode samples (+-%.0f%%): more --runs or --duration help\n",
                r.prefix.c_str(), c.user_samples, 100 / std::sqrt(std::max(c.user_samples, 1.0)));
  }
  if (m["loadgen_cpu_pct"] >= 90) {
    std::printf(
        "# %s: loadgen is the bottleneck (%.0f%% CPU): rps is the load generator's limit, "
        "CPU per request is still the server's\n",
        r.prefix.c_str(), m["loadgen_cpu_pct"]);
  }
  return m;
}

// ratio() prints `<stem>_<label>_ratio_vs_<peer>` = ours / theirs of a metric and returns it (nothing when either is
// missing).
std::optional<double> ratio(const std::string& stem, const std::string& metric, const std::string& label,
                            const Medians& ours, const Medians& theirs, const std::string& peer) {
  auto o = ours.find(metric), t = theirs.find(metric);
  if (o == ours.end() || t == theirs.end() || t->second <= 0) return std::nullopt;
  const double v = o->second / t->second;
  emit((stem + "_" + label + "_ratio_vs_" + peer).c_str(), v, 3);
  return v;
}

// target() prints whether a target is met, if its value was measured.
void target(const std::string& stem, const std::string& what, std::optional<double> v, const char* op, double limit) {
  if (!v) return;
  const bool met = std::string(op) == "<=" ? *v <= limit : std::string(op) == "<" ? *v < limit : *v >= limit;
  std::printf("# target %s: %s %.3f %s %g: %s\n", stem.c_str(), what.c_str(), *v, op, limit, met ? "met" : "MISSED");
}

}  // namespace

Row& Bench::row(const std::string& bench, int conns, const std::string& server) {
  const std::string prefix = "net_" + bench + "_c" + std::to_string(conns) + "_" + server;
  Row& r = rows[prefix];
  r.prefix = prefix;
  return r;
}

void Bench::error(const std::string& what, const std::string& why) {
  std::printf("# error: %s: %s\n", what.c_str(), why.c_str());
  std::fflush(stdout);
  failed = true;
}

void Bench::progress(const std::string& prefix, int run, const Sample& s) {
  const CpuSplit c = split_cpu(s.cpu_us, s.user_samples, s.kernel_samples, s.proc_user_us, s.proc_sys_us);
  std::printf(
      "# %s run %d: %.0f rps, p50 %.1f us, p99 %.1f us, user %.2f + sys %.2f us/req, cpu: server %.0f%%, "
      "loadgen %.0f%%, others on their CPUs %.0f%% / %.0f%%\n",
      prefix.c_str(), run + 1, s.rps, s.p50_us, s.p99_us, c.user_us, c.sys_us, s.server_cpu_pct, s.loadgen_cpu_pct,
      s.others_server_cpu_pct, s.others_load_cpu_pct);
  std::fflush(stdout);
}

Snapshot Bench::window_start(const RunningServer& s) {
  sampler->take({});
  Snapshot snap = snapshot(s.pids);
  sampler->enable();
  return snap;
}

Snapshot Bench::window_end(const RunningServer& s) {
  sampler->disable();
  return snapshot(s.pids);
}

CpuSampler::Split Bench::take_samples(const RunningServer& s, const std::string& prefix) {
  const CpuSampler::Split split = sampler->take(s.pids);
  if (split.lost > 0) {
    std::printf("# %s: the sampler's ring overflowed (%llu samples lost): the split covers the window's start\n",
                prefix.c_str(), static_cast<unsigned long long>(split.lost));
  }
  return split;
}

std::optional<Sample> Bench::echo_run(RunningServer& s, int conns, const std::string& prefix) {
  Snapshot s0, s1;
  const auto before = [&] { s0 = window_start(s); };
  const auto after = [&] { s1 = window_end(s); };
  const EchoLoadConfig cfg{s.port, conns, 64, a.warmup_s, static_cast<double>(a.duration_s)};
  const EchoLoadResult r = run_echo_load(cfg, before, after);
  const CpuSampler::Split split = take_samples(s, prefix);
  if (!r.ok) {
    error(prefix, r.error);
    return std::nullopt;
  }
  return sample_of(a, static_cast<double>(r.requests) / r.window_s, r.p50_us, r.p99_us, r.requests, r.window_s, s0, s1,
                   split, r.cpu_s);
}

std::optional<Sample> Bench::http_run(RunningServer& s, int conns, const std::string& prefix) {
  Snapshot s0, s1;
  const auto before = [&] { s0 = window_start(s); };
  const auto after = [&] { s1 = window_end(s); };
  const WrkResult r = run_wrk(wrk, s.port, conns, a.duration_s, a.load_cpu, tmpdir, before, after);
  const CpuSampler::Split split = take_samples(s, prefix);
  if (!r.error.empty()) {
    error(prefix, r.error);
    return std::nullopt;
  }
  if (!r.socket_errors.empty()) std::printf("# %s: wrk: %s\n", prefix.c_str(), r.socket_errors.c_str());
  return sample_of(a, r.rps, r.p50_us, r.p99_us, r.requests, r.wall_s, s0, s1, split, r.cpu_s);
}

std::optional<double> Bench::count_syscalls(RunningServer& s, Proto proto, int conns, const std::string& prefix) {
  std::string why = counter->attach(s.pids);
  const auto on = [&] { counter->enable(); };
  const auto off = [&] { counter->disable(); };
  std::uint64_t requests = 0;
  if (why.empty() && proto == Proto::echo) {
    const EchoLoadConfig cfg{s.port, conns, 64, a.warmup_s, a.count_s};
    const EchoLoadResult r = run_echo_load(cfg, on, off);
    why = r.error;
    requests = counter->method() == CountMethod::perf ? r.requests : r.total_requests;
  } else if (why.empty()) {
    const int seconds = std::max(1, static_cast<int>(std::lround(a.count_s)));
    const WrkResult r = run_wrk(wrk, s.port, conns, seconds, a.load_cpu, tmpdir, on, off);
    why = r.error;
    requests = r.requests;
  }
  std::string finish_error;
  const std::optional<std::uint64_t> calls = counter->finish(finish_error);
  if (why.empty()) why = finish_error;
  if (!why.empty() || !calls || requests == 0) {
    error(prefix + " (counting system calls)", why.empty() ? "no requests" : why);
    return std::nullopt;
  }
  return static_cast<double>(*calls) / static_cast<double>(requests);
}

bool Bench::measure(const std::string& bench, Proto proto, const ServerSpec& spec, int conns, int run) {
  RunningServer s;
  const std::string why = start_server(spec, proto, a, nginx_tmpl, tmpdir, s);
  if (!why.empty()) {
    error("net_" + bench + "_" + spec.name, "cannot start " + spec.program + ": " + why);
    return false;
  }
  if (announced.insert(bench + "/" + spec.name).second) {
    // The server's first words: ours and Go's say where they listen (Go: version, GOMAXPROCS).
    std::string first = spec.is_nginx ? first_output_line(shell_quoted(spec.program) + " -v") : read_text(s.log);
    first = first.substr(0, first.find('\n'));
    std::printf("# net_%s_%s: %s\n", bench.c_str(), spec.name.c_str(), first.c_str());
  }
  Row& row = this->row(bench, conns, spec.name);
  if (proto == Proto::http && a.warmup_s > 0) {
    const int warm = std::max(1, static_cast<int>(std::ceil(a.warmup_s)));
    const auto nothing = [] {};
    const WrkResult w = run_wrk(wrk, s.port, conns, warm, a.load_cpu, tmpdir, nothing, nothing);
    if (!w.error.empty()) error(row.prefix + " (warm-up)", w.error);
  }
  const std::optional<Sample> smp =
      proto == Proto::echo ? echo_run(s, conns, row.prefix) : http_run(s, conns, row.prefix);
  int status = 0;
  if (s.child.exited(status)) {
    error(row.prefix, "the server " + Child::describe(status) + ": " + last_line(read_text(s.log)));
    return true;
  }
  if (!smp) return true;
  row.samples.push_back(*smp);
  progress(row.prefix, run, *smp);
  if (run == a.runs - 1 && counter->method() != CountMethod::none) {
    row.syscalls_per_req = count_syscalls(s, proto, conns, row.prefix);
  }
  return true;
}

void print_results(const Bench& b, const std::vector<std::pair<std::string, std::vector<std::string>>>& servers) {
  const NetBenchArgs& a = b.a;
  for (const auto& [bench, names] : servers) {
    for (int conns : bench == "echo" ? a.echo_conns : a.http_conns) {
      const std::string stem = "net_" + bench + "_c" + std::to_string(conns);
      std::map<std::string, Medians> med;
      for (const std::string& name : names) {
        auto it = b.rows.find(stem + "_" + name);
        if (it != b.rows.end()) med[name] = print_row(it->second);
      }
      const Medians& ours = med["gort"];
      if (bench == "echo") {
        ratio(stem, "rps", "rps", ours, med["go"], "go");
        const auto user = ratio(stem, "user_us_per_req", "user", ours, med["go"], "go");
        ratio(stem, "cpu_us_per_req", "cpu", ours, med["go"], "go");
        ratio(stem, "syscalls_per_req", "syscalls", ours, med["go"], "go");
        target(stem, "user CPU per request, gort / go", user, "<=", 0.5);
        std::optional<double> calls;
        if (auto it = ours.find("syscalls_per_req"); it != ours.end()) calls = it->second;
        target(stem, "gort syscalls per request", calls, "<=", 0.1);
      } else {
        const auto rps = ratio(stem, "rps", "rps", ours, med["nginx"], "nginx");
        const auto cpu = ratio(stem, "cpu_us_per_req", "cpu", ours, med["nginx"], "nginx");
        const auto user = ratio(stem, "user_us_per_req", "user", ours, med["nginx"], "nginx");
        ratio(stem, "syscalls_per_req", "syscalls", ours, med["nginx"], "nginx");
        ratio(stem, "rps", "rps", ours, med["go"], "go");
        ratio(stem, "cpu_us_per_req", "cpu", ours, med["go"], "go");
        ratio(stem, "user_us_per_req", "user", ours, med["go"], "go");
        target(stem, "CPU per request, gort / nginx", cpu, "<=", 1);
        target(stem, "user CPU per request, gort / nginx", user, "<", 1);
        target(stem, "requests/s, gort / nginx", rps, ">=", 1);
      }
    }
  }
}

}  // namespace gort::bench
