// gort::RuntimeTimer and gort::after: Go's time.Timer and time.After, runtime timers
// (time.hpp) that deliver on channels.
//
// A timer's function runs on an M with no lock held and must not block, so it
// delivers with a non-blocking send into a channel of capacity 1. If the
// previous value is still there the new one is dropped, as in Go.
#include <chrono>
#include <optional>

#include "base/print.hpp"
#include "sched/chan_impl.hpp"
#include "sched/runtime.hpp"
#include "sched/time.hpp"

namespace gort::detail {

using namespace gort::rt;

namespace {

using TimePoint = std::chrono::steady_clock::time_point;

void sendtime(hchan* c) {
  TimePoint now = std::chrono::steady_clock::now();
  chansend(c, &now, false);
}

// drain() discards a value waiting in c; true if there was one.
bool drain(hchan* c) {
  std::optional<TimePoint> stale;
  chanlock(c);
  Sudog* sg = nullptr;
  tryrecv(c, &stale, &sg);
  c->lock.unlock();
  if (sg != nullptr) readysudog(sg);
  return stale.has_value();
}

// after()'s timer owns a handle to its channel and frees itself once it fired.
struct afterstate {
  rt::RuntimeTimer t;
  hchan* c;
};

void afterfire(void* arg) {
  auto* a = static_cast<afterstate*>(arg);
  sendtime(a->c);
  chanrelease(a->c);
  delete a;
}

}  // namespace

// A Timer's runtime timer; the Timer holds the handle to c.
struct timerchan {
  rt::RuntimeTimer t;
  hchan* c = nullptr;
  rt::Lock mu;                      // serialises stop and reset
  std::atomic<bool> armed{false};   // added, and timerfire has not finished
};

namespace {

void timerfire(void* arg) {
  auto* tc = static_cast<timerchan*>(arg);
  sendtime(tc->c);
  tc->armed.store(false, std::memory_order_release);
}

// starttimer() schedules t; the runtime's timers need its Ps.
void starttimer(rt::RuntimeTimer* t) {
  if (sched.procs == 0) fatal("gort::Timer, gort::after: the runtime is not started (call gort::main first)");
  addtimer(t);
}

// arm() starts tc's timer. Precondition: tc->mu held, the timer stopped.
void arm(timerchan* tc, std::chrono::nanoseconds d) REQUIRES(tc->mu) {
  tc->t.when = nanotime() + std::max<std::int64_t>(d.count(), 0);
  tc->armed.store(true, std::memory_order_relaxed);
  starttimer(&tc->t);
}

// stop() unschedules tc's timer, or lets a firing in progress finish, then
// discards an unreceived value: Go 1.23's "no stale value after Stop".
// Precondition: tc->mu held.
bool stop(timerchan* tc) REQUIRES(tc->mu) {
  bool active = false;
  if (tc->armed.load(std::memory_order_acquire)) {
    if (deltimer(&tc->t)) {
      tc->armed.store(false, std::memory_order_relaxed);
      active = true;
    } else {
      // Taken off its heap to fire: timerfire never blocks, wait for it.
      while (tc->armed.load(std::memory_order_acquire)) __builtin_ia32_pause();
    }
  }
  return drain(tc->c) || active;
}

}  // namespace

}  // namespace gort::detail

namespace gort {

using detail::timerchan;

Timer::Timer(std::chrono::nanoseconds d) : c_(1), t_(new timerchan) {
  t_->c = detail::chanaccess::get(c_);
  t_->t.f = detail::timerfire;
  t_->t.arg = t_;
  t_->mu.lock();
  detail::arm(t_, d);
  t_->mu.unlock();
}

Timer::~Timer() {
  if (t_ == nullptr) return;
  stop();
  delete t_;
}

bool Timer::stop() {
  t_->mu.lock();
  const bool active = detail::stop(t_);
  t_->mu.unlock();
  return active;
}

bool Timer::reset(std::chrono::nanoseconds d) {
  t_->mu.lock();
  const bool active = detail::stop(t_);
  detail::arm(t_, d);
  t_->mu.unlock();
  return active;
}

Chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d) {
  Chan<std::chrono::steady_clock::time_point> ch(1);
  auto* a = new detail::afterstate;
  a->c = detail::chanaccess::get(ch);
  detail::chanretain(a->c);
  a->t.when = rt::nanotime() + std::max<std::int64_t>(d.count(), 0);
  a->t.f = detail::afterfire;
  a->t.arg = a;
  detail::starttimer(&a->t);
  return ch;
}

}  // namespace gort
