/* Reading CPU time and the process tree from /proc (see proc_cpu.hpp). */
#include "proc_cpu.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

#include "sys.hpp"

namespace gort::bench {
namespace {

// stat_fields() are the fields of /proc/PID/stat after the command name (field 3 on), empty if gone.
std::vector<std::string> stat_fields(pid_t pid) {
  const std::string s = read_text("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t close_paren = s.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::stringstream ss(s.substr(close_paren + 1));
  std::vector<std::string> f;
  for (std::string tok; ss >> tok;) f.push_back(tok);
  return f;
}

// numbered_entries() are the entries of a /proc directory named by a number (pids, or a process's thread ids).
std::vector<pid_t> numbered_entries(const std::string& dir) {
  std::vector<pid_t> ids;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return ids;
  while (const dirent* e = readdir(d)) {
    char* end = nullptr;
    const long id = std::strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == '\0') ids.push_back(static_cast<pid_t>(id));
  }
  closedir(d);
  return ids;
}

}  // namespace

CpuTimes process_cpu(const std::vector<pid_t>& pids) {
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  CpuTimes t;
  for (pid_t pid : pids) {
    const std::vector<std::string> f = stat_fields(pid);
    if (f.size() < 13) continue;
    t.user_s += std::stod(f[11]) / tick;  // field 14, utime
    t.sys_s += std::stod(f[12]) / tick;   // field 15, stime
  }
  return t;
}

std::vector<double> cpus_busy_s() {
  static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::vector<double> busy;
  std::stringstream ss(read_text("/proc/stat"));
  for (std::string line; std::getline(ss, line);) {
    int cpu = -1;
    unsigned long long v[8] = {};
    const int n = std::sscanf(line.c_str(), "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2],
                              &v[3], &v[4], &v[5], &v[6], &v[7]);
    if (n != 9 || cpu < 0) continue;
    if (busy.size() <= static_cast<std::size_t>(cpu)) busy.resize(static_cast<std::size_t>(cpu) + 1);
    // user nice system idle iowait irq softirq steal
    busy[static_cast<std::size_t>(cpu)] = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
  }
  return busy;
}

Snapshot snapshot(const std::vector<pid_t>& pids) { return Snapshot{process_cpu(pids), cpus_busy_s()}; }

std::vector<pid_t> process_tree(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (pid_t pid : numbered_entries("/proc")) {
    const std::vector<std::string> f = stat_fields(pid);
    if (f.size() > 1) children.emplace(static_cast<pid_t>(std::stol(f[1])), pid);  // field 4, ppid
  }
  std::vector<pid_t> tree{root};
  for (std::size_t i = 0; i < tree.size(); ++i) {
    auto [lo, hi] = children.equal_range(tree[i]);
    for (auto it = lo; it != hi; ++it) tree.push_back(it->second);
  }
  return tree;
}

std::vector<pid_t> process_threads(const std::vector<pid_t>& pids) {
  std::vector<pid_t> tids;
  for (pid_t pid : pids) {
    for (pid_t tid : numbered_entries("/proc/" + std::to_string(pid) + "/task")) tids.push_back(tid);
  }
  return tids;
}

}  // namespace gort::bench
