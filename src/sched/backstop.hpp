// Backstops: where the runtime recovers from a hand-off that should have
// happened and did not (a missed wake-up), so the work waited instead of
// running. Each is counted for gort::stats() (Stats::kickidle_rescues,
// lockpoll_rescues); with sched.backstop_fatal (GORTDEBUG schedbackstopfatal=1)
// a kickidle rescue is a fatal error that prints the scheduler's state, so a
// lost wake-up is found where it happens instead of being papered over.
#pragma once

#include <cstdint>

#include "base/print.hpp"

namespace gort::rt {

// sched.backstop_fatal, set once at start (schedinit).
extern bool backstop_fatal;

// kickidle_rescues() is how many times sysmon started an M for work that had
// waited with every P idle (sysmon.cpp kickidle).
std::uint64_t kickidle_rescues();

// lockpoll_rescues() is how many times a Lock sleeper without membarrier found
// the lock free only when its poll timed out (lock.cpp Lock::lock_slow).
std::uint64_t lockpoll_rescues();

// print_schedstate() prints every P (status, run queue, runnext, timers), the
// Ms, the global queue and the idle and spinning counts, as Go's schedtrace.
// Takes sched.lock and each P's timerslock: the caller must hold neither.
void print_schedstate(Printer& out);

// backstop_die() prints "backstop: <why>", the scheduler's state and every
// goroutine, then exits with status 2 (fatal). Same locking as print_schedstate.
[[noreturn]] void backstop_die(const char* why);

}  // namespace gort::rt
