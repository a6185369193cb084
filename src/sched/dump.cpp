// Goroutine dumps (SIGQUIT, gort::dump_goroutines) and gort::stats().
//
// Nothing is stopped for a dump or a snapshot: goroutines go on running, parking
// and exiting meanwhile, so what is printed of each is what it was at the moment
// it was looked at (traceback_parked says why reading a parked stack is safe).
// A goroutine running on another thread cannot be walked at all: its frames
// change under the reader. Go prints those only when the world is stopped.
//
// SIGQUIT, as in Java rather than Go (which dies), prints the dump and the
// process goes on. The handler only writes to an eventfd; a dedicated thread
// reads it and prints, with locks and at leisure, none of which a signal handler
// may do.
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>

#include "gort/gort.hpp"
#include "io/poll.hpp"
#include "sched/backstop.hpp"
#include "sched/runq.hpp"
#include "sched/runtime.hpp"
#include "sched/time.hpp"
#include "sched/traceback.hpp"

namespace gort::rt {

namespace {

std::mutex dumplock;  // one dump at a time, so two do not interleave
int sigquitfd = -1;   // the eventfd the SIGQUIT handler writes
std::atomic<std::uint64_t> ndumps{0};

// forEachG() calls fn for every G ever made. allgs only grows at its head and a
// G is never freed, so the list from a head read under allglock stays as it is:
// the lock is held to read the head only, not while fn prints (to a stderr that
// may block), so goroutines can be made meanwhile.
template <class F>
void forEachG(F fn) {
  sched.allglock.lock();
  G* head = sched.allgs;
  sched.allglock.unlock();
  for (G* gp = head; gp != nullptr; gp = gp->alllink) fn(gp);
}

// dumpgoroutines() prints every goroutine to fd: the calling one first, with
// its stack walked in place, then the others.
__attribute__((noinline)) void dumpgoroutines(int fd) {
  std::lock_guard lk(dumplock);
  Printer out(fd);
  const G* me = getgp();
  if (me != nullptr) {
    print_goroutine_header(out, me);
    print_goroutine_stack(out, me->stack.lo, me->stack.hi,
                          reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)));
    traceback_here(out, me);
    out.str("\n");
  }
  tracebackothers(out, me);
}

void sigquit_handler(int) {
  const int saved = errno;
  const std::uint64_t one = 1;
  (void)!write(sigquitfd, &one, sizeof one);
  errno = saved;
}

void sigquit_loop() {
  pthread_setname_np(pthread_self(), "gort-sigquit");
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are for the other threads
  for (;;) {
    std::uint64_t n = 0;
    if (read(sigquitfd, &n, sizeof n) != sizeof n) {
      if (errno == EINTR) continue;
      fatal("SIGQUIT: cannot read the eventfd");
    }
    Printer(2).str("SIGQUIT: goroutine dump\n\n");
    dumpgoroutines(2);
    ndumps.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace

void tracebackothers(Printer& out, const G* me) {
  forEachG([&](const G* gp) {
    const Gstatus s = gp->status.load(std::memory_order_acquire);
    if (gp == me || s == Gstatus::idle || s == Gstatus::dead) return;
    print_goroutine_header(out, gp);
    if (s == Gstatus::running || s == Gstatus::syscall) {
      print_goroutine_stack(out, gp->stack.lo, gp->stack.hi, 0);
      out.str("(running on another thread)\n");
    } else {
      traceback_parked(out, gp);
    }
    out.str("\n");
  });
}

void sigquit_install() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigquitfd = eventfd(0, EFD_CLOEXEC);
    if (sigquitfd < 0) fatal("SIGQUIT: cannot make an eventfd");
    std::thread(sigquit_loop).detach();
    struct sigaction sa {};
    sa.sa_handler = sigquit_handler;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGQUIT, &sa, nullptr) != 0) fatal("SIGQUIT: sigaction failed");
  });
}

std::uint64_t sigquit_dumps() { return ndumps.load(std::memory_order_acquire); }

namespace {

const char* pstatus_name(Pstatus s) {
  switch (s) {
    case Pstatus::idle: return "idle";
    case Pstatus::running: return "running";
    case Pstatus::syscall: return "syscall";
  }
  return "?";
}

}  // namespace

void print_schedstate(Printer& out) {
  // Like stats(), nothing is stopped: each number is what it was when read.
  const std::int64_t now = nanotime();
  out.str("SCHED ").dec(static_cast<std::uint64_t>(now / 1'000'000)).str("ms: gomaxprocs=").sdec(sched.procs)
      .str(" idleprocs=").sdec(sched.npidle.load(std::memory_order_relaxed));
  sched.lock.lock();
  const int mcount = sched.mcount, nmidle = sched.nmidle;
  sched.lock.unlock();
  out.str(" threads=").sdec(mcount).str(" idlethreads=").sdec(nmidle)
      .str(" spinningthreads=").sdec(sched.nmspinning.load(std::memory_order_relaxed))
      .str(" runqueue=").sdec(sched.runqsize.load(std::memory_order_relaxed));
  // Timer deadlines are printed relative to now: negative is overdue.
  const std::int64_t earliest = timers_earliest();
  out.str(" timers_earliest=");
  if (earliest == 0) out.str("none");
  else out.sdec((earliest - now) / 1000).str("us");
  const std::int64_t su = sched.sleep_until.load(std::memory_order_relaxed);
  out.str(" sleep_until=");
  if (su == 0) out.str("none\n");
  else out.sdec((su - now) / 1000).str("us\n");
  for (P* p : sched.allp) {
    p->timerslock.lock();
    const std::size_t ntimers = p->timers.size();
    p->timerslock.unlock();
    sched.lock.lock();
    const bool netwait = p->innetwait;
    sched.lock.unlock();
    const std::int64_t t0 = p->timer0when.load(std::memory_order_relaxed);
    out.str("  P").sdec(p->id).str(": status=").str(pstatus_name(p->status.load(std::memory_order_relaxed)))
        .str(" runqsize=").sdec(kRunqSize - runqroom(p))
        .str(" runnext=").str(p->runnext.load(std::memory_order_relaxed) != nullptr ? "set" : "empty")
        .str(" nextnowake=").dec(p->nextnowake.load(std::memory_order_relaxed))
        .str(" schedtick=").dec(p->schedtick.load(std::memory_order_relaxed))
        .str(" timers=").dec(ntimers).str(" timer0=");
    if (t0 == 0) out.str("none");
    else out.sdec((t0 - now) / 1000).str("us");
    out.str(netwait ? " netwait\n" : "\n");
  }
}

void backstop_die(const char* why) {
  {
    Printer out(2);
    out.str("backstop: ").str(why).str(" (sched.backstop_fatal)\n");
    print_schedstate(out);
    out.str("\n");
  }
  dumpgoroutines(2);
  fatal("a scheduler backstop fired: a wake-up was lost");
}

}  // namespace gort::rt

namespace gort {

Stats stats() {
  using namespace rt;
  Stats s;
  forEachG([&](const G* gp) {
    switch (gp->status.load(std::memory_order_relaxed)) {
      case Gstatus::runnable: s.runnable++; break;
      case Gstatus::running: s.running++; break;
      case Gstatus::waiting: s.waiting++; break;
      case Gstatus::syscall: s.syscall++; break;
      case Gstatus::idle:
      case Gstatus::dead: break;
    }
  });
  s.goroutines = static_cast<std::uint64_t>(std::max<std::int64_t>(nlive(), 0));
  sched.lock.lock();
  s.ms = sched.mcount;
  s.idle_ms = sched.nmidle;
  for (const P* p = sched.pnetwait; p != nullptr; p = p->link) s.idle_ms++;  // asleep in their poller
  sched.lock.unlock();
  s.io_backend = io_backend_name();
  s.ps = sched.procs;
  s.idle_ps = sched.npidle.load(std::memory_order_relaxed);
  s.spinning_ms = sched.nmspinning.load(std::memory_order_relaxed);
  s.global_runq = sched.runqsize.load(std::memory_order_relaxed);
  s.spawns = sched.nspawn.load(std::memory_order_relaxed);
  s.steals = sched.nsteal.load(std::memory_order_relaxed);
  s.kickidle_rescues = kickidle_rescues();
  s.lockpoll_rescues = lockpoll_rescues();
  for (const P* p : sched.allp) {
    s.spawns += p->nspawn.load(std::memory_order_relaxed);
    s.parks += p->npark.load(std::memory_order_relaxed);
  }
  s.stacks = gort::stack_stats();
  return s;
}

void dump_goroutines(FILE* f) {
  std::fflush(f);
  if (const int fd = fileno(f); fd >= 0) {
    rt::dumpgoroutines(fd);
    return;
  }
  // A FILE without a descriptor (open_memstream, fmemopen): through a temporary file.
  FILE* t = std::tmpfile();
  if (t == nullptr) {
    std::fputs("gort::dump_goroutines: cannot make a temporary file\n", f);
    return;
  }
  rt::dumpgoroutines(fileno(t));
  std::rewind(t);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, t)) > 0;) std::fwrite(buf, 1, n, f);
  std::fclose(t);
}

}  // namespace gort
