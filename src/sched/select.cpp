// select: Go's runtime/select.go.
//
// selectgo polls the channel cases in a random order (pollorder: among ready
// cases each is equally likely, so none starves) with every channel locked, in
// the order of their addresses (lockorder: two selects sharing channels cannot
// deadlock). If none is ready it queues one Sudog per case, all sharing one
// selectwait (chan_impl.hpp), and parks; the first waker to claim the shared
// done word fires the select, later wakers skip its stale records, and the
// select dequeues the rest when it wakes. A timeout races for the same word
// (park_waiter_until).
#include <algorithm>
#include <array>
#include <functional>
#include <memory>

#include "sched/chan_impl.hpp"
#include "sched/runtime.hpp"
#include "sched/stackmove.hpp"

namespace gort::rt {

namespace {

// A select that blocks keeps the records of up to this many channel cases in
// its frame; more come from the heap.
constexpr std::size_t kSelectInline = 8;

// sellock() and selunlock() take and release a set of channel locks, and
// selectgo works under them: -Wthread-safety cannot follow a lock set that a
// loop takes, so these are not checked.
void sellock(const gort::detail::scase* cas, const std::uint16_t* lockorder, std::size_t n) NO_THREAD_SAFETY_ANALYSIS {
  hchan* prev = nullptr;
  for (std::size_t k = 0; k < n; k++) {
    hchan* c = cas[lockorder[k]].c;
    if (c != prev) chanlock(c);  // a channel in several cases is locked once
    prev = c;
  }
}

void selunlock(const gort::detail::scase* cas, const std::uint16_t* lockorder, std::size_t n)
    NO_THREAD_SAFETY_ANALYSIS {
  hchan* prev = nullptr;
  for (std::size_t k = 0; k < n; k++) {
    hchan* c = cas[lockorder[k]].c;
    if (c != prev) c->lock.unlock();
    prev = c;
  }
}

WaitQ& queueof(const gort::detail::scase& sc) REQUIRES(sc.c->lock) { return sc.send ? sc.c->sendq : sc.c->recvq; }

}  // namespace

}  // namespace gort::rt

namespace gort::detail {

using namespace gort::rt;

// Not checked by -Wthread-safety: see sellock.
int selectgo(scase* cas, std::uint16_t* order0, std::size_t ncases, bool block, std::int64_t timeout_ns)
    NO_THREAD_SAFETY_ANALYSIS {
  checkpreempt();
  std::uint16_t* pollorder = order0;
  std::uint16_t* lockorder = order0 + ncases;

  // A random permutation of the channel cases (inside-out Fisher-Yates).
  std::size_t norder = 0;
  for (std::size_t i = 0; i < ncases; i++) {
    if (cas[i].c == nullptr) continue;
    const std::uint32_t j = fastrandn(static_cast<std::uint32_t>(norder + 1));
    pollorder[norder] = pollorder[j];
    pollorder[j] = static_cast<std::uint16_t>(i);
    norder++;
  }
  std::copy(pollorder, pollorder + norder, lockorder);
  std::sort(lockorder, lockorder + norder,
            [cas](std::uint16_t a, std::uint16_t b) { return std::less<hchan*>()(cas[a].c, cas[b].c); });

  sellock(cas, lockorder, norder);

  // Pass 1: a case that can proceed at once.
  for (std::size_t k = 0; k < norder; k++) {
    const std::uint16_t i = pollorder[k];
    scase& sc = cas[i];
    Sudog* sg = nullptr;
    const chanstate st = sc.send ? trysend(sc.c, sc.elem, &sg) : tryrecv(sc.c, sc.elem, &sg);
    if (st == chanstate::blocked) continue;
    selunlock(cas, lockorder, norder);
    if (st == chanstate::closed && sc.send) panic_send_closed();
    if (sg != nullptr) readysudog(sg);
    return i;
  }
  if (!block || timeout_ns == 0) {
    selunlock(cas, lockorder, norder);
    return -1;
  }

  // Pass 2: queue a record on every channel, in lock order, and park.
  const std::int64_t deadline = timeout_ns > 0 ? nanotime() + timeout_ns : 0;
  selectwait sw;
  Note note;  // a plain thread sleeps on it
  Sudog self{};
  waiter_init(self, &note);
  self.selectdone = &sw.done;
  std::array<Sudog, kSelectInline> inline_sgs;
  std::unique_ptr<Sudog[]> heap_sgs;
  Sudog* sgs = norder <= kSelectInline ? inline_sgs.data() : (heap_sgs = std::make_unique<Sudog[]>(norder)).get();
  NoMove nomove(self.g, "select");
  for (std::size_t k = 0; k < norder; k++) {
    const std::uint16_t i = lockorder[k];
    Sudog& sg = sgs[k] = self;  // the waiter and its selectdone word
    sg.elem = cas[i].elem;
    sg.c = cas[i].c;
    sg.caseindex = i;
    sg.waitlink = k + 1 < norder ? &sgs[k + 1] : nullptr;
    queueof(cas[i]).enqueue(&sg);
  }
  if (self.g != nullptr) self.g->waiting = norder > 0 ? sgs : nullptr;
  sw.parked.lock();
  selunlock(cas, lockorder, norder);
  const bool woken = park_waiter_until(self, sw.parked, norder > 0 ? WaitReason::select : WaitReason::select_no_cases, deadline);
  if (self.g != nullptr) self.g->waiting = nullptr;

  // Pass 3: take the records that did not fire off their queues.
  sellock(cas, lockorder, norder);
  for (std::size_t k = 0; k < norder; k++) {
    if (&sgs[k] != sw.fired) queueof(cas[lockorder[k]]).remove(&sgs[k]);
  }
  selunlock(cas, lockorder, norder);
  if (!woken) return -1;
  const Sudog* f = sw.fired;
  if (cas[f->caseindex].send && !f->success) panic_send_closed();  // closed while waiting
  return f->caseindex;
}

}  // namespace gort::detail
