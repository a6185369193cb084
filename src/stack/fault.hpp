// Stack fault reports: one SIGSEGV/SIGBUS handler on a per-M signal stack.
//
// A touch of the running goroutine's guard prints Go's stack-overflow report; a
// touch of a stack freed under stackfaultonfree prints whose it was and why it
// was freed. Both exit with status 2. Any other fault goes to the handler that
// was installed before ours, so an ordinary crash still crashes as usual.
#pragma once

#include <cstdint>

#include "base/print.hpp"
#include "stack/stack.hpp"

namespace gort::rt {

// fault_install() installs the handler (once; later calls do nothing).
void fault_install();

// minit_signalstack() gives the calling thread (an M) its signal stack, which
// the handler needs to run when the goroutine stack itself is exhausted.
// Idempotent per thread; every M calls it before running goroutines.
void minit_signalstack();

}  // namespace gort::rt

// The owner whose stack the calling thread runs on (local-exec TLS, as
// gort_tls_m: a fixed %fs offset, safe to read in the signal handler).
extern "C" __attribute__((tls_model("local-exec"))) thread_local const gort::rt::StackOwner* gort_tls_owner;

namespace gort::rt {

// setowner() tells the handler which owner's stack the calling thread runs on now
// (nullptr: its own). The scheduler calls it at every switch, so it is one store
// through %fs; asm volatile, so the compiler never reuses a TLS address computed
// before a switch (the goroutine may have moved to another thread).
inline void setowner(const StackOwner* g) {
  asm volatile("movq %0, %%fs:gort_tls_owner@tpoff" : : "r"(g) : "memory");
}
// getowner() is the owner set by setowner() on the calling thread.
inline const StackOwner* getowner() {
  const StackOwner* g;
  asm volatile("movq %%fs:gort_tls_owner@tpoff, %0" : "=r"(g));
  return g;
}

// fault_record_freed() remembers a stack faulted by stackfree, for the report of
// a later touch; moved, if not null, says where copystack moved it. Entries are
// never removed. Async-signal-safe (copystack frees in the fault handler).
void fault_record_freed(const Stack& s, std::uint64_t goid, const char* why,
                        const StackMoveRecord* moved = nullptr);

// print_backtrace() prints the frame at pc, then walks the frame-pointer chain
// from fp while it stays inside [lo, hi), Go style (each frame's function, then
// its file:line, or its module+offset without line information). The frames are
// read at fp + delta (see callers). Async-signal-safe.
void print_backtrace(Printer& out, std::uintptr_t pc, std::uintptr_t fp, std::uintptr_t lo,
                     std::uintptr_t hi, std::intptr_t delta = 0);

// callers() stores the return addresses of the frame-pointer chain from fp, while
// it stays inside [lo, hi), into pcs (at most max) and returns how many. The
// frames are read at fp + delta: nonzero when the stack [lo, hi) was copied there.
// Async-signal-safe.
int callers(std::uintptr_t fp, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t* pcs, int max,
            std::intptr_t delta = 0);

// print_frames() prints the return addresses pcs[0..n) as print_backtrace does,
// at most max of them, then "...additional frames elided..." if n > max.
// Async-signal-safe.
void print_frames(Printer& out, const std::uintptr_t* pcs, int n, int max);

}  // namespace gort::rt
