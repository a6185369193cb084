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
 * a load run that outlives its time is killed. Ports come from binding port 0. */
#include "net_bench.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loadgen.hpp"
#include "measure.hpp"

namespace gort::bench {
namespace {

namespace fs = std::filesystem;

// now_s() is CLOCK_MONOTONIC in seconds.
double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// sleep_s() sleeps for s seconds.
void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// errno_text() is "what: strerror(errno)".
std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// read_text() is the whole content of a file, "" when it cannot be read.
std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// last_line() is the last non-empty line of text, for quoting a log in an error.
std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  const std::size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

// executable() is true when path names a file we may execute.
bool executable(const std::string& path) {
  std::error_code ec;
  return !path.empty() && access(path.c_str(), X_OK) == 0 && !fs::is_directory(path, ec);
}

// find_program() is the absolute path of name from $PATH or the sbin directories, "" when absent.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (!dir.empty() && executable(dir + "/" + name)) return dir + "/" + name;
  }
  return "";
}

// shell_quoted() is s quoted for the shell.
std::string shell_quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// first_output_line() is the first line `cmd` prints (stdout and stderr), "" on failure.
std::string first_output_line(const std::string& cmd) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return "";
  char line[256] = "";
  if (std::fgets(line, sizeof line, f) == nullptr) line[0] = '\0';
  pclose(f);
  return last_line(line);
}

// free_port() is a loopback TCP port nobody listens on right now (bind to port 0), 0 on failure.
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

// ---- child processes ------------------------------------------------------

/* Process groups of the children alive now (0: free slot), killed by the
 * signal handler if gort-bench is interrupted, so no server outlives us; and
 * the temporary directory it then removes. */
constexpr int kMaxChildren = 8;
std::atomic<pid_t> live_groups[kMaxChildren];
char interrupt_tmpdir[64];

/* on_interrupt() kills every child's process group, removes the temporary
 * directory (fork and exec of rm: async-signal-safe), then dies of the signal. */
void on_interrupt(int sig) {
  for (auto& g : live_groups) {
    const pid_t pgid = g.load();
    if (pgid > 0) kill(-pgid, SIGKILL);
  }
  if (interrupt_tmpdir[0] != '\0') {
    const pid_t rm = fork();
    if (rm == 0) {
      execl("/bin/rm", "rm", "-rf", "--", interrupt_tmpdir, static_cast<char*>(nullptr));
      _exit(127);
    }
    if (rm > 0) waitpid(rm, nullptr, 0);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

/* A Child is a program we started in its own process group, pinned to a CPU,
 * its output in a file. It is stopped (SIGTERM, then SIGKILL) when it goes out
 * of scope. */
class Child {
 public:
  Child() = default;
  // The destructor stops the child if it still runs.
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // start() runs argv[0] (a path) pinned to cpu with stdout and stderr to out_path; "" or the error.
  std::string start(const std::vector<std::string>& argv, int cpu, const std::string& out_path);
  // pid() is the child's pid (and process group), -1 before start().
  pid_t pid() const { return pid_; }
  // wait() reaps the child if it ends within timeout_s; fills status and the child's resource usage.
  bool wait(double timeout_s, int& status, rusage& ru);
  // exited() is true (status set) when the child has ended; it does not block.
  bool exited(int& status);
  // stop() ends the child and its group: SIGTERM, then SIGKILL after 3 s; then it is reaped.
  void stop();
  // describe() says how a wait() status ended the child.
  static std::string describe(int status);

 private:
  // forget() marks the child reaped and frees its slot in live_groups.
  void forget();

  pid_t pid_ = -1;
  int slot_ = -1;
};

std::string Child::start(const std::vector<std::string>& argv, int cpu, const std::string& out_path) {
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (int i = 0; i < kMaxChildren && slot_ < 0; ++i) {
    pid_t expected = 0;
    if (live_groups[i].compare_exchange_strong(expected, -1)) slot_ = i;  // -1: reserved
  }
  if (slot_ < 0) return "too many child processes";
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) return errno_text("pipe2");
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) signal(sig, SIG_DFL);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int err = 0;
    if (sched_setaffinity(0, sizeof set, &set) < 0) err = errno;
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) err = errno;
    if (err == 0) {
      dup2(in, 0);
      dup2(out, 1);
      dup2(out, 2);
      execv(cargv[0], cargv.data());
      err = errno;
    }
    [[maybe_unused]] ssize_t w = write(errpipe[1], &err, sizeof err);
    _exit(127);
  }
  close(errpipe[1]);
  if (pid < 0) {
    close(errpipe[0]);
    live_groups[slot_].store(0);
    slot_ = -1;
    return errno_text("fork");
  }
  setpgid(pid, pid);  // also here, so the group exists before anyone signals it
  pid_ = pid;
  live_groups[slot_].store(pid);
  int err = 0;
  const ssize_t n = read(errpipe[0], &err, sizeof err);  // EOF: exec succeeded
  close(errpipe[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    stop();
    return "cannot run " + argv[0] + ": " + std::strerror(err);
  }
  return "";
}

bool Child::wait(double timeout_s, int& status, rusage& ru) {
  if (pid_ < 0) return false;
  const double deadline = now_s() + timeout_s;
  // glibc 2.36 declares pidfd_open() without extern "C" (fixed in 2.37): call the kernel directly.
  const int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  for (;;) {
    const pid_t r = wait4(pid_, &status, WNOHANG, &ru);
    if (r == pid_) break;
    if (r < 0 && errno == ECHILD) {  // reaped behind our back (SIGCHLD ignored): gone, usage unknown
      status = 0;
      ru = rusage{};
      break;
    }
    const double left = deadline - now_s();
    if (left <= 0) {
      if (pfd >= 0) close(pfd);
      return false;
    }
    if (pfd >= 0) {
      pollfd p{pfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::ceil(left * 1e3)));
    } else {
      sleep_s(std::min(left, 0.001));  // no pidfd (kernel < 5.3): poll
    }
  }
  if (pfd >= 0) close(pfd);
  forget();
  return true;
}

bool Child::exited(int& status) {
  if (pid_ < 0) return true;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno != ECHILD)) return false;
  if (r < 0) status = 0;  // reaped behind our back (SIGCHLD ignored)
  forget();
  return true;
}

void Child::stop() {
  if (pid_ < 0) return;
  const pid_t pgid = pid_;
  kill(-pgid, SIGTERM);
  int status = 0;
  rusage ru{};
  if (!wait(3.0, status, ru)) {
    kill(-pgid, SIGKILL);  // the whole group, so no worker outlives its master
    waitpid(pid_, &status, 0);
    forget();
  }
}

std::string Child::describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "ended";
}

void Child::forget() {
  pid_ = -1;
  if (slot_ >= 0) live_groups[slot_].store(0);
  slot_ = -1;
}

// ---- server CPU time ------------------------------------------------------

struct CpuTimes {
  double user_s = 0, sys_s = 0;
};

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

// process_cpu() is the user and system time of processes (all their threads, live and ended).
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

// cpus_busy_s() is, per CPU, the time it has been busy (all but idle and iowait; steal included) from /proc/stat.
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

// What the counters say at one edge of a window: the server's CPU time, and every CPU's busy time.
struct Snapshot {
  CpuTimes server;
  std::vector<double> busy_s;
};

// snapshot() reads the server's CPU time (pids) and the CPUs' busy time now.
Snapshot snapshot(const std::vector<pid_t>& pids) { return Snapshot{process_cpu(pids), cpus_busy_s()}; }

// ---- user / kernel split by sampling --------------------------------------

/* A CpuSampler samples whatever runs on one CPU (perf cpu-clock, every 1 ms of
 * non-idle time) into a ring buffer, each sample carrying the process it hit
 * and whether that was in user or kernel mode. Counting a window's samples per
 * mode gives the server's user/kernel split over exactly that window, without
 * the history that /proc/PID/stat drags along: the kernel scales a task's
 * whole-life tick ratio onto its run time and never lets utime or stime go
 * backwards, so the difference of two readings can show no user time at all in
 * a window after a user-heavy phase (we saw exactly that). 1 kHz because each
 * sample costs the sampled CPU a timer interrupt and VM exits: measured on our
 * VM, 5 kHz took 8-13% of a busy CPU, 2 kHz 2-4%, 1 kHz about 1%; the runs of a
 * row are pooled for precision. It needs CAP_PERFMON (root): a CPU-wide event.
 * The server must be pinned to the sampled CPU. */
class CpuSampler {
 public:
  static constexpr std::uint64_t kPeriodNs = 1'000'000;

  CpuSampler() = default;
  // The destructor unmaps the ring and closes the event.
  ~CpuSampler() {
    if (ring_ != nullptr) munmap(ring_, (data_pages_ + 1) * page_);
    if (fd_ >= 0) close(fd_);
  }
  CpuSampler(const CpuSampler&) = delete;
  CpuSampler& operator=(const CpuSampler&) = delete;

  // open() prepares a disabled sampler of cpu with room for `seconds` of samples; "" or the error.
  std::string open(int cpu, double seconds);
  // is_open() is true once open() succeeded.
  bool is_open() const { return fd_ >= 0; }
  // enable() starts sampling.
  void enable() {
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
  }
  // disable() stops sampling.
  void disable() {
    if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
  }

  // Samples of some processes: in user mode, in kernel mode; and samples the full ring dropped.
  struct Split {
    std::uint64_t user = 0, kernel = 0, lost = 0;
  };
  // take() counts and consumes the samples recorded since the last take(), keeping those of pids.
  Split take(const std::vector<pid_t>& pids);

 private:
  int fd_ = -1;
  void* ring_ = nullptr;
  std::size_t page_ = 0, data_pages_ = 0;
};

std::string CpuSampler::open(int cpu, double seconds) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = kPeriodNs;
  attr.sample_type = PERF_SAMPLE_TID;
  attr.disabled = 1;
  attr.exclude_idle = 1;
  attr.watermark = 1;  // nobody waits on the ring: wake nobody until it is nearly full
  page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  // A sample is 16 bytes (header, pid, tid); room for all of them, and half again (at least 64 KiB).
  const double bytes = seconds * (1e9 / kPeriodNs) * 16 * 1.5;
  data_pages_ = 16;
  while (static_cast<double>(data_pages_ * page_) < bytes) data_pages_ *= 2;
  attr.wakeup_watermark = static_cast<std::uint32_t>(data_pages_ * page_ * 3 / 4);
  fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd_ < 0) return errno_text("perf_event_open(cpu-clock on CPU " + std::to_string(cpu) + ")");
  ring_ = mmap(nullptr, (data_pages_ + 1) * page_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (ring_ == MAP_FAILED) {
    ring_ = nullptr;
    const std::string err = errno_text("mmap of the perf ring");
    close(fd_);
    fd_ = -1;
    return err;
  }
  return "";
}

CpuSampler::Split CpuSampler::take(const std::vector<pid_t>& pids) {
  Split split;
  if (ring_ == nullptr) return split;
  auto* meta = static_cast<perf_event_mmap_page*>(ring_);
  const char* data = static_cast<const char*>(ring_) + page_;
  const std::uint64_t size = data_pages_ * page_;
  const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  // Records are 8-byte aligned and the ring's size a multiple of 8: no 8-byte field wraps.
  const auto word = [&](std::uint64_t at) {
    std::uint64_t w = 0;
    std::memcpy(&w, data + at % size, sizeof w);
    return w;
  };
  for (std::uint64_t at = meta->data_tail; at < head;) {
    perf_event_header h{};
    std::memcpy(&h, data + at % size, sizeof h);
    if (h.size == 0) break;
    if (h.type == PERF_RECORD_SAMPLE) {
      const auto pid = static_cast<pid_t>(word(at + 8) & 0xffffffffu);  // {u32 pid, u32 tid}
      if (std::find(pids.begin(), pids.end(), pid) != pids.end()) {
        const unsigned mode = h.misc & PERF_RECORD_MISC_CPUMODE_MASK;
        if (mode == PERF_RECORD_MISC_USER) ++split.user;
        if (mode == PERF_RECORD_MISC_KERNEL) ++split.kernel;
      }
    } else if (h.type == PERF_RECORD_LOST) {
      split.lost += word(at + 16);  // {u64 id, u64 lost}
    }
    at += h.size;
  }
  __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
  return split;
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

// process_tree() is root and every process descended from it (nginx: master and worker).
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

// process_threads() is every thread id of the given processes.
std::vector<pid_t> process_threads(const std::vector<pid_t>& pids) {
  std::vector<pid_t> tids;
  for (pid_t pid : pids) {
    for (pid_t tid : numbered_entries("/proc/" + std::to_string(pid) + "/task")) tids.push_back(tid);
  }
  return tids;
}

// ---- system call counting -------------------------------------------------

enum class CountMethod { perf, strace, none };

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

/* A SyscallCounter counts the system calls a set of processes makes: with perf
 * counters enabled over a window, or with strace over the whole time it is
 * attached. */
class SyscallCounter {
 public:
  // The constructor chooses how to count: want is auto, perf, strace or none; note says what was chosen and why.
  SyscallCounter(const std::string& want, int load_cpu, std::string tmpdir, std::string& note);
  // method() is how this counter counts.
  CountMethod method() const { return method_; }
  // attach() prepares to count pids' system calls (counting is off for perf, on for strace); "" or the error.
  std::string attach(const std::vector<pid_t>& pids);
  // enable() starts the perf counters (strace counts all along).
  void enable() { ioctl_all(PERF_EVENT_IOC_ENABLE); }
  // disable() stops the perf counters.
  void disable() { ioctl_all(PERF_EVENT_IOC_DISABLE); }
  // finish() detaches and returns the count, or nothing (error set).
  std::optional<std::uint64_t> finish(std::string& error);

 private:
  // ioctl_all() applies a perf ioctl to every counter.
  void ioctl_all(unsigned long request) {
    for (int fd : fds_) ioctl(fd, request, 0);
  }

  CountMethod method_ = CountMethod::none;
  long tracepoint_ = -1;
  std::string strace_;
  int load_cpu_;
  std::string tmpdir_;
  std::vector<int> fds_;
  Child tracer_;
};

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

// ---- servers --------------------------------------------------------------

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

constexpr const char* kHelloBody = "Hello, World!";

/* probe() checks once that the server on port answers correctly: an echo of 64
 * bytes, or a 200 response with the hello body. Returns "" when it does,
 * "refused" when nothing listens yet, otherwise what was wrong. */
std::string probe(std::uint16_t port, Proto proto) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_text("socket");
  const timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    const std::string why = errno == ECONNREFUSED ? "refused" : errno_text("connect");
    close(fd);
    return why;
  }
  const std::string request =
      proto == Proto::echo ? std::string(64, 'p') : "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string reply;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<std::size_t>(n));
      if (proto == Proto::echo && reply.size() >= request.size()) break;
    }
  }
  close(fd);
  if (proto == Proto::echo)
    return reply == request ? "" : "the echo of 64 bytes came back as " + std::to_string(reply.size()) + " bytes";
  const std::size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) == 0 && reply.find(" 200 ") != std::string::npos && body != std::string::npos &&
      reply.find(kHelloBody, body) != std::string::npos) {
    return "";
  }
  return "GET / answered: " + (reply.empty() ? std::string("nothing") : last_line(reply.substr(0, 200)));
}

// nginx_config() is the template with @DIR@ and @PORT@ filled in.
std::string nginx_config(const std::string& tmpl, const std::string& dir, std::uint16_t port) {
  std::string s = tmpl;
  for (std::size_t at; (at = s.find("@DIR@")) != std::string::npos;) s.replace(at, 5, dir);
  for (std::size_t at; (at = s.find("@PORT@")) != std::string::npos;) s.replace(at, 6, std::to_string(port));
  return s;
}

/* start_server() starts spec on a free port, pinned to cpu, and waits (up to
 * 10 s) until it answers a probe. "" or why it could not; a port someone took
 * in the meantime is retried with another. */
std::string start_server(const ServerSpec& spec, Proto proto, const NetBenchArgs& a, const std::string& nginx_tmpl,
                         const std::string& tmpdir, RunningServer& s) {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s.port = free_port();
    if (s.port == 0) return "no free port";
    s.log = tmpdir + "/" + spec.name + ".log";
    std::vector<std::string> argv;
    if (spec.is_nginx) {
      const std::string dir = tmpdir + "/nginx";
      std::error_code ec;
      fs::create_directories(dir, ec);
      std::ofstream(dir + "/nginx.conf") << nginx_config(nginx_tmpl, dir, s.port);
      argv = {spec.program, "-p", dir + "/", "-c", dir + "/nginx.conf", "-e", dir + "/error.log"};
    } else {
      argv = {spec.program, "--addr", "127.0.0.1:" + std::to_string(s.port), "--procs", std::to_string(a.procs)};
    }
    why = s.child.start(argv, a.server_cpu, s.log);
    if (!why.empty()) return why;
    for (const double deadline = now_s() + 10;;) {
      int status = 0;
      if (s.child.exited(status)) {
        const std::string out = last_line(read_text(s.log));
        why = Child::describe(status) + ": " + (out.empty() ? std::string("no output") : out);
        break;
      }
      why = probe(s.port, proto);
      if (why.empty()) {
        s.pids = process_tree(s.child.pid());
        return "";
      }
      if (why != "refused" || now_s() > deadline) {
        if (why == "refused") why = "not listening after 10 s";
        s.child.stop();
        return why;
      }
      sleep_s(0.02);
    }
  }
  return why;
}

// ---- wrk ------------------------------------------------------------------

struct WrkResult {
  std::string error;  // "" when the run counts
  double rps = 0;
  std::uint64_t requests = 0;  // completed in wrk's run
  double p50_us = 0, p99_us = 0;
  double cpu_s = 0;           // wrk's CPU time (user + system)
  double wall_s = 0;          // from starting wrk to reaping it
  std::string socket_errors;  // wrk's "Socket errors: ..." line, if any
};

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

/* run_wrk() runs `wrk -t1 -cN -dS --latency` against port, pinned to cpu.
 * started() runs just before wrk starts, ended() just after it is reaped, so
 * the server's counters can be read over wrk's whole life. */
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

// ---- one row's measurements -----------------------------------------------

// One measured run of a row.
struct Sample {
  double rps, p50_us, p99_us;
  double cpu_us;                                      // server CPU time per request (user + kernel)
  double proc_user_us, proc_sys_us;                   // its split by /proc/PID/stat (the fallback)
  double user_samples, kernel_samples;                // the sampler's samples of the server
  double server_cpu_pct, loadgen_cpu_pct;             // CPU time / window
  double others_server_cpu_pct, others_load_cpu_pct;  // other processes' (and the host's) share of the two CPUs
};

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

// One row: a server at one connection count, its runs and its syscall count.
struct Row {
  std::string prefix;  // net_echo_c64_gort
  std::vector<Sample> samples;
  std::optional<double> syscalls_per_req;
};

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

  // row() is the row for a bench, connection count and server, created on first use.
  Row& row(const std::string& bench, int conns, const std::string& server) {
    const std::string prefix = "net_" + bench + "_c" + std::to_string(conns) + "_" + server;
    Row& r = rows[prefix];
    r.prefix = prefix;
    return r;
  }

  // error() reports a failed measurement and remembers the failure.
  void error(const std::string& what, const std::string& why) {
    std::printf("# error: %s: %s\n", what.c_str(), why.c_str());
    std::fflush(stdout);
    failed = true;
  }

  // progress() prints one run's sample as a comment line.
  static void progress(const std::string& prefix, int run, const Sample& s) {
    const CpuSplit c = split_cpu(s.cpu_us, s.user_samples, s.kernel_samples, s.proc_user_us, s.proc_sys_us);
    std::printf(
        "# %s run %d: %.0f rps, p50 %.1f us, p99 %.1f us, user %.2f + sys %.2f us/req, cpu: server %.0f%%, "
        "loadgen %.0f%%, others on their CPUs %.0f%% / %.0f%%\n",
        prefix.c_str(), run + 1, s.rps, s.p50_us, s.p99_us, c.user_us, c.sys_us, s.server_cpu_pct, s.loadgen_cpu_pct,
        s.others_server_cpu_pct, s.others_load_cpu_pct);
    std::fflush(stdout);
  }

  // window_start() starts a measured window on s: the sampler's leftovers dropped, the counters read, sampling on.
  Snapshot window_start(const RunningServer& s) {
    sampler->take({});
    Snapshot snap = snapshot(s.pids);
    sampler->enable();
    return snap;
  }

  // window_end() ends a measured window on s: sampling off, the counters read.
  Snapshot window_end(const RunningServer& s) {
    sampler->disable();
    return snapshot(s.pids);
  }

  // take_samples() collects the window's samples of s, saying so if the sampler's ring overflowed.
  CpuSampler::Split take_samples(const RunningServer& s, const std::string& prefix) {
    const CpuSampler::Split split = sampler->take(s.pids);
    if (split.lost > 0) {
      std::printf("# %s: the sampler's ring overflowed (%llu samples lost): the split covers the window's start\n",
                  prefix.c_str(), static_cast<unsigned long long>(split.lost));
    }
    return split;
  }

  // echo_run() measures one echo window on a running server.
  std::optional<Sample> echo_run(RunningServer& s, int conns, const std::string& prefix) {
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
    return sample_of(a, static_cast<double>(r.requests) / r.window_s, r.p50_us, r.p99_us, r.requests, r.window_s, s0,
                     s1, split, r.cpu_s);
  }

  // http_run() measures one wrk run on a running server.
  std::optional<Sample> http_run(RunningServer& s, int conns, const std::string& prefix) {
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

  // count_syscalls() runs the extra load run that counts the server's system calls per request.
  std::optional<double> count_syscalls(RunningServer& s, Proto proto, int conns, const std::string& prefix) {
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

  /* measure() starts a fresh server for one run at one connection count, warms
   * it up (HTTP: a wrk run), measures, counts system calls after the last run,
   * and stops it. A fresh process per row keeps rows independent: no goroutines,
   * buffers or CPU-time history left by the previous connection count. False
   * when the server could not be started. */
  bool measure(const std::string& bench, Proto proto, const ServerSpec& spec, int conns, int run) {
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
};

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

// print_results() prints every row's medians, then the ratios and targets per connection count.
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

// pin_self() pins the calling thread (and the threads it creates) to cpu; "" or the error.
std::string pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) == 0) return "";
  return errno_text("sched_setaffinity(CPU " + std::to_string(cpu) + ")");
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

// server_spec() describes a server program, noting why it cannot run if it is missing.
ServerSpec server_spec(const std::string& name, const std::string& path, const std::string& hint) {
  ServerSpec s{name, path, name == "nginx", ""};
  if (!executable(path))
    s.missing = (path.empty() ? std::string("not found") : path + " not found") + " (" + hint + ")";
  return s;
}

// Interrupt handlers installed for the bench, restored when it ends.
class InterruptGuard {
 public:
  // The constructor routes SIGINT, SIGTERM and SIGHUP to on_interrupt.
  InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  // The destructor restores the previous handlers.
  ~InterruptGuard() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

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
  static_assert(sizeof tmpl <= sizeof interrupt_tmpdir);
  std::memcpy(interrupt_tmpdir, tmpl, sizeof tmpl);
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
  interrupt_tmpdir[0] = '\0';
  std::error_code ec;
  fs::remove_all(tmpl, ec);
  return b.failed ? 1 : 0;
}

}  // namespace gort::bench
