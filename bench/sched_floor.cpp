// The floors under gort-bench sched's targets: what the pieces every M:N
// scheduler with Go's work stealing must use cost on this machine, measured
// alone, so the table shows how far a figure is from what is possible here.
//
//   cpu_locked_op_ns          one `lock cmpxchg` on a line this core owns, back to back
//   sched_floor_yield_ns      two contexts alternating through Go's run queue (a
//                             256-slot ring: put at the tail, take at the head with
//                             the CAS that stealing Ms make necessary) and our
//                             context switch, and nothing else: no preemption tick,
//                             no exception state, no I/O check, no sysmon bookkeeping
//   sched_floor_yield_1p_ns   the same with plain accesses at the head: with one P
//                             nothing steals, and gort's owner takes without the CAS
//
// sched_yield_ns (1 P) can cost no less than sched_floor_yield_1p_ns, a yield
// with stealing Ps no less than sched_floor_yield_ns. A channel round trip
// between two goroutines of one P takes at least two switches, and neither
// needs a locked instruction (the woken goroutine waits in runnext, which the
// owner takes with plain accesses, and the channel's lock is biased to that P
// after 64 takes, lock.hpp): 2 x sched_floor_yield_1p_ns. Everything above
// that is the channel's and the scheduler's own bookkeeping.
#include "sched_floor.hpp"

#include <atomic>
#include <cstdint>
#include <vector>

#include "arch/context.hpp"
#include "measure.hpp"

namespace gort::bench {
namespace {

double locked_op_ns(int n) {
  std::atomic<std::uint64_t> word{0};
  const double ns = elapsed_ns([&] {
    for (int i = 0; i < n; i++) {
      std::uint64_t v = word.load(std::memory_order_relaxed);
      word.compare_exchange_strong(v, v + 1);
    }
  });
  keep(word.load());
  return ns / n;
}

// Ring is Go's per-P run queue, reduced to what one owner does with it; with
// `stealers` false, its take is gort's for a lone P (proc.cpp, runqget).
struct Ring {
  bool stealers = true;
  std::atomic<std::uint32_t> head{0}, tail{0};
  std::atomic<rt::Context*> slot[256] = {};

  [[gnu::noinline]] void put(rt::Context* c) {
    const std::uint32_t t = tail.load(std::memory_order_relaxed);
    slot[t % 256].store(c, std::memory_order_relaxed);
    tail.store(t + 1, std::memory_order_release);
  }
  [[gnu::noinline]] rt::Context* get() {
    for (;;) {
      std::uint32_t h = head.load(std::memory_order_acquire);
      if (h == tail.load(std::memory_order_acquire)) return nullptr;
      rt::Context* c = slot[h % 256].load(std::memory_order_relaxed);
      if (!stealers) {
        head.store(h + 1, std::memory_order_relaxed);
        return c;
      }
      if (head.compare_exchange_weak(h, h + 1, std::memory_order_release)) return c;
    }
  }
};

// Two contexts yield to each other n times each through the ring; the second
// is a fresh context on a stack of its own, the first is this thread's.
struct YieldPair {
  Ring runq;
  rt::Context main, other;
  rt::Context* cur = &main;
  rt::Context* prev = nullptr;
  int n = 0;

  // yield() switches to the head of the queue; the yielder goes back on the
  // queue once it is off its stack, as the scheduler does it.
  void yield() {
    rt::Context* me = cur;
    rt::Context* next = runq.get();
    prev = me;
    cur = next;
    rt::switch_context(*me, *next);
    runq.put(prev);
  }

  static void entry(void* arg) {
    auto* y = static_cast<YieldPair*>(arg);
    y->runq.put(y->prev);
    for (int i = 1; i < y->n; i++) y->yield();
    // Back to main for good: it is the only one left on the queue.
    rt::Context* me = y->cur;
    y->prev = me;
    y->cur = y->runq.get();
    rt::switch_context_final(*me, *y->cur);
  }
};

double floor_yield_ns(int n, bool stealers) {
  std::vector<unsigned char> stack(64 * 1024);
  YieldPair y;
  y.n = n;
  y.runq.stealers = stealers;
  rt::init_thread_context(y.main);
  const auto lo = reinterpret_cast<std::uintptr_t>(stack.data());
  rt::make_context(y.other, lo, lo + stack.size(), YieldPair::entry, &y);
  y.runq.put(&y.other);
  const double ns = elapsed_ns([&] {
    for (int i = 0; i < n; i++) y.yield();
  });
  rt::destroy_context(y.other);
  return ns / (2.0 * n);
}

}  // namespace

void emit_sched_floors(int runs, bool quick) {
  const int n = quick ? 200'000 : 5'000'000;
  emit("cpu_locked_op_ns", median_ns(runs, [&] { return locked_op_ns(n); }));
  emit("sched_floor_yield_ns", median_ns(runs, [&] { return floor_yield_ns(n, true); }));
  emit("sched_floor_yield_1p_ns", median_ns(runs, [&] { return floor_yield_ns(n, false); }));
}

}  // namespace gort::bench
