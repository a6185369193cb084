// The scheduler: Go's proc.go for C++ goroutines.
//
// The locking and ownership rules (1-6) of runtime.hpp hold here. The shape of a switch:
//
//   A goroutine that yields, parks or exits calls switch_away() (yields and
//   parks: switch_away_fast() first), which leaves its request in M::after and
//   switches, in gogo(), straight to the next goroutine of its P's run queue
//   when there is one (one switch, no detour through g0: this is what keeps a
//   yield near one context switch), else to g0, whose schedule() loop runs
//   findrunnable(). Whatever runs next on the M first calls after_switch() to
//   carry out the request, now that the old goroutine is off its stack.
//
// Exiting goroutines whose stack must be freed and goroutines leaving a syscall
// without a P go through g0: runtime internals run on g0.
#include <cxxabi.h>
#include <pthread.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <mutex>
#include <thread>

#include "base/dcheck.hpp"
#include "base/log.hpp"
#include "base/print.hpp"
#include "init.hpp"
#include "sched/panic.hpp"
#include "sched/proc.hpp"
#include "sched/ready.hpp"
#include "sched/runq.hpp"
#include "io/poll.hpp"
#include "sched/time.hpp"
#include "mem/sys.hpp"
#include "stack/fault.hpp"

namespace gort::rt {

namespace {
// Never destroyed (runtime.hpp): the union's destructor does nothing. Static
// storage rather than the heap, and sched a constant reference to it, so code
// in this translation unit (the unity group: the hot scheduler files) reaches
// the globals at a fixed address instead of loading a pointer first.
union SchedStorage {
  Sched s;
  SchedStorage() : s() {}
  ~SchedStorage() {}
} schedstorage;
}  // namespace

Sched& sched = schedstorage.s;

}  // namespace gort::rt

thread_local gort::rt::M* gort_tls_m = nullptr;

namespace gort::rt {

namespace {


// Go's number: the global queue is checked every 61 schedule ticks so a busy
// local queue cannot starve it.
constexpr std::uint32_t kGlobalCheckTicks = 61;
// How many free Gs ahead gfget fetches: a G that exited on another CPU is a
// ~100 ns miss, and a spawn takes ~50.
constexpr int kGfreePrefetch = 4;
// Go's _GoidCacheBatch: a P takes goroutine ids 16 at a time, so spawning
// touches the shared counter once per 16 goroutines.
constexpr std::uint64_t kGoidCacheBatch = 16;

void schedule();
void stopm();

// ---- Idle Ps and Ms ----
//
// The list functions (pidleput ... mremove) run with sched.lock held.
// acquirep and releasep take no lock: they bind and unbind a P that the
// calling M alone owns at that moment (acquirep always runs unlocked, on a P
// its caller took off an idle list or was handed in M::nextp).

void pidleput(P* p) REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "pidleput: sched.lock not held");
  // Work left on an idle P waits until some M takes the P again.
  GORT_DCHECK(runqempty(p), "pidleput: P has a non-empty run queue");
  p->link = sched.pidle;
  sched.pidle = p;
  sched.npidle.fetch_add(1, std::memory_order_relaxed);
}

P* pidleget() REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "pidleget: sched.lock not held");
  P* p = sched.pidle;
  if (p != nullptr) {
    sched.pidle = p->link;
    sched.npidle.fetch_sub(1, std::memory_order_relaxed);
  }
  return p;
}

// pnetwaitput() lists p, whose M m is about to sleep in netpollwait (poll.hpp
// rule 2), among the idle Ps. Lock held.
void pnetwaitput(P* p, M* m) REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "pnetwaitput: sched.lock not held");
  p->netm = m;
  p->innetwait = true;
  p->link = sched.pnetwait;
  sched.pnetwait = p;
  sched.npidle.fetch_add(1, std::memory_order_relaxed);
}

// pnetwaitremove() takes p off the netwait list if it is still there. Lock held.
void pnetwaitremove(P* p) REQUIRES(sched.lock) {
  if (!p->innetwait) return;
  for (P** pp = &sched.pnetwait; *pp != nullptr; pp = &(*pp)->link) {
    if (*pp == p) {
      *pp = p->link;
      break;
    }
  }
  p->innetwait = false;
  sched.npidle.fetch_sub(1, std::memory_order_relaxed);
}

void mput(M* m) REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "mput: sched.lock not held");
  GORT_DCHECK(m->p == nullptr, "mput: idle M holds a P");
  m->schedlink = sched.midle;
  sched.midle = m;
  sched.nmidle++;
}

M* mget() REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "mget: sched.lock not held");
  M* m = sched.midle;
  if (m != nullptr) {
    sched.midle = m->schedlink;
    sched.nmidle--;
  }
  return m;
}

// mremove() takes m off the idle list if it is there. Lock held.
bool mremove(M* m) REQUIRES(sched.lock) {
  for (M** pp = &sched.midle; *pp != nullptr; pp = &(*pp)->schedlink) {
    if (*pp == m) {
      *pp = m->schedlink;
      sched.nmidle--;
      return true;
    }
  }
  return false;
}

void acquirep(M* m, P* p) {
  if (p->m != nullptr || p->status.load(std::memory_order_relaxed) != Pstatus::idle) {
    fatal("acquirep: P not idle");
  }
  m->p = p;
  p->m = m;
  p->mcpuclock.store(m->cpuclock, std::memory_order_relaxed);
  // A tick for sysmon: its hog check measures from the last tick it saw, and
  // an idle spell must not count as the last goroutine's running time.
  owner_add(p->schedtick);
  p->status.store(Pstatus::running, std::memory_order_relaxed);
}

P* releasep(M* m) {
  P* p = m->p;
  GORT_DCHECK(p != nullptr && p->m == m, "releasep: M does not hold its P");
  p->m = nullptr;
  p->runningg.store(nullptr, std::memory_order_relaxed);
  p->status.store(Pstatus::idle, std::memory_order_relaxed);
  m->p = nullptr;
  return p;
}

// ---- Ms ----

void mstart(M* m) {
  gort_tls_m = m;
  // Named for top -H, perf, gdb and /proc: gort-m0, gort-m1... in creation order.
  char name[16];
  std::snprintf(name, sizeof name, "gort-m%d", m->id);
  pthread_setname_np(pthread_self(), name);
  m->ehglobals = abi::__cxa_get_globals();
  if (pthread_getcpuclockid(pthread_self(), &m->cpuclock) != 0) m->cpuclock = 0;
  init_thread_context(m->g0);
  minit_signalstack();
  acquirep(m, m->nextp);
  m->nextp = nullptr;
  schedule();
}

M* allocm() {
  auto* m = new M;
  sched.lock.lock();
  m->id = sched.mcount++;
  sched.lock.unlock();
  m->fastrand = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(m->id + 1) ^ static_cast<std::uint64_t>(nanotime());
  return m;
}

// newm() starts an OS thread for a new M that will run p.
void newm(P* p, bool spinning) {
  M* m = allocm();
  m->nextp = p;
  m->spinning = spinning;
  std::thread(mstart, m).detach();
}

// startm() gets an idle M (or makes one) to run p, or an idle P if p is null.
// A spinning start was counted in nmspinning by the caller.
void startm(P* p, bool spinning) {
  sched.lock.lock();
  if (p == nullptr) {
    p = pidleget();
    if (p == nullptr && sched.pnetwait != nullptr) {
      // An idle P whose M sleeps in its poller: wake that M instead (poll.hpp
      // rule 2); it runs the P again, spinning if we were asked to start one.
      P* np = sched.pnetwait;
      pnetwaitremove(np);
      np->netm->spinning = spinning;
      sched.lock.unlock();
      netpollbreak(np);
      return;
    }
    if (p == nullptr) {
      sched.lock.unlock();
      if (spinning) sched.nmspinning.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
  M* nm = mget();
  sched.lock.unlock();
  if (nm == nullptr) {
    newm(p, spinning);
    return;
  }
  nm->spinning = spinning;
  nm->nextp = p;
  nm->park.wakeup();
}

// stopm_until() parks the M until startm hands it a P. With a deadline (>0) it
// wakes by then to run timers: it then takes an idle P if one is left.
// stopm() (below) is stopm_until(0): no deadline.
void stopm_until(std::int64_t deadline) {
  M* m = getm();
  sched.lock.lock();
  mput(m);
  sched.lock.unlock();
  if (deadline > 0) {
    // A deadline already past must not sleep at all (a negative timeout would
    // mean "no timeout").
    const std::int64_t left = std::max<std::int64_t>(deadline - nanotime(), 0);
    if (!m->park.sleep_for(left)) {
      sched.lock.lock();
      if (mremove(m)) {
        P* p = pidleget();
        sched.lock.unlock();
        if (p != nullptr) {
          acquirep(m, p);
          return;
        }
        stopm();
        return;
      }
      sched.lock.unlock();
      m->park.sleep();  // startm took us off the list: its wakeup is coming
    }
  } else {
    m->park.sleep();
  }
  m->park.clear();
  acquirep(m, m->nextp);
  m->nextp = nullptr;
}

void stopm() { stopm_until(0); }

}  // namespace

// handoffp() passes a P whose M is blocked (in a syscall) to another M, or idles it.
void handoffp(P* p) {
  // I/O in flight on p's ring counts as work: only p's M reaps it (poll.hpp rule 1).
  if (!runqempty(p) || sched.runqsize.load(std::memory_order_relaxed) > 0 ||
      p->timer0when.load(std::memory_order_relaxed) != 0 || p->io.inflight != 0) {
    startm(p, false);
    return;
  }
  // No work here: keep one M spinning so new work is picked up quickly.
  int z = 0;
  if (sched.nmspinning.load(std::memory_order_relaxed) + sched.npidle.load(std::memory_order_relaxed) == 0 &&
      sched.nmspinning.compare_exchange_strong(z, 1)) {
    startm(p, true);
    return;
  }
  sched.lock.lock();
  pidleput(p);
  sched.lock.unlock();
}

namespace {

void resetspinning(M* m) {
  m->spinning = false;
  // The last spinning M found work: start another so stealing goes on.
  if (sched.nmspinning.fetch_sub(1, std::memory_order_relaxed) == 1) wakep();
}

// ---- I/O (the door: sched_io.hpp) ----

// injectglist() makes the goroutines of l, which netpoll listed, runnable on
// p, the caller's (Go's injectglist): each parked one is queued at p's tail,
// behind what already waits. One still switching away on this M (its I/O
// completed before it was off its stack) is not parked: it is skipped, and
// its park's unlockf sees the completion and resumes it. The status CAS is the
// only place completions make a goroutine runnable. When more than one was
// queued, an idle P is woken to steal. Returns how many were queued.
int injectglist(P* p, GList& l) {
  int n = 0;
  l.end();
  for (G* gp = l.head; gp != nullptr;) {
    G* next = gp->schedlink;
    Gstatus w = Gstatus::waiting;
    if (gp->status.compare_exchange_strong(w, Gstatus::runnable, std::memory_order_acq_rel)) {
      runqput(p, gp, false);
      n++;
    }
    gp = next;
  }
  if (n > 1) wakep();
  return n;
}

}  // namespace

// netpollinject() (sched_io.hpp) reaps no more completions than p's ring has
// room for, so none overflow to the global queue (where they would wait for
// every 61st tick while p stays busy).
int netpollinject(P* p) {
  GList l;
  netpoll(p, l, runqroom(p));
  return injectglist(p, l);
}

namespace {

// ---- Gs ----

// gfreebatchput() puts g[0..n) on the global free list as one batch, so a P
// refills in O(1). sched.lock held.
void gfreebatchput(G* const* g, int n) REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "gfreebatchput: sched.lock not held");
  GBatch* b = sched.gbatchfree;
  if (b != nullptr) sched.gbatchfree = b->next;
  else b = new GBatch;
  std::memcpy(b->g, g, n * sizeof(G*));
  b->n = n;
  b->next = sched.gfree;
  sched.gfree = b;
  sched.ngfree.fetch_add(n, std::memory_order_relaxed);
}

// gfstackfree() frees the stack of gp, which has exited (or never ran).
void gfstackfree(void* g) {
  // Runtime internals run on g0 (Go's "stackfree on the scheduler stack"): a
  // goroutine's own frames may be on the stack being freed.
  GORT_DCHECK(getowner() == nullptr, "gfstackfree: not on g0 or a plain thread");
  auto* gp = static_cast<G*>(g);
  stackfree(gp, gp->stack, "freed at goroutine exit");
  gp->stack = Stack{};
}

// gfput() recycles an exited G on p, freeing its stack when freestack says so
// (a custom size, or a debug mode that must see exited stacks go: the caller
// asked stack_keep_on_exit, on g0 when it frees). A G keeps only a default-size
// stack, so gfget's taker needs a stack exactly when the G has none.
void gfput(P* p, G* gp, bool freestack) {
  const std::size_t want = gp->stack.empty() ? 0 : gp->stack.size();
  if (gp->stacksize != want) {
    Printer(2).str("runtime: goroutine ").dec(gp->goid).str(" stacksize ").dec(gp->stacksize)
        .str(", stack ").dec(want).str("\n");
    fatal("gfput: bad stacksize");
  }
  if (freestack && !gp->stack.empty()) gfstackfree(gp);
  reset_context(gp->ctx);
  gp->status.store(Gstatus::dead, std::memory_order_relaxed);
  owner_add(p->nlive, std::int64_t{-1});
  p->gfree[p->gfreecnt++] = gp;
  if (p->gfreecnt == kGfreeMax) {
    // Keep the kGfreeKeep most recently exited (their lines are in this CPU's
    // cache) and hand the older rest to the global list as one batch.
    constexpr int n = kGfreeMax - kGfreeKeep;
    sched.lock.lock();
    gfreebatchput(p->gfree, n);
    sched.lock.unlock();
    std::memmove(p->gfree, p->gfree + n, kGfreeKeep * sizeof(G*));
    p->gfreecnt = kGfreeKeep;
  }
}

// gfget() takes a recycled G from p, refilling p with a batch from the global list.
G* gfget(P* p) {
  if (p->gfreecnt == 0) {
    if (sched.ngfree.load(std::memory_order_relaxed) == 0) return nullptr;
    sched.lock.lock();
    if (GBatch* b = sched.gfree) {
      sched.gfree = b->next;
      sched.ngfree.fetch_sub(b->n, std::memory_order_relaxed);
      std::memcpy(p->gfree, b->g, b->n * sizeof(G*));
      p->gfreecnt = b->n;
      b->next = sched.gbatchfree;
      sched.gbatchfree = b;
    }
    sched.lock.unlock();
    // The batch's Gs exited elsewhere: start fetching the first few at once.
    for (int i = 1; i <= kGfreePrefetch && i <= p->gfreecnt; i++) __builtin_prefetch(p->gfree[p->gfreecnt - i], 1);
    if (p->gfreecnt == 0) return nullptr;
  }
  G* gp = p->gfree[--p->gfreecnt];
  // Keep kGfreePrefetch Gs in flight, and fetch the stack top (make_context
  // writes it) of the next one, whose G line was asked for a few spawns ago.
  if (p->gfreecnt >= kGfreePrefetch) __builtin_prefetch(p->gfree[p->gfreecnt - kGfreePrefetch], 1);
  if (p->gfreecnt > 0) {
    const G* next = p->gfree[p->gfreecnt - 1];
    if (!next->stack.empty()) __builtin_prefetch(reinterpret_cast<const char*>(next->stack.hi) - 64, 1);
  }
  return gp;
}

G* malg() {
  auto* gp = new G;
  sched.allglock.lock();
  gp->alllink = sched.allgs;
  sched.allgs = gp;
  sched.allglock.unlock();
  sched.nallgs.fetch_add(1, std::memory_order_relaxed);
  return gp;
}

// ---- Switching ----

// The C++ runtime keeps its exception state per thread (__cxa_eh_globals: the
// exceptions being handled, for `throw;` and std::current_exception, and the
// count of those in flight, for std::uncaught_exceptions). A goroutine that
// parks in a catch block, or in a destructor run by unwinding, may resume on
// another thread, where that state is another goroutine's: so it travels with
// the G, saved by switch_away and restored here. Two words on x86-64, for
// libstdc++ and libc++abi alike.
[[gnu::always_inline]] inline void execute(M* m, G* gp) {
  m->curg = gp;
  std::memcpy(m->ehglobals, gp->ehstate, sizeof gp->ehstate);
  gp->status.store(Gstatus::running, std::memory_order_relaxed);
  gp->preempt.store(false, std::memory_order_relaxed);
  P* p = m->p;
  p->runningg.store(gp, std::memory_order_release);
  p->runninggoid.store(gp->goid, std::memory_order_relaxed);
  owner_add(p->schedtick);
  setowner(gp);
}

// after_switch_slow() carries out a request other than a yield's (rule 4).
[[gnu::noinline]] void after_switch_slow(M* m, After a) {
  G* gp = m->after_g;
  m->after = After::none;
  switch (a) {
    case After::none:
    case After::ready:  // after_switch's own
    case After::parkunlock:
      break;
    case After::park: {
      gp->status.store(Gstatus::waiting, std::memory_order_release);
      bool (*f)(G*, void*) = m->unlockf;
      if (f != nullptr && !f(gp, m->unlockarg)) {
        Gstatus w = Gstatus::waiting;
        if (gp->status.compare_exchange_strong(w, Gstatus::runnable, std::memory_order_acq_rel)) {
          runqput(getm()->p, gp, true);
        }
      }
      break;
    }
    case After::exit:
    case After::exitfree:
      gfput(m->p, gp, a == After::exitfree);
      break;
    case After::exitsyscall:
      globrunqput(gp);
      wakep();  // an idle P (maybe asleep in its poller) must come and run it
      stopm();
      break;
  }
}

// after_switch() carries out the request the previous goroutine left (rule 4).
// A yield's requeue and a park's lock release are inline: one of them is the
// other half of every yield and of every channel hand-off. Not checked by
// -Wthread-safety: it releases a lock that the goroutine before the switch
// took (goparkunlock), which no per-function analysis can see.
[[gnu::always_inline]] inline void after_switch() NO_THREAD_SAFETY_ANALYSIS {
  M* m = getm();
  const After a = m->after;
  if (a == After::ready) {
    G* gp = m->after_g;
    m->after = After::none;
    gp->status.store(Gstatus::runnable, std::memory_order_relaxed);
    if (!runqputtail(m->p, gp)) [[unlikely]] runqput(m->p, gp, false);
  } else if (a == After::parkunlock) {
    GORT_DCHECK(static_cast<Lock*>(m->unlockarg)->held(), "after_switch: a goroutine parked without its lock");
    m->after = After::none;
    // Waiting before the release: the waker takes the lock, then goready checks.
    m->after_g->status.store(Gstatus::waiting, std::memory_order_release);
    static_cast<Lock*>(m->unlockarg)->unlock();
  } else if (a != After::none) {
    after_switch_slow(m, a);
  }
}

// leave() records gp's request a in m (rule 4) and saves gp's exception state.
// Only a park reads unlockf, and only the parks read unlockarg.
[[gnu::always_inline]] inline void leave(M* m, G* gp, After a, bool (*unlockf)(G*, void*), void* arg) {
  std::memcpy(gp->ehstate, m->ehglobals, sizeof gp->ehstate);  // see execute
  m->after = a;
  m->after_g = gp;
  if (a == After::park) m->unlockf = unlockf;
  if (a == After::park || a == After::parkunlock) m->unlockarg = arg;
}

// nextctx() makes next the goroutine running on m (execute), or, when next
// is null, leaves m on g0, and returns the context to switch to.
[[gnu::always_inline]] inline Context& nextctx(M* m, G* next) {
  if (next == nullptr) {
    m->curg = nullptr;
    setowner(nullptr);
    return m->g0;
  }
  execute(m, next);
  return next->ctx;
}

// gogo() runs next on m in place of gp, or g0 when next is null; gp has left
// its request (leave). Returns when gp is resumed, possibly on another M.
// Every goroutine that will resume switches away from this one call site,
// which gort_ctx_switch's `ret` relies on (context_x86_64.S), and nothing
// here lives across the switch, so it saves no registers of its own.
[[gnu::noinline]] void gogo(M* m, G* gp, G* next) {
  switch_context(gp->ctx, nextctx(m, next));
  after_switch();
}

// gonext() runs next (or g0) on m in place of gp, which has left request a:
// for good if gp exits, else until gp is resumed (gogo).
[[gnu::always_inline]] inline void gonext(M* m, G* gp, After a, G* next) {
  if (a == After::exit || a == After::exitfree) switch_context_final(gp->ctx, nextctx(m, next));
  gogo(m, gp, next);
}

// switch_away() leaves the running goroutine gp with request a (rule 4) and
// runs the next goroutine of this P, or g0 when there is none or the request
// needs g0. Returns when gp is resumed, possibly on another M.
void switch_away(G* gp, After a, bool (*unlockf)(G*, void*) = nullptr, void* arg = nullptr) {
  M* m = getm();
  leave(m, gp, a, unlockf, arg);
  P* p = m->p;
  G* next = nullptr;
  // Straight to the next goroutine, except: every 61st tick (g0's findrunnable
  // then also looks at the global queue and the timers), a syscall exit without
  // a P, and an exit that must free a stack (runtime internals run on g0).
  const bool direct = a == After::ready || a == After::park || a == After::parkunlock || a == After::exit;
  if (direct && p->schedtick.load(std::memory_order_relaxed) % kGlobalCheckTicks != 0) {
    // Completed I/O first: its goroutines queue behind the ones already waiting.
    if (p->io.due()) netpollinject(p);
    next = runqget(p);
    // Local queue empty but work queued globally: take a share of it now, as
    // Go's Gosched does by going through the global queue.
    if (next == nullptr && sched.runqsize.load(std::memory_order_relaxed) > 0) {
      sched.lock.lock();
      next = globrunqget(p, 0);
      sched.lock.unlock();
    }
  }
  if (next == nullptr && a == After::ready &&
      p->schedtick.load(std::memory_order_relaxed) % kGlobalCheckTicks != 0) {
    // A yield with nothing else to run: carry on, as Go's Gosched would after a
    // round trip through the scheduler. It still counts as a scheduling point.
    m->after = After::none;
    owner_add(p->schedtick);
    gp->preempt.store(false, std::memory_order_relaxed);
    return;
  }
  gonext(m, gp, a, next);
}

// switch_away_fast() is switch_away for a yield, a park or an exit (a, a
// constant once inlined) by gp, running on m with P p, in the common case: no
// tick due, no I/O due, a goroutine in the P's own queue, and for an exit a
// stack the P keeps (the others are freed on g0). Inlined into gosched, the
// parks and goentry, it spares them a frame of callee-saved registers and the
// tests of a; the rest goes the slow way. p is passed in: after a counter's
// update (owner_add) the compiler would load m->p again.
[[gnu::always_inline]] inline void switch_away_fast(M* m, P* p, G* gp, After a, bool (*unlockf)(G*, void*),
                                                    void* arg) {
  // An exit decides here, once, whether its G keeps the stack: a debug mode
  // switched on later must not make gfput free it on the next goroutine's
  // stack instead of g0 (exitfree never switches directly).
  if (a == After::exit && !stack_keep_on_exit(gp->stack)) {
    switch_away(gp, After::exitfree);
    return;
  }
  G* next;
  if (p->schedtick.load(std::memory_order_relaxed) % kGlobalCheckTicks == 0 || p->io.due() ||
      (next = runqget(p)) == nullptr) [[unlikely]] {
    switch_away(gp, a, unlockf, arg);
    return;
  }
  leave(m, gp, a, unlockf, arg);
  gonext(m, gp, a, next);
}

// stealwork() tries every other P in random order: their expired timers, then
// half of their run queue (runnext too on the last pass).
G* stealwork(M* m, std::int64_t now) {
  P* pp = m->p;
  const int n = sched.procs;
  for (int pass = 0; pass < 4; pass++) {
    const bool last = pass == 3;
    int start = static_cast<int>(fastrandn(static_cast<std::uint32_t>(n)));
    for (int i = 0; i < n; i++) {
      P* p2 = sched.allp[static_cast<std::size_t>((start + i) % n)];
      if (p2 == pp) continue;
      if (last) {
        std::int64_t w = p2->timer0when.load(std::memory_order_relaxed);
        if (w != 0 && w <= now) {
          checktimers(p2, now);
          if (G* gp = runqget(pp)) return gp;
        }
      }
      if (p2->status.load(std::memory_order_relaxed) == Pstatus::idle && runqempty(p2)) continue;
      if (G* gp = runqsteal(pp, p2, last)) return gp;
    }
  }
  return nullptr;
}

// checkdead() ends the program when goroutine 1 called goexit and no goroutine
// is left, as Go's checkdead, which also runs when an M finds nothing to do.
// sched.lock is held: every P that went idle before us released it under the
// lock, so their exits are counted; the last goroutine's P comes here too once
// that goroutine has exited.
void checkdead() REQUIRES(sched.lock) {
  if (sched.main_goexited.load(std::memory_order_relaxed) && nlive() == 0) {
    fatal("no goroutines (main called runtime.Goexit) - deadlock!");
  }
}

// A P's spin budget never drops below this, so that a spin can find work
// again and grow it back: 16 rounds of looking cost about a microsecond.
constexpr std::int64_t kMinSpinNs = 1'000;

// findrunnable() finds a goroutine to run, blocking (stopm) until there is one.
// Go's findRunnable minus the GC work. It polls the P's own poller as Go's
// polls netpoll: submits and reaps before looking at the queues, reaps while it
// spins (and, on epoll, polls every 16 spins), and with I/O in flight sleeps in
// the poller (netpollwait) instead of parking the M.
G* findrunnable(M* m) {
top:
  P* p = m->p;
  // nanotime() costs ~100 ns on our VMs (docs/kernel.md): read it only with timers due.
  std::int64_t now = p->timer0when.load(std::memory_order_relaxed) != 0 ? nanotime() : 0;
  if (now != 0) checktimers(p, now);
  // I/O: submit what goroutines queued, then reap (a syscall on epoll: only
  // when nothing else is queued here, or on the 61st tick).
  if (p->poller != nullptr) {
    if (p->io.unsubmitted != 0) netpollflush(p);
    if (p->io.ring() ? p->io.ready()
                     : runqempty(p) || p->schedtick.load(std::memory_order_relaxed) % kGlobalCheckTicks == 0) {
      netpollinject(p);
    }
  }
  if (p->schedtick.load(std::memory_order_relaxed) % kGlobalCheckTicks == 0 &&
      sched.runqsize.load(std::memory_order_relaxed) > 0) {
    sched.lock.lock();
    G* gp = globrunqget(p, 1);
    sched.lock.unlock();
    if (gp != nullptr) return gp;
  }
  if (G* gp = runqget(p)) return gp;
  if (sched.runqsize.load(std::memory_order_relaxed) > 0) {
    sched.lock.lock();
    G* gp = globrunqget(p, 0);
    sched.lock.unlock();
    if (gp != nullptr) return gp;
  }
  // Steal, if not too many Ms are at it already (Go: at most half the busy Ps).
  const int busy = sched.procs - sched.npidle.load(std::memory_order_relaxed);
  if (m->spinning || 2 * sched.nmspinning.load(std::memory_order_relaxed) < busy) {
    if (!m->spinning) {
      m->spinning = true;
      sched.nmspinning.fetch_add(1, std::memory_order_relaxed);
    }
    // Spin before parking: waking a parked vCPU costs ~20 us here (docs/kernel.md),
    // more than the gap before the next goroutine becomes runnable when work
    // keeps coming. When it does not (one connection whose peer answers in
    // 50 us), spinning only burns the CPU: the budget adapts per P, halving
    // after a spin that found nothing and doubling (up to sched.spin_us) after
    // one that found work, as adaptive mutexes do.
    now = nanotime();
    const std::int64_t spin_until = now + p->spinbudget;
    for (int spins = 1;; spins++) {
      G* gp = stealwork(m, now);
      if (gp == nullptr) {
        if (p->io.ready()) netpollinject(p);
        gp = runqget(p);
      }
      if (gp != nullptr) {
        p->spinbudget = std::min(std::max<std::int64_t>(p->spinbudget * 2, kMinSpinNs), sched.spin_ns);
        resetspinning(m);
        return gp;
      }
      if (sched.runqsize.load(std::memory_order_relaxed) > 0) break;
      __builtin_ia32_pause();
      if (spins % 16 == 0) {
        if (p->poller != nullptr && !p->io.ring()) netpollinject(p);  // epoll: a syscall
        if ((now = nanotime()) >= spin_until) {
          p->spinbudget /= 2;
          break;
        }
      }
    }
  }
  // Give up the P. Then look once more at every queue: work queued between our
  // last look and the release would otherwise wait for the next wakep.
  sched.lock.lock();
  if (sched.runqsize.load(std::memory_order_relaxed) > 0) {
    G* gp = globrunqget(p, 0);
    sched.lock.unlock();
    if (m->spinning) resetspinning(m);
    return gp;
  }
  releasep(m);
  checkdead();
  // Stop spinning before the P is listed: once it is on the netwait list,
  // startm may set m->spinning for the wake-up it sends (under the lock).
  const bool wasspinning = m->spinning;
  if (m->spinning) {
    m->spinning = false;
    sched.nmspinning.fetch_sub(1, std::memory_order_relaxed);
  }
  // With I/O in flight, this M keeps p and sleeps in its poller (poll.hpp
  // rule 2), so the completions land in a P that is watched.
  const bool netwait = p->poller != nullptr && netpollpending(p);
  if (netwait) {
    pnetwaitput(p, m);
  } else {
    pidleput(p);
  }
  sched.lock.unlock();
  // Our P is listed idle (npidle) before we look at the queues (a full fence:
  // the unlock is not one, lock.hpp). As in Go, the side that queues has no
  // fence before wakep reads npidle: a goroutine it queued meanwhile may be
  // missed by both, and then waits for its own P, which is running.
  storeload_fence();
  // The global queue too: a goroutine readied from a plain thread goes there,
  // and its wakep may have seen our nmspinning before we dropped it.
  bool work = sched.runqsize.load(std::memory_order_acquire) > 0;
  for (P* p2 : sched.allp) work = work || !runqempty(p2);
  if (work) {
    sched.lock.lock();
    P* np = nullptr;
    if (netwait) {
      pnetwaitremove(p);  // back to work on our own P, unless startm took it for us
      np = p;
    } else {
      np = pidleget();
    }
    sched.lock.unlock();
    if (np != nullptr) {
      acquirep(m, np);
      if (wasspinning && !m->spinning) {  // startm may have made us spinning already
        m->spinning = true;
        sched.nmspinning.fetch_add(1, std::memory_order_relaxed);
      }
      goto top;
    }
  }
  // Sleep, until the earliest timer if there is one.
  std::int64_t until = timers_earliest();
  if (until != 0) {
    std::int64_t cur = sched.sleep_until.load(std::memory_order_relaxed);
    while ((cur == 0 || until < cur) && !sched.sleep_until.compare_exchange_weak(cur, until)) {
    }
  }
  if (netwait) {
    netpollwait(p, until);
    sched.lock.lock();
    pnetwaitremove(p);
    sched.lock.unlock();
    acquirep(m, p);
  } else {
    stopm_until(until);
  }
  if (until != 0) {
    std::int64_t cur = until;
    sched.sleep_until.compare_exchange_strong(cur, 0);
  }
  goto top;
}

void schedule() {
  M* m = getm();
  for (;;) {
    G* gp = findrunnable(m);
    if (m->spinning) resetspinning(m);
    execute(m, gp);
    switch_context(m->g0, gp->ctx);
    after_switch();
  }
}

// goentry() is the first frame of every goroutine.
void goentry(void* arg) {
  after_switch();
  G* gp = static_cast<G*>(arg);
  run_goroutine(gp);  // panic.cpp: runs fn, reports an escaping exception
  gp->fn->destroy(gp->fnp);
  gp->fn = nullptr;
  gls_destroy(gp->gls);
  M* m = getm();
  switch_away_fast(m, m->p, gp, After::exit, nullptr, nullptr);
  fatal("goentry: exited goroutine resumed");
}

// systemstack() runs fn(arg) on the M's g0 stack, below where g0 is suspended,
// as Go's systemstack: runtime internals that may need a lot of stack or touch
// the memory system never run on a goroutine's stack.
void systemstack(void (*fn)(void*), void* arg) {
  M* m = getm();
  G* gp = m != nullptr ? m->curg : nullptr;
  if (gp == nullptr) {  // already on g0 or a plain thread
    fn(arg);
    return;
  }
  struct Call {
    void (*fn)(void*);
    void* arg;
    Context* back;
    Context self;
  } call{fn, arg, &gp->ctx, {}};
  // Leave room below g0's saved frame for the red zone and the switch frame.
  const std::uintptr_t top = reinterpret_cast<std::uintptr_t>(m->g0.sp) - 1024;
  make_context(call.self, m->g0.stack_lo, top, [](void* p) {
    auto* c = static_cast<Call*>(p);
    c->fn(c->arg);
    switch_context_final(c->self, *c->back);
  }, &call);
  setowner(nullptr);
  switch_context(gp->ctx, call.self);
  setowner(gp);
  destroy_context(call.self);
#if defined(__SANITIZE_ADDRESS__)
  // fn's frames ended with a final switch, leaving their redzones poisoned on
  // g0's stack, where g0's own frames will grow later.
  __asan_unpoison_memory_region(reinterpret_cast<void*>(m->g0.stack_lo), top - m->g0.stack_lo);
#endif
}

}  // namespace

G* getgp() {
  M* m = getm();
  return m != nullptr ? m->curg : nullptr;
}

std::int64_t nlive() {
  std::int64_t n = sched.nlive.load(std::memory_order_relaxed);
  for (const P* p : sched.allp) n += p->nlive.load(std::memory_order_relaxed);
  return n;
}

std::uint32_t fastrandn(std::uint32_t n) {
  // Off the scheduler's threads (a select on a plain thread) a per-thread state.
  thread_local std::uint64_t thread_state = static_cast<std::uint64_t>(nanotime()) | 1;
  M* m = getm();
  std::uint64_t& x = m != nullptr ? m->fastrand : thread_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return static_cast<std::uint32_t>((x >> 32) * n >> 32);
}

void startm_idle() { startm(nullptr, false); }

void wakep_slow() {
  int z = 0;
  if (sched.nmspinning.load(std::memory_order_relaxed) != 0 ||
      !sched.nmspinning.compare_exchange_strong(z, 1, std::memory_order_acq_rel)) {
    return;
  }
  startm(nullptr, true);
}

namespace {

// park() is gopark and goparkunlock for gp, running on m: a = park runs
// unlockf(gp, arg) once gp is off its stack, a = parkunlock releases the Lock
// arg (inline in after_switch).
[[gnu::always_inline]] inline void park(M* m, G* gp, After a, bool (*unlockf)(G*, void*), void* arg,
                                        WaitReason reason) {
  gp->waitreason = reason;
  gp->waitsince = sched.coarsenow.load(std::memory_order_relaxed);
  P* p = m->p;
  owner_add(p->npark);
  switch_away_fast(m, p, gp, a, unlockf, arg);
}

}  // namespace

void gopark(bool (*unlockf)(G*, void*), void* arg, WaitReason reason) {
  M* m = getm();
  G* gp = getgp_parkable(m);
  if (gp == nullptr) fatal("gopark: not on a goroutine that holds a P");
  park(m, gp, After::park, unlockf, arg, reason);
}

// Not checked by -Wthread-safety: l is released after the switch, by
// after_switch on whatever runs next on the M (rule 4).
void goparkunlock(M* m, G* gp, Lock* l, WaitReason reason) NO_THREAD_SAFETY_ANALYSIS {
  park(m, gp, After::parkunlock, nullptr, l, reason);
}

void goready(G* gp) { goready_inline(gp); }

void gosched() {
  M* m = getm();
  G* gp = getgp_parkable(m);
  if (gp == nullptr) {
    sched_yield();
    return;
  }
  switch_away_fast(m, m->p, gp, After::ready, nullptr, nullptr);
}


// ---- Spawning ----

namespace {

struct NewG {
  const gort::GoOptions* opts;
  G* gp;
};

// newg_slow() makes a G with the requested stack; runs on g0 (systemstack).
void newg_slow(void* arg) {
  GORT_DCHECK(getowner() == nullptr, "newg_slow: stackalloc not on g0 or a plain thread");
  auto* ng = static_cast<NewG*>(arg);
  G* gp = ng->gp != nullptr ? ng->gp : malg();
  std::size_t asked = ng->opts->stack_size;
  const bool relocatable = ng->opts->relocatable.value_or(copying_geom.by_default);
  const bool copying = relocatable && copying_geom.supported;
  // Where stacks cannot move (sanitizer builds), a relocatable goroutine gets
  // a stable stack as large as a thread's, so code that relies on growth runs.
  if (relocatable && !copying) asked = std::max(asked, copying_geom.stable_fallback);
  const StackKind kind = copying ? StackKind::copying : StackKind::stable;
  std::size_t want;
  if (copying) want = copying_class(asked);
  else want = asked == 0 ? stack_default_size() : (asked + kPageSize - 1) & ~(kPageSize - 1);
  if (!gp->stack.empty() && (gp->stack.size() != want || gp->stack.kind != kind)) gfstackfree(gp);
  if (gp->stack.empty()) gp->stack = copying ? stackalloc_copying(gp, want) : stackalloc(gp, want);
  ng->gp = gp;
}

}  // namespace

G* newproc_g(const gort::GoOptions* opts) {
  M* m = getm();
  P* p = m != nullptr ? m->p : nullptr;
  G* gp = nullptr;
  if (p != nullptr) gp = gfget(p);
  // A G from the free list has a stack of the default kind and size or, when
  // gfput freed it (another size or kind, a debug mode), none: allocate one,
  // as Go's gfget does.
  if (gp == nullptr || opts->stack_size != 0 || opts->relocatable.has_value() || gp->stack.empty()) {
    NewG ng{opts, gp};
    systemstack(newg_slow, &ng);
    gp = ng.gp;
  }
  if (p != nullptr) {
    if (p->goidcache == p->goidcacheend) {
      p->goidcache = sched.goidgen.fetch_add(kGoidCacheBatch, std::memory_order_relaxed) + 1;
      p->goidcacheend = p->goidcache + kGoidCacheBatch;
    }
    gp->goid = p->goidcache++;
  } else {
    gp->goid = sched.goidgen.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  if (!gp->name.empty() || !opts->name.empty()) gp->name.assign(opts->name.data(), opts->name.size());
  gp->status.store(Gstatus::idle, std::memory_order_relaxed);
  return gp;
}

bool newproc_queue(G* gp) {
  make_context(gp->ctx, gp->stack.lo, gp->stack.hi, goentry, gp);
  gp->status.store(Gstatus::runnable, std::memory_order_relaxed);
  M* m = getm();
  P* p = m != nullptr ? m->p : nullptr;
  if (p == nullptr) {
    sched.nspawn.fetch_add(1, std::memory_order_relaxed);
    sched.nlive.fetch_add(1, std::memory_order_relaxed);
    ready(gp);
    return false;
  }
  owner_add(p->nspawn);
  owner_add(p->nlive);
  // The new goroutine runs next (runnext), as Go's `go` statement, unless
  // runnext is taken: then it queues at the tail instead of kicking the other
  // out. A burst of spawns starts in spawn order, and does not swap runnext
  // and move the previous spawn to the tail once per spawn. full: the ring
  // was full before this spawn (runqput_outofline then moves half of it away).
  bool full;
  if (p->runnext.load(std::memory_order_relaxed) == nullptr) {
    full = runqroom(p) == 0;
    runqput_inline(p, gp, true);
  } else {
    full = !runqputtail(p, gp);
    if (full) runqput_outofline(p, gp, false);
  }
  wakep();
  return full;
}

void newproc_recycle(G* gp) {
  gp->status.store(Gstatus::dead, std::memory_order_relaxed);
  // The free lists hold default-size stacks or none, as after an exit.
  if (!gp->stack.empty() && !stack_keep_on_exit(gp->stack)) systemstack(gfstackfree, gp);
  M* m = getm();
  if (m != nullptr && m->p != nullptr) {
    gfput(m->p, gp, false);
    return;
  }
  sched.lock.lock();
  gfreebatchput(&gp, 1);
  sched.lock.unlock();
}

// ---- Syscalls ----

void entersyscall() {
  M* m = getm();
  G* gp = m != nullptr ? m->curg : nullptr;
  if (gp == nullptr) return;  // a plain thread or g0: nothing to hand off
  checkpreempt();
  P* p = m->p;
  gp->status.store(Gstatus::syscall, std::memory_order_relaxed);
  owner_add(p->syscalltick);
  m->oldp = p;
  m->p = nullptr;
  p->m = nullptr;
  p->status.store(Pstatus::syscall, std::memory_order_release);
}

void exitsyscall() {
  M* m = getm();
  G* gp = m != nullptr ? m->curg : nullptr;
  if (gp == nullptr) return;
  P* oldp = m->oldp;
  m->oldp = nullptr;
  Pstatus s = Pstatus::syscall;
  // Fast path: sysmon did not take our P.
  if (oldp->status.compare_exchange_strong(s, Pstatus::running, std::memory_order_acq_rel)) {
    m->p = oldp;
    oldp->m = m;
    gp->status.store(Gstatus::running, std::memory_order_relaxed);
    return;
  }
  // Any idle P will do.
  sched.lock.lock();
  P* p = pidleget();
  sched.lock.unlock();
  if (p != nullptr) {
    acquirep(m, p);
    gp->status.store(Gstatus::running, std::memory_order_relaxed);
    return;
  }
  // None: queue the goroutine globally and park this M (on g0).
  gp->status.store(Gstatus::runnable, std::memory_order_relaxed);
  switch_away(gp, After::exitsyscall);
  gp->status.store(Gstatus::running, std::memory_order_relaxed);
}

// ---- Start-up ----

void schedinit_procs(int procs) {
  sched.procs = procs;
  for (int i = 0; i < procs; i++) {
    auto* p = new P;
    p->id = i;
    p->spinbudget = sched.spin_ns;
    p->nostealers = procs == 1;
    sched.allp.push_back(p);
  }
  // Every P starts idle; startm hands them out as goroutines appear.
  sched.lock.lock();
  for (int i = procs - 1; i >= 0; i--) pidleput(sched.allp[static_cast<std::size_t>(i)]);
  sched.lock.unlock();
}

}  // namespace gort::rt
