#include "sched/sudog.hpp"

#include <algorithm>

#include "base/print.hpp"
#include "sched/time.hpp"

namespace gort::rt {

namespace {

struct TimedPark {
  Lock* l;
  RuntimeTimer* t;
};

// Runs once the goroutine is off its stack: only then may the timer fire. Not
// checked by -Wthread-safety: the lock is the parked goroutine's (rule 4).
bool unlock_and_arm(G*, void* p) NO_THREAD_SAFETY_ANALYSIS {
  auto* tp = static_cast<TimedPark*>(p);
  addtimer(tp->t);
  tp->l->unlock();
  return true;
}

}  // namespace

// Not checked by -Wthread-safety: a goroutine's l is released after the
// switch (unlock_and_arm, rule 4).
bool park_waiter_until(Sudog& s, Lock& l, WaitReason reason, std::int64_t deadline) NO_THREAD_SAFETY_ANALYSIS {
  if (deadline == 0) {
    park_waiter(s, l, reason);
    return true;
  }
  if (s.selectdone == nullptr) fatal("park_waiter_until: the record needs a selectdone word");
  std::atomic<std::uint32_t>* done = s.selectdone;
  if (s.g == nullptr) {
    l.unlock();
    // A deadline already past is a zero wait (a negative one would mean none).
    if (s.note->sleep_for(std::max<std::int64_t>(deadline - nanotime(), 0))) return true;
    std::uint32_t z = 0;
    if (done->compare_exchange_strong(z, 1, std::memory_order_acq_rel)) return false;
    s.note->sleep();  // a waker won the race: its wakeup is on the way
    return true;
  }
  // A goroutine: a timer competes with the wakers for *done; the winner readies it.
  struct Race {
    std::atomic<std::uint32_t>* done;
    G* g;
    bool timedout = false;
    std::atomic<bool> fdone{false};  // the timer function has finished with us
  } race{done, s.g};
  RuntimeTimer t;
  t.when = deadline;
  t.arg = &race;
  t.f = [](void* arg) {
    auto* r = static_cast<Race*>(arg);
    std::uint32_t z = 0;
    if (r->done->compare_exchange_strong(z, 1, std::memory_order_acq_rel)) {
      r->timedout = true;
      goready(r->g);
    }
    r->fdone.store(true, std::memory_order_release);
  };
  TimedPark tp{&l, &t};
  gopark(unlock_and_arm, &tp, reason);
  // The timer and race live in this frame: make sure the timer is gone, or has
  // finished running, before returning.
  if (!deltimer(&t)) {
    while (!race.fdone.load(std::memory_order_acquire)) __builtin_ia32_pause();
  }
  return !race.timedout;
}

}  // namespace gort::rt
