/* CPU accounting from /proc: the user and system time of processes
 * (/proc/PID/stat), every CPU's busy time (/proc/stat), and which processes
 * and threads make up a server (its process tree, their thread ids). */
#pragma once

#include <sys/types.h>

#include <vector>

namespace gort::bench {

// CPU time in seconds, split as the kernel's tick accounting splits it.
struct CpuTimes {
  double user_s = 0, sys_s = 0;
};

// process_cpu() is the user and system time of processes (all their threads, live and ended); a pid that is gone
// adds nothing. No preconditions.
CpuTimes process_cpu(const std::vector<pid_t>& pids);

// cpus_busy_s() is, per CPU number, the time it has been busy (all but idle and iowait; steal included) from
// /proc/stat; empty when /proc/stat cannot be read. No preconditions.
std::vector<double> cpus_busy_s();

// What the counters say at one edge of a window: the server's CPU time, and every CPU's busy time.
struct Snapshot {
  CpuTimes server;
  std::vector<double> busy_s;
};

// snapshot() reads the CPU time of pids and the CPUs' busy time now. No preconditions.
Snapshot snapshot(const std::vector<pid_t>& pids);

// process_tree() is root and every process descended from it now (nginx: master and worker). Pre: root is alive,
// else only root is returned.
std::vector<pid_t> process_tree(pid_t root);

// process_threads() is every thread id of the given processes now. No preconditions (a pid gone adds none).
std::vector<pid_t> process_threads(const std::vector<pid_t>& pids);

}  // namespace gort::bench
