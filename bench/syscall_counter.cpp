/* Counting a server's system calls with perf tracepoint counters or strace
 * (see syscall_counter.hpp). */
#include "syscall_counter.hpp"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "proc_cpu.hpp"
#include "sys.hpp"

namespace gort::bench {
namespace {

// syscall_tracepoint_id() is the id of raw_syscalls:sys_enter from tracefs, -1 if not readable.
long syscall_tracepoint_id() {
  for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    const std::string id = read_text(std::string(dir) + "/events/raw_syscalls/sys_enter/id");
    if (!id.empty()) return std::stol(id);
  }
  return -1;
}

// open_syscall_counter() opens a disabled sys_enter counter on thread tid (0: ourselves), inherited by its new threads.
int open_syscall_counter(long tracepoint, pid_t tid) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.config = static_cast<std::uint64_t>(tracepoint);
  attr.disabled = 1;
  attr.inherit = 1;
  return static_cast<int>(syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

}  // namespace

SyscallCounter::SyscallCounter(const std::string& want, int load_cpu, std::string tmpdir, std::string& note)
    : load_cpu_(load_cpu), tmpdir_(std::move(tmpdir)) {
  std::string perf_problem;
  if (want == "auto" || want == "perf") {
    tracepoint_ = syscall_tracepoint_id();
    if (tracepoint_ < 0) {
      perf_problem = "tracefs has no raw_syscalls/sys_enter/id";
    } else {
      const int fd = open_syscall_counter(tracepoint_, 0);
      if (fd >= 0) {
        close(fd);
        method_ = CountMethod::perf;
        note = "perf_event_open(raw_syscalls:sys_enter) on every server thread, enabled over the window";
        return;
      }
      perf_problem = errno_text("perf_event_open(raw_syscalls:sys_enter)");
    }
  }
  if (want == "auto" || want == "strace") {
    strace_ = find_program("strace");
    if (!strace_.empty()) {
      method_ = CountMethod::strace;
      note = "strace -c -f -p over the whole count run (connection setup included; " +
             (perf_problem.empty() ? std::string("chosen") : "perf counters unusable: " + perf_problem) + ")";
      return;
    }
  }
  if (want == "none") {
    note = "not counted (--syscalls none)";
  } else if (want == "perf") {
    note = "not counted: " + perf_problem;
  } else {
    note = "not counted: " + (perf_problem.empty() ? std::string("") : perf_problem + "; ") +
           "strace not found (Debian package strace)";
  }
}

void SyscallCounter::enable() { ioctl_all(PERF_EVENT_IOC_ENABLE); }

void SyscallCounter::disable() { ioctl_all(PERF_EVENT_IOC_DISABLE); }

void SyscallCounter::ioctl_all(unsigned long request) {
  for (int fd : fds_) ioctl(fd, request, 0);
}

std::string SyscallCounter::attach(const std::vector<pid_t>& pids) {
  if (method_ == CountMethod::perf) {
    for (pid_t tid : process_threads(pids)) {
      const int fd = open_syscall_counter(tracepoint_, tid);
      if (fd < 0 && errno != ESRCH) return errno_text("perf_event_open(thread " + std::to_string(tid) + ")");
      if (fd >= 0) fds_.push_back(fd);
    }
    return fds_.empty() ? "no thread to count" : "";
  }
  if (method_ == CountMethod::strace) {
    std::vector<std::string> argv{strace_, "-c", "-f", "-o", tmpdir_ + "/strace.out"};
    for (pid_t pid : pids) {
      argv.push_back("-p");
      argv.push_back(std::to_string(pid));
    }
    const std::string log = tmpdir_ + "/strace.log";
    std::string err = tracer_.start(argv, load_cpu_, log);
    if (!err.empty()) return err;
    // strace says "Process N attached" per thread; give it a moment after the first.
    for (const double deadline = now_s() + 5; now_s() < deadline; sleep_s(0.02)) {
      if (read_text(log).find("attached") != std::string::npos) {
        sleep_s(0.2);
        return "";
      }
    }
    return "strace did not attach: " + last_line(read_text(log));
  }
  return "system calls are not counted";
}

std::optional<std::uint64_t> SyscallCounter::finish(std::string& error) {
  if (method_ == CountMethod::perf) {
    std::uint64_t total = 0;
    for (int fd : fds_) {
      std::uint64_t v = 0;
      if (read(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v)) total += v;
      close(fd);
    }
    fds_.clear();
    return total;
  }
  tracer_.stop();  // SIGTERM: strace detaches and writes its summary
  // The summary's last line: "100.00    0.123456     1   123456   789 total" (errors column optional).
  std::stringstream ss(read_text(tmpdir_ + "/strace.out"));
  for (std::string line; std::getline(ss, line);) {
    std::stringstream ls(line);
    std::vector<std::string> tok;
    for (std::string t; ls >> t;) tok.push_back(t);
    if (tok.size() >= 5 && tok.back() == "total") return std::stoull(tok[3]);
  }
  error = "no summary from strace";
  return std::nullopt;
}

}  // namespace gort::bench
