// proc.cpp's entry points for the rest of src/sched (sysmon, spawning, syscalls).
#pragma once

#include "gort/go.hpp"
#include "sched/runq.hpp"
#include "sched/runtime.hpp"
#include "sched/sched_io.hpp"

namespace gort::rt {

// handoffp() passes a P whose M is blocked to another M, or idles it.
void handoffp(P* p);
// startm_idle() starts an M on an idle P (if any) to look for work.
void startm_idle();
// newproc_g() returns a G ready for an entry: recycled from the P, or new, with
// a stack of opts->stack_size (default size when 0).
G* newproc_g(const gort::GoOptions* opts);
// newproc_queue() prepares gp's context and queues it (runnext of this P).
// Returns true when this P's run queue ring was full: the spawner should let
// the P run what it queued (newproc_end).
bool newproc_queue(G* gp);
// newproc_recycle() returns a G that never ran.
void newproc_recycle(G* gp);
// schedinit_procs() makes the Ps, all idle.
void schedinit_procs(int procs);

}  // namespace gort::rt
