// run_in_child(): runs a case that must crash or exit in a forked child and
// reports its exit status and what it wrote to stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace gort::test {

struct ChildResult {
  int status = -1;     // exit status, or -1 if killed by a signal
  int signal = 0;      // the signal that killed it, if any
  std::string err;     // everything written to stderr
};

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
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  return r;
}

}  // namespace gort::test
