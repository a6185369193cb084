// The scheduler's objects, named as in Go's runtime/runtime2.go: G (goroutine),
// M (OS thread), P (processor: the right to run goroutines), sched (globals).
//
// Locking and ownership (numbered so that comments can cite "rule 4"; proc.cpp
// and the rest of src/sched keep them):
//  1. A P's run queue ring is written at the tail only by the M holding the P;
//     any M may take from the head (runqget, runqsteal) with a CAS; with one
//     P (P::nostealers) there is no other M to steal and the owner takes with
//     plain accesses (and swaps runnext without the window below).
//     runnext is filled only by the owner. The owner swaps it with plain loads
//     and stores inside its window (P::nextowner set), unless a stealer has
//     announced itself (P::nextstealers); a stealer announces itself, runs
//     membarrier (lock.hpp), waits for the window to close, then CASes. So the
//     owner's every switch to a woken goroutine needs no locked instruction.
//  2. sched.lock guards the global run queue, the idle M and P lists and the
//     global free-G lists. It is never held across a context switch.
//  3. A G's status moves waiting -> runnable once per park: goready's caller owns
//     the wake-up (it dequeued the waiter under the lock the G parked with, or
//     won a CAS on a select's done word or a poll descriptor's wake word);
//     injectglist (I/O completions) and after_switch, which may race, move it
//     by CAS.
//  4. A G that parks or exits leaves a request in its M (M::after); whoever runs
//     next on that M, once the G is off its stack, carries it out: releases the
//     lock the G parked with, requeues it, or recycles it. Nothing may touch a G
//     from another M until then.
//  5. P::timerslock guards a P's timer heap; timer functions run with it released.
//  6. A channel's lock may be biased to a P (lock.hpp): that P's goroutines take
//     it without a CAS, trusting that only one of them runs at a time. So a P
//     never changes M while one of its goroutines holds such a lock: nothing
//     under a channel lock enters gort::syscall (element constructors included).
//  7. Lock order: a lock is taken only while holding locks listed before it.
//     A parking goroutine's lock counts as held until after_switch releases
//     it (rule 4), so whatever switch_away runs (netpoll, the global queue)
//     comes after it.
//       a. dump.cpp's dumplock (one SIGQUIT dump at a time; allglock under it).
//       b. A Timer's mu (timerchan.cpp: stop and reset).
//       c. Channel locks, several only in address order (select's lockorder);
//          sema.cpp's bucket locks (the runtime nests neither in the other).
//       d. A select's selectwait::parked: taken with its channel locks held,
//          then they are released and it parks with it; a waker takes it
//          only after releasing its channel lock (readysudog).
//       e. P::timerslock: park_waiter_until arms its timer under the park's
//          lock (unlock_and_arm). Timer functions run with it released.
//       f. sched.lock: wakep's startm may run under any of the above.
//       g. Leaves, never nested with each other: allglock, the multishot
//          AcceptQ locks (io/uring.cpp; netpoll takes them, so under a
//          parking goroutine's lock), epoll's PollDesc free-list lock, the
//          stack pool's mutex (stack/stackpool.cpp).
//       h. The heap (jemalloc's locks) last: a GChunk under sched.lock, a
//          timer heap's vector, an element's copy under a channel lock.
//     -Wthread-safety (base/tsa.h) checks who holds what, not this order.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "arch/context.hpp"
#include "base/counter.hpp"
#include "gort/go.hpp"
#include "io/pollhint.hpp"
#include "sched/lock.hpp"
#include "stack/stack.hpp"

namespace gort::rt {

struct G;
struct M;
struct P;
struct RuntimeTimer;
struct Sudog;

// Why a goroutine waits, as Go's waitReason; SIGQUIT dumps print its name
// (waitreason_name), so the names are Go's where Go has the same wait.
enum class WaitReason : std::uint8_t {
  none,
  chan_receive,
  chan_send,
  select,
  select_no_cases,
  sleep,
  io_wait,
  io_wait_accept,
  sync_mutex_lock,
  sync_rwmutex_lock,
  sync_rwmutex_rlock,
  sync_waitgroup_wait,
  sync_cond_wait,
  semaphore_acquire,
};

// waitreason_name() is r as dumps print it ("chan receive", "IO wait", ...).
const char* waitreason_name(WaitReason r);

enum class Gstatus : std::uint32_t { idle, runnable, running, syscall, waiting, dead };
enum class Pstatus : std::uint32_t { idle, running, syscall };

// What a G asked for when it switched away (rule 4).
enum class After : std::uint8_t {
  none,
  ready,        // yield: put the G back on the run queue
  park,         // block: mark it waiting, then run unlockf
  parkunlock,   // block: mark it waiting, then release the Lock in unlockarg
  exit,         // it finished: recycle it with its stack (gfput)
  exitfree,     // it finished and its stack goes back (stack_keep_on_exit): recycle it on g0
  exitsyscall,  // it left a syscall and found no P: queue it globally, stop the M
};

// A G's entry function (gort::go's callable), type-erased; callables up to
// kGoFnInline bytes live inside the G, so a spawn allocates nothing.
constexpr std::size_t kGoFnInline = 64;
using GoFn = gort::detail::GoFn;

constexpr int kGlsSlots = 8;  // goroutine-local storage slots

struct G : StackOwner {
  Context ctx;
  std::atomic<Gstatus> status{Gstatus::idle};
  M* m = nullptr;           // M running it, while running
  const GoFn* fn = nullptr;
  void* fnp = nullptr;      // the callable: fnbuf or heap
  alignas(16) unsigned char fnbuf[kGoFnInline];
  // Waiting.
  Sudog* waiting = nullptr;     // waiter records of a blocked chan op / select
  // Why it waits, for dumps. Every park sets it; it is read only while the
  // status is waiting, so a wake-up leaves it stale instead of clearing it.
  WaitReason waitreason = WaitReason::none;
  std::int64_t waitsince = 0;   // nanotime() when it parked
  std::atomic<std::uint32_t> selectdone{0};
  RuntimeTimer* sleeptimer = nullptr;  // reused by sleep and timeouts
  // Preemption: sysmon sets it for a hog; checked at every runtime call.
  std::atomic<bool> preempt{false};
  // Panic and goexit.
  void* defers = nullptr;  // innermost GORT_DEFER record on this stack
  bool goexiting = false;
  // The C++ runtime's exception state (__cxa_eh_globals) while switched out:
  // see execute() in proc.cpp.
  void* ehstate[2] = {};
  // Goroutine-local storage.
  void* gls[kGlsSlots] = {};
  std::string name;
  G* alllink = nullptr;  // allgs
  G* schedlink = nullptr;  // a GList's next
};

// GList is Go's gList: goroutines linked through G::schedlink, in the order
// pushed. netpoll hands the scheduler the goroutines its completions concern
// in one (injectglist then makes them runnable). Owned by one M at a time;
// not copyable (tailp points into it or into its last G).
struct GList {
  G* head = nullptr;
  G** tailp = &head;  // where the next push links: head, or the last G's schedlink

  GList() = default;
  GList(const GList&) = delete;
  GList& operator=(const GList&) = delete;
  // push() appends gp, which is on no other list. Two stores: it runs once
  // per completion on the I/O path.
  void push(G* gp) {
    *tailp = gp;
    tailp = &gp->schedlink;
  }
  // end() terminates the list after its last push, for a walk from head.
  void end() { *tailp = nullptr; }
};

constexpr int kRunqSize = 256;

// Go's numbers: a P keeps at most 64 free Gs and moves half to the global list
// when it has more.
constexpr int kGfreeMax = 64;
constexpr int kGfreeKeep = 32;

// A piece of the global run queue: Gs [head, tail) of g, in order. Go threads
// its global queue through the Gs; ours holds pointers so that moving Gs
// between it and a P's ring never reads a G under sched.lock: those Gs were
// usually queued by another CPU, and walking them cost ~7% of a spawn on 2 Ps.
// Sized for runqputslow's batch: half a ring plus the G being queued.
struct GChunk {
  GChunk* next = nullptr;
  int head = 0, tail = 0;
  G* g[kRunqSize / 2 + 1];
};

// A batch of free Gs on the global list (sched.gfree). Pointers in an array,
// not a list threaded through the Gs: the Gs usually exited on another CPU, and
// a P taking them can fetch several lines at once only if it knows their
// addresses without reading each G first (a list walk cost ~7 ns a spawn on 2 Ps).
struct GBatch {
  GBatch* next = nullptr;
  int n = 0;
  G* g[kGfreeMax - kGfreeKeep];
};

struct P {
  int id = 0;
  std::atomic<Pstatus> status{Pstatus::idle};
  M* m = nullptr;
  P* link = nullptr;  // idle list
  std::atomic<std::uint32_t> schedtick{0};    // every execute()
  std::atomic<std::uint32_t> syscalltick{0};  // every syscall entry
  std::atomic<std::uint32_t> safepoints{0};   // every checkpreempt (runtime call)
  // Counters for gort::stats(), written only by the P's owner: a global atomic
  // add per park cost ~10% of a channel round trip.
  std::atomic<std::uint64_t> nspawn{0}, npark{0};
  // Goroutines started here minus goroutines that exited here (either may be
  // negative: goroutines migrate); their sum over Ps and sched.nlive is the
  // live count. Per P because one shared counter bounced a cache line between
  // the spawning P and the P running the goroutines: ~10% of a spawn on 2 Ps.
  std::atomic<std::int64_t> nlive{0};
  // Goroutine ids handed out here: [goidcache, goidcacheend), taken from
  // sched.goidgen in batches of kGoidCacheBatch, as Go's pp.goidcache.
  std::uint64_t goidcache = 0, goidcacheend = 0;
  // The goroutine running here and its id, for sysmon's hog check (the id is
  // copied so sysmon never reads a G that is being recycled).
  std::atomic<G*> runningg{nullptr};
  std::atomic<std::uint64_t> runninggoid{0};
  // Rule 1.
  std::atomic<std::uint32_t> runqhead{0};
  std::atomic<std::uint32_t> runqtail{0};
  // Rule 1: the only P, so nothing steals from it and the owner takes from
  // the head with plain accesses. sched.procs == 1, copied onto the line every
  // take reads anyway; set before the P first runs, never changed.
  bool nostealers = false;
  std::atomic<G*> runq[kRunqSize] = {};
  std::atomic<G*> runnext{nullptr};
  std::atomic<std::uint32_t> nextowner{0};     // rule 1: the owner is swapping runnext
  std::atomic<std::uint32_t> nextstealers{0};  // rule 1: Ms about to steal runnext
  // A stealer saw this P run its runnext itself (runnext_steal): a goroutine
  // readied into an empty runnext here wakes no idle P (ready) until sysmon
  // clears the flag at its next look. Written by stealers and sysmon, rarely.
  std::atomic<bool> nextnowake{false};
  // findrunnable's spin before sleeping, ns: adapts between kMinSpinNs and
  // sched.spin_ns (proc.cpp). Owner only.
  std::int64_t spinbudget = 0;
  // Exited Gs with default stacks (gfput / gfget): a stack, the most recently
  // exited (warmest in this CPU's cache) on top.
  G* gfree[kGfreeMax] = {};
  int gfreecnt = 0;
  // Timers (rule 5): a 4-ary min-heap on RuntimeTimer::when.
  Lock timerslock;
  std::vector<RuntimeTimer*> timers GUARDED_BY(timerslock);
  std::atomic<std::int64_t> timer0when{0};  // earliest when, 0 if none
  // sysmon's view.
  std::uint32_t sm_schedtick = 0, sm_syscalltick = 0;
  std::int64_t sm_schedwhen = 0, sm_syscallwhen = 0;
  std::uint32_t sm_safepoints = 0;     // safepoints when schedtick last moved
  std::uint64_t sm_reported_goid = 0;  // the last hog reported on this P
  // The CPU-time clock of the M holding this P, and sysmon's reading of it
  // once the goroutine looked like a hog (0: not measuring).
  std::atomic<clockid_t> mcpuclock{0};
  std::int64_t sm_cpu0 = 0, sm_cpuwhen = 0;
  // I/O (src/io/poll.hpp, rules 1-3 there): the backend's per-P state, null
  // before netpollinit, and what the switch reads of it inline (src/io writes).
  void* poller = nullptr;
  PollHint io;
  bool innetwait = false;  // on sched.pnetwait, its M asleep in netpollwait (sched.lock)
  M* netm = nullptr;       // that M
};

struct M {
  Context g0;         // the thread's own stack: schedule() runs here
  G* curg = nullptr;
  P* p = nullptr;
  P* nextp = nullptr;  // handed over by startm
  P* oldp = nullptr;   // the P left in a syscall
  bool spinning = false;
  Note park;
  M* schedlink = nullptr;
  int id = 0;
  std::uint64_t fastrand = 0;
  // Rule 4.
  After after = After::none;
  G* after_g = nullptr;
  bool (*unlockf)(G*, void*) = nullptr;
  void* unlockarg = nullptr;
  void* ehglobals = nullptr;  // this thread's __cxa_eh_globals
  clockid_t cpuclock = 0;     // this thread's CPU-time clock (sysmon's hog check)
};

// Sched's fields are grouped by who writes them, each group on its own cache
// lines: a spawn's or a park's write must not evict the line every switch reads.
struct Sched {
  // Set at start, then only read (every spin walks allp).
  alignas(64) std::vector<P*> allp;
  int procs = 0;
  std::int64_t spin_ns = 0;
  std::int64_t hog_ns = 0;
  // Under the lock, and the counts that every switch (runqsize) or spin reads.
  // The atomics are written under it too, but read without it (a switch's
  // look at runqsize, wakep's at npidle), so they are not GUARDED_BY.
  alignas(64) Lock lock;  // rule 2
  GChunk* runqhead GUARDED_BY(lock) = nullptr;  // the global run queue: chunks, oldest first
  GChunk* runqtail GUARDED_BY(lock) = nullptr;
  std::atomic<int> runqsize{0};  // Gs in it
  GChunk* chunkfree GUARDED_BY(lock) = nullptr;   // empty chunks kept for reuse
  int nchunkfree GUARDED_BY(lock) = 0;
  M* midle GUARDED_BY(lock) = nullptr;
  int nmidle GUARDED_BY(lock) = 0;
  int mcount GUARDED_BY(lock) = 0;
  P* pidle GUARDED_BY(lock) = nullptr;
  // Idle Ps whose M sleeps in their poller (src/io/poll.hpp rule 2); counted in npidle.
  P* pnetwait GUARDED_BY(lock) = nullptr;
  std::atomic<int> npidle{0};
  std::atomic<int> nmspinning{0};
  GBatch* gfree GUARDED_BY(lock) = nullptr;      // batches of exited Gs from Ps with too many (gfreebatchput)
  GBatch* gbatchfree GUARDED_BY(lock) = nullptr;  // empty batches, for reuse (never freed)
  std::atomic<int> ngfree{0};    // Gs in sched.gfree
  // Written once per batch of goroutine ids, per new G, per timed sleep.
  alignas(64) std::atomic<std::uint64_t> goidgen{0};
  // allgs: every G ever made (reused, never freed, as in Go).
  Lock allglock;
  G* allgs GUARDED_BY(allglock) = nullptr;
  std::atomic<int> nallgs{0};
  // Earliest deadline an idle M is sleeping until (0: none sleeps timed).
  std::atomic<std::int64_t> sleep_until{0};
  // gort::main's goroutine, to detect "main called goexit and nothing is left".
  std::atomic<std::uint64_t> main_goid{0};
  std::atomic<bool> main_goexited{false};
  // Live goroutines started from threads without a P (the rest: P::nlive).
  std::atomic<std::int64_t> nlive{0};
  // nanotime() as of sysmon's last look (it looks at least every 10 ms): what a
  // parking goroutine records as its waitsince, which dumps show in minutes.
  // Reading it is one load; even the coarse clock costs ~20 instructions.
  alignas(64) std::atomic<std::int64_t> coarsenow{0};
  // Counters for gort::stats().
  alignas(64) std::atomic<std::uint64_t> nspawn{0};  // spawns from threads without a P
  std::atomic<std::uint64_t> nsteal{0};
};
// Never destroyed: Ms and sysmon keep running while the process exits.
extern Sched& sched;

}  // namespace gort::rt

// The calling thread's M. local-exec: a fixed offset from %fs known at link
// time, read in one instruction (initial-exec first loads the offset from the
// GOT, a load on the path of every switch). libgort is a static library linked
// into executables; linking it into a shared object fails at link time.
extern "C" __attribute__((tls_model("local-exec"))) thread_local gort::rt::M* gort_tls_m;

namespace gort::rt {

// getm() is the calling thread's M (nullptr off the scheduler's threads). The
// read is an asm volatile load through %fs, never cached by the compiler: a
// goroutine that migrated across a switch must see its new thread's M.
inline M* getm() {
  M* m;
  asm volatile("movq %%fs:gort_tls_m@tpoff, %0" : "=r"(m));
  return m;
}
// getgp() is the goroutine running on this thread (nullptr on g0 or a plain thread).
G* getgp();
// getgp_parkable() is getgp(), but nullptr inside gort::syscall too: a goroutine
// without a P blocks its thread, as a plain thread does, instead of parking.
// The overload taking m is for callers that need this thread's M as well.
inline G* getgp_parkable(M* m) {
  if (m == nullptr || m->curg == nullptr || m->p == nullptr) return nullptr;
  return m->curg;
}
inline G* getgp_parkable() { return getgp_parkable(getm()); }

// gopark() blocks the calling goroutine. After it is off its stack, unlockf(gp,
// arg) runs on the M; if that returns false the goroutine is resumed at once.
// Precondition: running on a goroutine.
void gopark(bool (*unlockf)(G*, void*), void* arg, WaitReason reason);
// goparkunlock() is gopark() for gp, running on m, whose unlockf releases l:
// channels, semaphores and every other waiter that parks under a lock. The
// caller passes what it already read (park_waiter: the waiter's record).
// Preconditions: m is getm(), gp is getgp_parkable(m) and not null, l held.
void goparkunlock(M* m, G* gp, Lock* l, WaitReason reason) RELEASE(l);
// goready() makes a waiting goroutine runnable on the caller's P (or globally
// from a plain thread) and wakes an idle P if there is one.
void goready(G* gp);
// gosched() yields the processor, as runtime.Gosched.
void gosched();
// countsafepoint() counts a runtime call on p for sysmon: it reports a
// goroutine only if it reaches none for hog_ms.
inline void countsafepoint(P* p) {
  owner_add(p->safepoints);
}
// safepoint() counts a runtime call of the calling goroutine. Returns its M,
// or nullptr off goroutines (or inside gort::syscall).
inline M* safepoint() {
  M* m = getm();
  if (m == nullptr || m->curg == nullptr || m->p == nullptr) return nullptr;
  countsafepoint(m->p);
  return m;
}
// checkpreempt() is a safe point that yields if sysmon asked this goroutine
// to. Inline: every channel, lock and I/O call passes here. Returns the M the
// goroutine runs on afterwards, as safepoint().
inline M* checkpreempt() {
  M* m = safepoint();
  if (m != nullptr && m->curg->preempt.load(std::memory_order_relaxed)) [[unlikely]] {
    gosched();
    m = getm();  // it may resume on another thread
  }
  return m;
}
// wakep() starts an M to run an idle P if none is spinning. Inline: every
// wake-up calls it, and with no idle P it is one load.
void wakep_slow();
inline void wakep() {
  if (sched.npidle.load(std::memory_order_relaxed) != 0) [[unlikely]] wakep_slow();
}
// nlive() is the number of live goroutines (started, not exited). Exact only
// when no goroutine starts or exits meanwhile.
std::int64_t nlive();
// fastrandn() is a per-M random number in [0, n).
std::uint32_t fastrandn(std::uint32_t n);

// gls_destroy() destroys and clears the goroutine-local values in slots.
void gls_destroy(void** slots);

// schedinit() starts the scheduler: Ps, sysmon. Called once by gort::main.
void schedinit();

}  // namespace gort::rt
