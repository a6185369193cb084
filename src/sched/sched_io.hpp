// The scheduler's side of its one door to the I/O layer: everything src/io may
// use of src/sched, and src/io includes nothing else of it.
//
// The other side is src/io/poll.hpp (netpollinit, netpoll, netpollflush,
// netpollwait, netpollbreak, netpollpending) with the inline hints of
// io/pollhint.hpp. Across the door:
//  - the scheduler calls the poller on a P it holds, and the poller hands back
//    the goroutines its completions concern as a GList; injectglist (proc.cpp)
//    alone turns them runnable and queues them, as Go's findrunnable does with
//    netpoll's list (netpollinject does both steps);
//  - the I/O layer parks a goroutine with gopark and wakes one it unblocked
//    outside netpoll (a deadline, a close, a wake word) with goready; it marks
//    a blocking system call with entersyscall/exitsyscall and reaches a
//    safe point with checkpreempt;
//  - an operation whose record the kernel or a timer holds while the
//    goroutine parks runs under NoMove (stackmove.hpp), so a relocatable
//    goroutine's stack never moves under it;
//  - it reads the running goroutine (getgp, getgp_parkable) and the M's P only
//    to find its own per-P state (P::poller, P::io), and it never touches a
//    G's status, a run queue or sched.
#pragma once

#include "sched/lock.hpp"
#include "sched/runtime.hpp"
#include "sched/stackmove.hpp"
#include "sched/time.hpp"

namespace gort::rt {

// entersyscall() tells the scheduler the calling goroutine is about to block
// its thread in the kernel: sysmon may hand its P to another M meanwhile.
void entersyscall();
// netpollinject() reaps p's poller (netpoll) and makes what it lists runnable
// on p (injectglist); returns how many. The scheduler's own looks go through
// it, and so does a submit that finds the completion queue backed up.
// Precondition: the caller holds p, and is not inside netpoll.
int netpollinject(P* p);
// exitsyscall() returns from entersyscall: the goroutine gets a P back (its
// own if it is still free) or waits in the global queue for one.
void exitsyscall();

}  // namespace gort::rt
