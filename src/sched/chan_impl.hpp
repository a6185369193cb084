// The channel (Go's hchan) and the steps that chan.cpp and select.cpp share.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "gort/chan.hpp"
#include "sched/lock.hpp"
#include "sched/sudog.hpp"

namespace gort::detail {

// hchan is Go's: a circular buffer of dataqsiz slots and the queues of waiting
// receivers and senders, all under lock. A waiting receiver implies an empty
// buffer and a waiting sender a full one, so a value is handed straight to a
// waiter whenever there is one.
struct hchan {
  rt::Lock lock;
  bool closed = false;
  std::size_t qcount = 0;    // values in buf
  std::size_t dataqsiz = 0;  // capacity
  std::size_t sendx = 0;     // next slot to fill
  std::size_t recvx = 0;     // next slot to take
  unsigned char* buf = nullptr;
  const elemops* ops = nullptr;
  rt::WaitQ recvq;  // Sudog::elem: a std::optional<T> to fill
  rt::WaitQ sendq;  // Sudog::elem: the T to send
  std::atomic<std::size_t> refs{1};  // Chan handles (and pending after() timers)

  void* slot(std::size_t i) { return buf + i * ops->size; }
};

}  // namespace gort::detail

namespace gort::rt {

using gort::detail::hchan;

// selectwait is what the records of one blocked select share. Each record's
// Sudog::selectdone points at done, its first member, which is how a waker
// finds the rest.
//
// A select waits on several channel locks, but may release them only once it
// is parked (goready on a goroutine that has not parked yet is fatal, and its
// timeout timer is armed only then), and park_waiter_until releases one Lock.
// So the select takes parked before releasing the channel locks and parks with
// it; a waker that fired one of its records takes parked once, after releasing
// its own channel lock, before readying it (readysudog).
struct selectwait {
  std::atomic<std::uint32_t> done{0};
  Lock parked;
  Sudog* fired = nullptr;  // the record its waker fired; nullptr: timed out

  static selectwait* of(Sudog* sg) { return reinterpret_cast<selectwait*>(sg->selectdone); }
};

// What a channel operation found it could do without waiting.
enum class chanstate { blocked, done, closed };

// trysend() and tryrecv() do what a send or receive of ep can do at once; c->lock
// is held. A peer taken from a wait queue comes back in *wake, to be readied
// (readysudog) once every lock is released. trysend reports closed first;
// tryrecv reports closed only once the buffer is drained (ep stays empty).
chanstate trysend(hchan* c, void* ep, Sudog** wake);
chanstate tryrecv(hchan* c, void* ep, Sudog** wake);

// readysudog() wakes the owner of sg, which a channel operation took from a wait
// queue and completed. Precondition: no channel lock is held.
void readysudog(Sudog* sg);

// panic_send_closed() throws Go's "send on closed channel".
[[noreturn]] void panic_send_closed();

}  // namespace gort::rt
