// Run queues, the parts out of line (runq.hpp has the owner's inline ones):
// the global queue's chunks, a full ring's spill to it (runqputslow), and
// stealing (runqgrab, runqsteal, runnext_steal). Rule 1 of runtime.hpp.
#include "sched/runq.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "base/dcheck.hpp"
#include "base/print.hpp"
#include "sched/lock.hpp"

namespace gort::rt {

namespace {

// Empty chunks kept for the global run queue: enough for a few overflowing
// Ps; beyond that they are freed (a million Gs queued at once used ~7,800).
constexpr int kChunkFreeMax = 16;

// How long a stealer watches a P with a goroutine in runnext before taking it:
// Go's 3 us. A P that schedules meanwhile will run it itself.
constexpr std::int64_t kRunnextGraceNs = 3'000;

// globrunqputbatch() appends g[0..n) to the global run queue. sched.lock held.
void globrunqputbatch(G* const* g, int n) REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held(), "globrunqputbatch: sched.lock not held");
  sched.runqsize.fetch_add(n, std::memory_order_relaxed);
  while (n > 0) {
    GChunk* c = sched.runqtail;
    if (c == nullptr || c->tail == static_cast<int>(std::size(c->g))) {
      c = sched.chunkfree;
      if (c != nullptr) {
        sched.chunkfree = c->next;
        sched.nchunkfree--;
      } else {
        c = new GChunk;
      }
      c->next = nullptr;
      c->head = c->tail = 0;
      if (sched.runqtail != nullptr) sched.runqtail->next = c;
      else sched.runqhead = c;
      sched.runqtail = c;
    }
    const int k = std::min(n, static_cast<int>(std::size(c->g)) - c->tail);
    std::memcpy(c->g + c->tail, g, k * sizeof(G*));
    c->tail += k;
    g += k;
    n -= k;
  }
}

// globrunqpop() takes the oldest G of the global run queue. sched.lock held; not empty.
G* globrunqpop() REQUIRES(sched.lock) {
  GORT_DCHECK(sched.lock.held() && sched.runqhead != nullptr, "globrunqpop: sched.lock not held or queue empty");
  GChunk* c = sched.runqhead;
  G* gp = c->g[c->head++];
  if (c->head == c->tail) {
    sched.runqhead = c->next;
    if (sched.runqhead == nullptr) sched.runqtail = nullptr;
    if (sched.nchunkfree < kChunkFreeMax) {
      c->next = sched.chunkfree;
      sched.chunkfree = c;
      sched.nchunkfree++;
    } else {
      delete c;
    }
  }
  return gp;
}

// runqputslow() moves half of a full local queue plus gp to the global queue.
// False if the queue is not full (a stealer made room) or a stealer raced us:
// the caller tries the ring again.
bool runqputslow(P* p, G* gp) {
  constexpr std::uint32_t n = kRunqSize / 2;
  std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
  const std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
  if (t - h != kRunqSize) return false;
  G* batch[n + 1];
  for (std::uint32_t i = 0; i < n; i++) batch[i] = p->runq[(h + i) % kRunqSize].load(std::memory_order_relaxed);
  if (!p->runqhead.compare_exchange_strong(h, h + n, std::memory_order_release)) return false;
  batch[n] = gp;
  sched.lock.lock();
  globrunqputbatch(batch, n + 1);
  sched.lock.unlock();
  return true;
}

// runqgrab() copies half of p's queue into batch[bh...] (a ring of kRunqSize) and
// returns how many; with stealnext, takes runnext when the ring is empty.
std::uint32_t runqgrab(P* p, std::atomic<G*>* batch, std::uint32_t bh, bool stealnext) {
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_acquire);
    std::uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (stealnext) {
        if (G* next = runnext_steal(p)) {
          batch[bh % kRunqSize].store(next, std::memory_order_relaxed);
          return 1;
        }
      }
      return 0;
    }
    if (n > kRunqSize / 2) continue;  // h and t read at different times: retry
    for (std::uint32_t i = 0; i < n; i++) {
      batch[(bh + i) % kRunqSize].store(p->runq[(h + i) % kRunqSize].load(std::memory_order_relaxed),
                                        std::memory_order_relaxed);
    }
    if (p->runqhead.compare_exchange_strong(h, h + n, std::memory_order_release)) return n;
  }
}

}  // namespace

int runqroom(P* p) {
  const std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
  const std::uint32_t t = p->runqtail.load(std::memory_order_relaxed);
  return kRunqSize - static_cast<int>(t - h);
}

bool runqempty(P* p) {
  // A G may move from runnext to the ring (runqput kicking it out) between two
  // reads; re-read the tail to be sure the snapshot is consistent, as Go does.
  for (;;) {
    std::uint32_t h = p->runqhead.load(std::memory_order_acquire);
    std::uint32_t t = p->runqtail.load(std::memory_order_acquire);
    G* next = p->runnext.load(std::memory_order_acquire);
    if (p->runqtail.load(std::memory_order_acquire) == t) return h == t && next == nullptr;
  }
}

// Out of line: the rare branches of ready (ready.hpp) and after_switch_slow.
[[gnu::noinline]] void globrunqput(G* gp) {
  sched.lock.lock();
  globrunqputbatch(&gp, 1);
  sched.lock.unlock();
}

[[gnu::noinline]] void runqput_outofline(P* p, G* gp, bool next) {
  if (next) {
    gp = runnext_exchange(p, gp);
    if (gp == nullptr) return;
  }
  while (!runqputtail(p, gp) && !runqputslow(p, gp)) {
  }
}

void runqput(P* p, G* gp, bool next) { runqput_inline(p, gp, next); }

// Go steals runnext after the wait whatever p did. Here a P that keeps
// scheduling (a ping-pong pair) keeps it, and is not sent membarrier's IPIs;
// nor is a P whose ring filled meanwhile (a spawner: its burst's first
// goroutine waits in runnext while the rest queue in the ring, and stealing
// that one goroutine cost an IPI once per ~3 us of the burst on 2 Ps).
// Without membarrier runnext is never stolen: it waits for its own P.
G* runnext_steal(P* p) {
  if (p->runnext.load(std::memory_order_relaxed) == nullptr) return nullptr;
  const std::uint32_t tick = p->schedtick.load(std::memory_order_relaxed);
  const std::int64_t until = nanotime() + kRunnextGraceNs;
  while (nanotime() < until) __builtin_ia32_pause();
  if (p->schedtick.load(std::memory_order_relaxed) != tick) {
    // p serves its runnext itself: its next lone runnext need not wake us (ready).
    if (!p->nextnowake.load(std::memory_order_relaxed)) p->nextnowake.store(true, std::memory_order_relaxed);
    return nullptr;
  }
  if (p->runqtail.load(std::memory_order_relaxed) != p->runqhead.load(std::memory_order_relaxed)) return nullptr;
  p->nextstealers.fetch_add(1, std::memory_order_seq_cst);
  // After the barrier the owner either sees us (and swaps with a locked
  // instruction) or its window is visible here and we wait for it to close.
  if (!membarrier_all()) {
    p->nextstealers.fetch_sub(1, std::memory_order_release);
    return nullptr;
  }
  while (p->nextowner.load(std::memory_order_acquire) != 0) __builtin_ia32_pause();
  G* next = p->runnext.load(std::memory_order_acquire);
  while (next != nullptr && !p->runnext.compare_exchange_weak(next, nullptr, std::memory_order_acq_rel)) {
  }
  p->nextstealers.fetch_sub(1, std::memory_order_release);
  return next;
}

G* runqsteal(P* pp, P* p2, bool stealnext) {
  std::uint32_t t = pp->runqtail.load(std::memory_order_relaxed);
  std::uint32_t n = runqgrab(p2, pp->runq, t, stealnext);
  if (n == 0) return nullptr;
  n--;
  G* gp = pp->runq[(t + n) % kRunqSize].load(std::memory_order_relaxed);
  if (n == 0) return gp;
  std::uint32_t h = pp->runqhead.load(std::memory_order_acquire);
  if (t - h + n >= kRunqSize) fatal("runqsteal: runq overflow");
  pp->runqtail.store(t + n, std::memory_order_release);
  sched.nsteal.fetch_add(1, std::memory_order_relaxed);
  return gp;
}

G* globrunqget(P* p, int max) {
  int size = sched.runqsize.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  int n = std::min(size, size / sched.procs + 1);
  if (max > 0 && n > max) n = max;
  if (n > kRunqSize / 2) n = kRunqSize / 2;
  sched.runqsize.fetch_sub(n, std::memory_order_relaxed);
  G* gp = globrunqpop();
  for (int i = 1; i < n; i++) runqput(p, globrunqpop(), false);
  return gp;
}

}  // namespace gort::rt
