#include "sched/time.hpp"

#include <thread>

#include "base/dcheck.hpp"
#include "base/print.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

namespace {

// The 4-ary heap keeps the tree shallow: siftdown touches fewer cache lines
// than a binary heap for the same number of timers (Go's choice too).
constexpr std::size_t kArity = 4;

// The heap's functions need p->timerslock (rule 5).

void set_at(P* p, std::size_t i, RuntimeTimer* t) REQUIRES(p->timerslock) {
  p->timers[i] = t;
  t->index = static_cast<int>(i);
}

void siftup(P* p, std::size_t i) REQUIRES(p->timerslock) {
  RuntimeTimer* t = p->timers[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / kArity;
    if (p->timers[parent]->when <= t->when) break;
    set_at(p, i, p->timers[parent]);
    i = parent;
  }
  set_at(p, i, t);
}

void siftdown(P* p, std::size_t i) REQUIRES(p->timerslock) {
  const std::size_t n = p->timers.size();
  RuntimeTimer* t = p->timers[i];
  for (;;) {
    std::size_t c = i * kArity + 1;
    if (c >= n) break;
    std::size_t best = c;
    for (std::size_t k = c + 1; k < c + kArity && k < n; k++) {
      if (p->timers[k]->when < p->timers[best]->when) best = k;
    }
    if (p->timers[best]->when >= t->when) break;
    set_at(p, i, p->timers[best]);
    i = best;
  }
  set_at(p, i, t);
}

void update_timer0(P* p) REQUIRES(p->timerslock) {
  p->timer0when.store(p->timers.empty() ? 0 : p->timers[0]->when, std::memory_order_relaxed);
}

void heap_add(P* p, RuntimeTimer* t) REQUIRES(p->timerslock) {
  GORT_DCHECK(p->timerslock.held(), "heap_add: timerslock not held");
  GORT_DCHECK(t->index < 0, "heap_add: timer already in a heap");
  t->pp.store(p, std::memory_order_relaxed);
  p->timers.push_back(t);
  siftup(p, p->timers.size() - 1);
  update_timer0(p);
}

void heap_remove(P* p, RuntimeTimer* t) REQUIRES(p->timerslock) {
  GORT_DCHECK(p->timerslock.held(), "heap_remove: timerslock not held");
  GORT_DCHECK(t->pp.load(std::memory_order_relaxed) == p && t->index >= 0 &&
                  static_cast<std::size_t>(t->index) < p->timers.size() && p->timers[t->index] == t,
              "heap_remove: timer not in this P's heap");
  std::size_t i = static_cast<std::size_t>(t->index);
  RuntimeTimer* last = p->timers.back();
  p->timers.pop_back();
  if (last != t) {
    set_at(p, i, last);
    siftup(p, i);
    siftdown(p, static_cast<std::size_t>(last->index));
  }
  t->index = -1;
  t->pp.store(nullptr, std::memory_order_relaxed);
  update_timer0(p);
}

// wake_for_timer() makes sure some M wakes by when: idle Ms sleep until the
// earliest timer they saw, which a new timer on an idle P may precede.
void wake_for_timer(std::int64_t when) {
  std::int64_t su = sched.sleep_until.load(std::memory_order_relaxed);
  if (su != 0 && su <= when) return;
  if (sched.npidle.load(std::memory_order_relaxed) == sched.procs) {
    // Every P idle: nobody would look at timers; start an M to sleep on it.
    wakep();
  }
}

}  // namespace

void addtimer(RuntimeTimer* t) {
  M* m = getm();
  P* p = m != nullptr && m->p != nullptr ? m->p : sched.allp[fastrandn(static_cast<std::uint32_t>(sched.procs))];
  p->timerslock.lock();
  heap_add(p, t);
  const bool first = p->timers[0] == t;
  // Read under the lock: once it is released another M may run t, whose owner
  // may then reuse it (a sleeping goroutine woken and sleeping again).
  const std::int64_t when = t->when;
  p->timerslock.unlock();
  if (first) {
    // The new deadline is published before we read what idle Ms sleep until,
    // as they publish that before reading the deadlines (the unlock is no fence).
    storeload_fence();
    wake_for_timer(when);
  }
}

bool deltimer(RuntimeTimer* t) {
  for (;;) {
    P* p = t->pp.load(std::memory_order_relaxed);
    if (p == nullptr) return false;
    p->timerslock.lock();
    if (t->pp.load(std::memory_order_relaxed) == p) {
      heap_remove(p, t);
      p->timerslock.unlock();
      return true;
    }
    p->timerslock.unlock();  // moved (a periodic timer refiring): look again
  }
}

void checktimers(P* p, std::int64_t now) {
  std::int64_t w = p->timer0when.load(std::memory_order_relaxed);
  if (w == 0 || w > now) return;
  const M* m = getm();
  const bool owner = m != nullptr && m->p == p;
  p->timerslock.lock();
  while (!p->timers.empty() && p->timers[0]->when <= now) {
    RuntimeTimer* t = p->timers[0];
    if (t->owneronly && !owner) break;  // its P's M will run it (and the rest)
    heap_remove(p, t);
    if (t->period > 0) {
      t->when += t->period * ((now - t->when) / t->period + 1);
      heap_add(p, t);
    }
    void (*f)(void*) = t->f;
    void* arg = t->arg;
    p->timerslock.unlock();  // rule 5: f may take other locks (a channel's)
    f(arg);
    p->timerslock.lock();
  }
  p->timerslock.unlock();
}

std::int64_t timers_earliest() {
  std::int64_t best = 0;
  for (P* p : sched.allp) {
    std::int64_t w = p->timer0when.load(std::memory_order_relaxed);
    if (w != 0 && (best == 0 || w < best)) best = w;
  }
  return best;
}

}  // namespace gort::rt
