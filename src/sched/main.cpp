// gort::main and the goroutine API's entry points.
#include <sched.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "base/log.hpp"
#include "base/print.hpp"
#include "gort/go.hpp"
#include "init.hpp"
#include "io/poll.hpp"
#include "sched/backstop.hpp"
#include "sched/proc.hpp"
#include "sched/stackmove.hpp"
#include "sched/sysmon.hpp"
#include "sched/time.hpp"

namespace gort::rt {

void schedinit() {
  static std::once_flag once;
  std::call_once(once, [] {
    const Config& c = runtime_config();
    int procs = c.sched_procs;
    if (procs == 0) {
      // One per CPU we may run on, as Go's GOMAXPROCS: under `taskset -c 0`
      // that is 1, not the machine's count (a second P would only fight the
      // first for the CPU).
      cpu_set_t set;
      procs = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
      if (procs <= 0) procs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    sched.spin_ns = static_cast<std::int64_t>(c.sched_spin_us) * 1000;
    sched.hog_ns = static_cast<std::int64_t>(c.sched_hog_ms) * 1'000'000;
    backstop_fatal = c.sched_backstop_fatal;
    if (!lock_init()) {
      log()->warn("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is unavailable (kernel < 4.14 or a seccomp "
                  "filter): a goroutine waiting on a contended runtime lock may wait up to 1 ms too long, and "
                  "an idle P does not take the goroutine queued to run next on a busy P");
    }
    adjust_owner = adjust_g;  // copystack's view of a G (stackmove.hpp)
    schedinit_procs(procs);
    netpollinit();
    sysmon_start();
  });
}

}  // namespace gort::rt

namespace gort::detail {

using namespace gort::rt;

int run_main(void (*invoke)(void* fn), void* fn, const Options& opts) {
  static std::mutex mu;  // one gort::main at a time
  std::lock_guard lk(mu);
  if (!runtime_initialized()) {
    runtime_init(opts);
  } else if (!opts.conf_file.empty() || !opts.settings.empty()) {
    log()->warn("gort::main: the runtime is already running; the options of this call are ignored");
  }
  schedinit();
  Note done;
  go([invoke, fn, &done] {
    sched.main_goid.store(gort::goid(), std::memory_order_relaxed);
    invoke(fn);
    done.wakeup();
  });
  done.sleep();
  return 0;
}

void* newproc_begin(const GoOptions* opts, std::size_t size, std::size_t align, void** g) {
  G* gp = newproc_g(opts);
  *g = gp;
  return size <= kGoFnInline && align <= alignof(std::max_align_t) ? gp->fnbuf : nullptr;
}

void newproc_end(void* g, const GoFn* fn, void* p) {
  auto* gp = static_cast<G*>(g);
  gp->fn = fn;
  gp->fnp = p;
  // A goroutine that spawns faster than goroutines finish fills its P's run
  // queue, then the global one without bound (Go does not stop it either): a
  // million queued goroutines hold a million stacks, every one cold in cache,
  // and spawning 1,000,000 at once cost 4-7x a spawn in batches. Yielding
  // when the local queue overflows lets this P run what it spawned while their
  // stacks are warm; the spawner resumes after the ~128 left in the ring.
  if (newproc_queue(gp)) {
    gosched();
    return;
  }
  checkpreempt();
}

void newproc_abort(void* g) { newproc_recycle(static_cast<G*>(g)); }

namespace {

void ready_sleeper(void* arg) { goready(static_cast<G*>(arg)); }

// Runs once the sleeper is off its stack: only then may the timer fire.
bool start_sleep_timer(G*, void* t) {
  addtimer(static_cast<RuntimeTimer*>(t));
  return true;
}

}  // namespace

void sleep_ns(std::int64_t ns) {
  G* gp = getgp_parkable();
  if (gp == nullptr) {
    if (ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
    return;
  }
  if (ns <= 0) {
    gosched();
    return;
  }
  if (gp->sleeptimer == nullptr) gp->sleeptimer = new RuntimeTimer;
  RuntimeTimer* t = gp->sleeptimer;
  t->when = nanotime() + ns;
  t->period = 0;
  t->f = ready_sleeper;
  t->arg = gp;
  gopark(start_sleep_timer, t, WaitReason::sleep);
}

void entersyscall() { rt::entersyscall(); }
void exitsyscall() { rt::exitsyscall(); }

}  // namespace gort::detail

namespace gort {

void yield() { rt::gosched(); }

std::uint64_t goid() {
  rt::G* gp = rt::getgp();
  return gp != nullptr ? gp->goid : 0;
}

}  // namespace gort
