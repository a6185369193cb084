/* Child processes of gort-bench: a program started in its own process group,
 * pinned to a CPU, its output in a file, and stopped (SIGTERM, then SIGKILL)
 * when done, on every error path, and when gort-bench is interrupted, so that
 * no server or load generator outlives us. */
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace gort::bench {

/* A Child is a program we started in its own process group, pinned to a CPU,
 * its output in a file. It is stopped (SIGTERM, then SIGKILL) when it goes out
 * of scope. At most kMaxChildren are alive at once (their groups are what an
 * interrupt kills). */
class Child {
 public:
  static constexpr int kMaxChildren = 8;

  Child() = default;
  // The destructor stops the child if it still runs. No preconditions.
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // start() runs argv[0] pinned to cpu with stdout and stderr to out_path, stdin from /dev/null; "" or the error.
  // Pre: not started yet (or stopped); argv[0] is a path, not a name to look up; cpu is one we may run on.
  std::string start(const std::vector<std::string>& argv, int cpu, const std::string& out_path);
  // pid() is the child's pid (and process group id), -1 before start() and once reaped. No preconditions.
  pid_t pid() const { return pid_; }
  // wait() reaps the child if it ends within timeout_s, filling status and its resource usage; false on timeout
  // (the child still runs). Pre: timeout_s >= 0.
  bool wait(double timeout_s, int& status, rusage& ru);
  // exited() is true (status set) when the child has ended, reaping it; it does not block. No preconditions.
  bool exited(int& status);
  // stop() ends the child and its group: SIGTERM, then SIGKILL after 3 s; then it is reaped. A no-op when not
  // running. No preconditions.
  void stop();
  // describe() says how a wait() status ended a child ("exited with status 1"). Pre: status came from wait().
  static std::string describe(int status);

 private:
  // forget() marks the child reaped and frees its slot in the table of live groups.
  void forget();

  pid_t pid_ = -1;
  int slot_ = -1;
};

// The longest path, with its NUL, that remove_on_interrupt() keeps.
inline constexpr std::size_t kInterruptDirMax = 64;

// remove_on_interrupt() makes an interrupt also remove the directory dir ("" removes nothing). Pre: dir is
// absolute and shorter than kInterruptDirMax; call it from one thread.
void remove_on_interrupt(const char* dir);

/* An InterruptGuard routes SIGINT, SIGTERM and SIGHUP, while it lives, to a
 * handler that kills every live Child's process group, removes the directory
 * given to remove_on_interrupt(), then dies of the signal. */
class InterruptGuard {
 public:
  // The constructor installs the handler. Pre: one guard at a time.
  InterruptGuard();
  // The destructor restores the previous handlers. No preconditions.
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

}  // namespace gort::bench
