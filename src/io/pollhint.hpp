// PollHint: what the scheduler reads inline about a P's poller, owned by src/io.
//
// P embeds one (P::io) beside its opaque poller pointer, so that a switch and
// findrunnable can tell from a few loads whether calling into the poller is
// worth it, without knowing which backend it is. Only src/io writes the fields,
// and only the M holding the P (poll.hpp rule 1); the scheduler only reads them
// through the functions below.
#pragma once

#include <cstdint>

namespace gort::rt {

// IORING_SQ_TASKRUN (liburing.h), restated so the scheduler need not include
// liburing; uring.cpp static_asserts that the two agree.
constexpr unsigned kSqTaskrun = 1u << 2;

struct PollHint {
  // io_uring's completion queue tail and head (kernel-shared): completions
  // wait when they differ. Null on the epoll backend, whose look is a syscall.
  const unsigned* cqtail = nullptr;
  const unsigned* cqhead = nullptr;
  // The SQ ring's flags, when completions may wait as task work (COOP_TASKRUN)
  // until this thread enters the kernel: kSqTaskrun says they do.
  const unsigned* sqflags = nullptr;
  unsigned unsubmitted = 0;   // operations queued since the last submit
  std::int64_t inflight = 0;  // operations submitted and not yet reaped

  // ring() is true when a look for completions is a few loads of shared
  // memory (io_uring), so the scheduler may look often; false when it is a
  // system call (epoll), so it looks only when it has nothing else to do.
  bool ring() const { return cqtail != nullptr; }

  // ready() is true when completions wait to be reaped, or wait as task work
  // to be run by an enter (netpoll does it).
  bool ready() const {
    return cqtail != nullptr &&
           (__atomic_load_n(cqtail, __ATOMIC_ACQUIRE) != __atomic_load_n(cqhead, __ATOMIC_RELAXED) ||
            (sqflags != nullptr && (__atomic_load_n(sqflags, __ATOMIC_RELAXED) & kSqTaskrun) != 0));
  }

  // due() is ready() for a switch: completions of this P's own operations
  // wait. With none in flight only the wake-up read's and cancels' can be
  // there, and those wait for findrunnable; testing inflight first spares
  // every switch of a P without I/O the ring's loads (~8 instructions).
  bool due() const { return inflight != 0 && ready(); }
};

}  // namespace gort::rt
