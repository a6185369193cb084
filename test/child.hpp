// run_in_child(): runs a case that must crash or exit in a forked child and
// reports its exit status and what it wrote to stderr. run_case_in_child(): the
// same in a fresh copy of the test binary, for cases that run goroutines.
// refuse_syscall(), refuse_madvise_from(): seccomp filters that make the kernel
// look locked down (a container's profile) or older than it is.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace gort::test {

struct ChildResult {
  int status = -1;     // exit status, or -1 if killed by a signal
  int signal = 0;      // the signal that killed it, if any
  std::string err;     // everything written to stderr
};

// collect_child() reads the child's stderr from fd (closing it) and waits for it.
inline ChildResult collect_child(pid_t pid, int fd) {
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  close(fd);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  return r;
}

// run_in_child() forks, runs fn with stderr captured, and _exit(0)s if fn returns.
template <class F>
ChildResult run_in_child(F&& fn) {
  int p[2];
  if (pipe(p) != 0) return {};
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 2);
    fn();
    _exit(0);
  }
  close(p[1]);
  return collect_child(pid, p[0]);
}

// install_seccomp() adds the seccomp filter prog to this process from now on
// (and to what it spawns); false if the kernel refuses it.
template <std::size_t N>
bool install_seccomp(sock_filter (&prog)[N]) {
  sock_fprog fprog{static_cast<unsigned short>(N), prog};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0;
}

// refuse_syscall() installs a seccomp filter that fails system call nr with
// EPERM in this process from now on, as container runtimes' default profiles
// do; false if the kernel refuses the filter. For a child's case only.
inline bool refuse_syscall(int nr) {
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return install_seccomp(prog);
}

// refuse_madvise_from() installs a seccomp filter that fails madvise(2) with
// EINVAL for every advice from `first` up, as a kernel that predates them
// answers; the older advice (DONTNEED, NOHUGEPAGE...) still works. False if
// the kernel refuses the filter.
inline bool refuse_madvise_from(int first) {
  // The advice is madvise's third argument; its low 32 bits (x86-64 is little-endian).
  constexpr unsigned kAdvice = offsetof(seccomp_data, args) + 2 * sizeof(std::uint64_t);
  sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kAdvice),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, static_cast<unsigned>(first), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return install_seccomp(prog);
}

// run_case_in_child() runs fn in a fresh copy of this test binary, spawned
// with only the current test case selected and GORT_TEST_CHILD naming it; in
// the copy the same call runs fn and _exit(0)s if fn returns. A forked child
// cannot run goroutines once the parent's scheduler has started (its Ms are
// threads that did not survive the fork), and posix_spawn runs no fork
// handlers (jemalloc's take every arena lock, more than TSan can track). The
// case's name must not contain doctest filter characters (, * ?). settings, if
// given, are start-up settings for the copy's runtime (GORT_TEST_SETTINGS of
// test/main.cpp, GORTDEBUG syntax).
template <class F>
ChildResult run_case_in_child(F&& fn, const char* settings = nullptr) {
  const char* name = static_cast<const doctest::TestCaseData*>(doctest::getContextOptions()->currentTest)->m_name;
  if (const char* key = std::getenv("GORT_TEST_CHILD"); key != nullptr && std::strcmp(key, name) == 0) {
    fn();
    std::fflush(nullptr);
    _exit(0);
  }
  std::string filter = std::string("--test-case=") + name;
  std::string key = std::string("GORT_TEST_CHILD=") + name;
  char* argv[] = {const_cast<char*>("child"), filter.data(), nullptr};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; e++) envp.push_back(*e);
  envp.push_back(key.data());
  std::string with = std::string("GORT_TEST_SETTINGS=") + (settings != nullptr ? settings : "");
  if (settings != nullptr) envp.push_back(with.data());
  envp.push_back(nullptr);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);  // doctest's banner
  std::fflush(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return {};
  }
  return collect_child(pid, p[0]);
}

// ScopedEnv sets an environment variable while it lives, for the children
// spawned meanwhile (the runtime reads GORTMAXPROCS once, at start), then puts
// the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace gort::test
