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

// setg() tells the handler which owner's stack the calling thread runs on now
// (nullptr: its own). The scheduler calls it at every switch.
void setg(const StackOwner* g);
// getg() is the owner set by setg() on the calling thread.
const StackOwner* getg();

// fault_record_freed() remembers a stack faulted by stackfree, for the report of
// a later touch. Async-signal-safe to read; entries are never removed.
void fault_record_freed(const Stack& s, std::uint64_t goid, const char* why);

// print_backtrace() prints the frame at pc, then walks the frame-pointer chain
// from fp while it stays inside [lo, hi), Go style (function, then module+offset).
// Async-signal-safe.
void print_backtrace(Printer& out, std::uintptr_t pc, std::uintptr_t fp, std::uintptr_t lo,
                     std::uintptr_t hi);

}  // namespace gort::rt
