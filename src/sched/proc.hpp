// proc.cpp's entry points for the rest of src/sched (sysmon, spawning, syscalls).
#pragma once

#include "gort/go.hpp"
#include "sched/runtime.hpp"
#include "sched/sched_io.hpp"

namespace gort::rt {

// runqempty() is true when p has nothing queued, runnext included.
bool runqempty(P* p);
// runqput() queues gp on p; with next, into runnext. Only p's owner calls it.
void runqput(P* p, G* gp, bool next);
// runnext_steal() takes p's runnext for another P's M (runtime.hpp rule 1),
// after watching p for ~3 us: only if p neither scheduled nor queued anything
// in its ring meanwhile (that is stolen from the ring). nullptr otherwise; a
// p that scheduled is marked (P::nextnowake, ready.hpp).
G* runnext_steal(P* p);
// runqroom() is how many more Gs p's ring takes before overflowing. Owner only.
int runqroom(P* p);
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
