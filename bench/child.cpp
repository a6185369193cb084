/* Starting, waiting for and stopping gort-bench's child processes, and
 * killing them when gort-bench is interrupted (see child.hpp). */
#include "child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "sys.hpp"

namespace gort::bench {
namespace {

/* Process groups of the children alive now (0: free slot), killed by the
 * signal handler if gort-bench is interrupted, so no server outlives us; and
 * the temporary directory it then removes. */
std::atomic<pid_t> live_groups[Child::kMaxChildren];
char interrupt_tmpdir[kInterruptDirMax];

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

}  // namespace

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
    int err = pin_to_cpu(cpu);
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

void remove_on_interrupt(const char* dir) {
  // The first byte last: the handler, reading it first, never sees half a path.
  interrupt_tmpdir[0] = '\0';
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const std::size_t n = std::min(std::strlen(dir), kInterruptDirMax - 1);
  if (n == 0) return;
  std::memcpy(interrupt_tmpdir + 1, dir + 1, n - 1);
  interrupt_tmpdir[n] = '\0';
  std::atomic_signal_fence(std::memory_order_seq_cst);
  interrupt_tmpdir[0] = dir[0];
}

InterruptGuard::InterruptGuard() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &old_[i]);
}

InterruptGuard::~InterruptGuard() {
  for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &old_[i], nullptr);
}

}  // namespace gort::bench
