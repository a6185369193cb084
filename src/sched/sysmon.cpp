// sysmon: the monitor thread of Go's proc.go, without a P. It retakes Ps from
// goroutines blocked in gort::syscall and flags goroutines that hog their P.
#include "sched/sysmon.hpp"

#include <pthread.h>
#include <unistd.h>

#include <thread>

#include "base/log.hpp"
#include "sched/backstop.hpp"
#include "sched/proc.hpp"
#include "sched/time.hpp"

namespace gort::rt {

namespace {

// Go's numbers: sleep 20 us between looks; after 50 idle looks double up to 10
// ms, so an idle process costs nothing; a P in a syscall longer than one look
// is handed off unless nothing else would run on it and someone is idle anyway,
// for up to 10 ms.
constexpr std::int64_t kMinDelayUs = 20;
constexpr std::int64_t kMaxDelayUs = 10'000;
constexpr int kIdleLooks = 50;
constexpr std::int64_t kSyscallGraceNs = 10'000'000;

// preemptone() asks the goroutine running on p to yield at its next runtime call
// and reports it once: a goroutine running user code for longer than
// sched.hog_ms starves the others queued on its P.
// Returns true when it reported a new hog.
bool preemptone(P* p, std::int64_t ran_ns, bool report) {
  G* gp = p->runningg.load(std::memory_order_acquire);
  if (gp == nullptr) return false;
  gp->preempt.store(true, std::memory_order_relaxed);
  const std::uint64_t goid = p->runninggoid.load(std::memory_order_relaxed);
  if (!report || goid == p->sm_reported_goid) return false;
  p->sm_reported_goid = goid;
  log()->warn(
      "goroutine {} has run for {} ms without a runtime call (a safe point: channel op, yield, "
      "sleep, spawn...); the goroutines queued on its P wait until it makes one: call "
      "gort::yield() in long loops",
      goid, ran_ns / 1'000'000);
  return true;
}

// ranoncpu() is false while p's thread has not been on a CPU for a quarter of
// the time since the goroutine first looked like a hog (a quarter: a busy loop
// sharing its CPU with other work still counts), since a thread that the kernel
// or the hypervisor held off (page faults waiting on a busy address space,
// vCPU steal) is not a loop without runtime calls, and gort-bench saw such
// reports for goroutines whose whole body was wg.done(). It measures over
// half of hog_ms from the first look, so a real hog is reported ~1.5 hog_ms in.
bool ranoncpu(P* p, std::int64_t now) {
  const clockid_t clock = p->mcpuclock.load(std::memory_order_relaxed);
  timespec ts{};
  if (clock == 0 || clock_gettime(clock, &ts) != 0) return true;  // cannot tell
  const std::int64_t cpu = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  if (p->sm_cpuwhen == 0) {
    p->sm_cpu0 = cpu;
    p->sm_cpuwhen = now;
    return false;
  }
  const std::int64_t wall = now - p->sm_cpuwhen;
  return wall >= sched.hog_ns / 2 && cpu - p->sm_cpu0 >= wall / 4;
}

// retake() returns true if it did anything.
bool retake(std::int64_t now) {
  bool acted = false;
  for (P* p : sched.allp) {
    // A mark's life is one look (ready.hpp): after it, a lone runnext wakes an
    // idle P again, and one that has waited since the mark gets one now. Not
    // counted as acting: a ping-pong pair sets the mark again at once, and
    // sysmon must not look every 20 us for it.
    // Nor as a rescue (backstop.hpp): that wake was skipped on purpose, not lost.
    if (p->nextnowake.load(std::memory_order_relaxed)) {
      p->nextnowake.store(false, std::memory_order_relaxed);
      if (p->runnext.load(std::memory_order_acquire) != nullptr) wakep();
    }
    const Pstatus s = p->status.load(std::memory_order_acquire);
    if (s == Pstatus::syscall) {
      const std::uint32_t t = p->syscalltick.load(std::memory_order_relaxed);
      if (p->sm_syscalltick != t) {
        p->sm_syscalltick = t;
        p->sm_syscallwhen = now;
        continue;
      }
      if (runqempty(p) &&
          sched.nmspinning.load(std::memory_order_relaxed) + sched.npidle.load(std::memory_order_relaxed) > 0 &&
          p->sm_syscallwhen + kSyscallGraceNs > now) {
        continue;
      }
      Pstatus want = Pstatus::syscall;
      if (p->status.compare_exchange_strong(want, Pstatus::idle, std::memory_order_acq_rel)) {
        handoffp(p);
        acted = true;
      }
    } else if (s == Pstatus::running) {
      const std::uint32_t t = p->schedtick.load(std::memory_order_relaxed);
      if (p->sm_schedtick != t || p->sm_schedwhen == 0) {
        p->sm_schedtick = t;
        p->sm_schedwhen = now;
        p->sm_safepoints = p->safepoints.load(std::memory_order_relaxed);
        p->sm_cpuwhen = 0;
        continue;
      }
      if (now - p->sm_schedwhen >= sched.hog_ns) {
        // Kept its P too long: ask it to yield, for fairness (Go does too). It is
        // reported only if it reached no safe point at all in that time, and
        // its thread was really running.
        const bool hog = p->safepoints.load(std::memory_order_relaxed) == p->sm_safepoints && ranoncpu(p, now);
        if (preemptone(p, now - p->sm_schedwhen, hog)) acted = true;
      }
    }
  }
  return acted;
}

// A missed wake-up is told from a hand-off still under way by lasting: work
// has waited with every P idle and no P scheduling anything (their ticks
// unchanged) for this long. The hand-offs' own windows (a readier between
// globrunqput and wakep, an M between releasing its P and its last look) are
// a few instructions, so only a thread held off that long in one of them can
// make a false rescue.
constexpr std::int64_t kRescueGraceNs = 1'000'000;

// What kickidle saw: work waiting with every P idle since `since` (0: none),
// and the sum of the Ps' schedticks then. sysmon's own.
struct Stuck {
  std::int64_t since = 0;
  std::uint64_t ticks = 0;
};
Stuck stuck;
std::atomic<std::uint64_t> nkickidle{0};

std::uint64_t schedticks() {
  std::uint64_t n = 0;
  for (const P* p : sched.allp) n += p->schedtick.load(std::memory_order_relaxed);
  return n;
}

// kickidle() starts an M when every P is idle but work is waiting: a timer that
// is overdue or a goroutine on the global queue. The Ms' own hand-offs should
// never leave that state; like Go's sysmon ("timers that should have already
// run"), this is the backstop that bounds the damage of a missed wakeup, to
// one sysmon period plus kRescueGraceNs. An overdue timer that an idle M sleeps
// until (sleep_until) is late, not missed: that M is coming. Each rescue is
// counted (kickidle_rescues), and fatal under sched.backstop_fatal. Returns
// true if it started one or is watching a state that may need one.
bool kickidle(std::int64_t now) {
  const std::int64_t next = timers_earliest();
  const std::int64_t su = sched.sleep_until.load(std::memory_order_relaxed);
  const bool overdue = next != 0 && next < now && (su == 0 || su > next);
  const int queued = sched.runqsize.load(std::memory_order_acquire);
  if (sched.npidle.load(std::memory_order_acquire) != sched.procs || (!overdue && queued == 0) ||
      sched.nmspinning.load(std::memory_order_relaxed) != 0) {
    stuck = {};
    return false;
  }
  const std::uint64_t ticks = schedticks();
  if (stuck.since == 0 || stuck.ticks != ticks) {
    stuck = {now, ticks};
    return true;  // look again soon
  }
  if (now - stuck.since < kRescueGraceNs) return true;
  stuck = {};
  nkickidle.fetch_add(1, std::memory_order_relaxed);
  if (backstop_fatal) {
    backstop_die(queued != 0 ? "kickidle: goroutines waited on the global queue with every P idle"
                             : "kickidle: a timer was overdue with every P idle and no M sleeping until it");
  }
  startm_idle();
  return true;
}

void sysmon() {
  std::int64_t delay = kMinDelayUs;
  int idle = 0;
  for (;;) {
    usleep(static_cast<useconds_t>(delay));
    const std::int64_t now = nanotime();
    sched.coarsenow.store(now, std::memory_order_relaxed);
    // Both run every look: a retake does not excuse skipping the idle check.
    const bool retook = retake(now);
    const bool kicked = kickidle(now);
    if (retook || kicked) {
      idle = 0;
      delay = kMinDelayUs;
    } else if (++idle > kIdleLooks) {
      delay = std::min(delay * 2, kMaxDelayUs);
    }
  }
}

}  // namespace

bool backstop_fatal = false;

std::uint64_t kickidle_rescues() { return nkickidle.load(std::memory_order_relaxed); }

void sysmon_start() {
  sched.coarsenow.store(nanotime(), std::memory_order_relaxed);
  std::thread t(sysmon);
  // Named by its creator, so the name is there once the runtime has started
  // (a tool listing threads right after gort::main began saw it unnamed).
  pthread_setname_np(t.native_handle(), "gort-sysmon");
  t.detach();
}

}  // namespace gort::rt
