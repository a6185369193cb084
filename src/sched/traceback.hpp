// Goroutine headers and backtraces for panics, dumps and reports (Go's
// traceback.go), and the goroutine dump that SIGQUIT and gort::dump_goroutines
// print (dump.cpp).
#pragma once

#include <cstdint>
#include <typeinfo>

#include "base/print.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

// Frames kept of a throw; Go prints up to 100 per goroutine.
constexpr int kThrowFrames = 64;

// ThrowRecord is where the last exception thrown on a thread was thrown, kept
// by the library's __cxa_throw (one more frame than printed, to tell a backtrace
// cut short). Only throws on goroutine stacks are recorded.
struct ThrowRecord {
  const StackOwner* g = nullptr;  // whose stack the throw ran on
  std::uint64_t goid = 0;
  const void* obj = nullptr;  // the thrown object
  const std::type_info* type = nullptr;
  int n = 0;
  std::uintptr_t pcs[kThrowFrames + 1];
};
// lastthrow() is the calling thread's record.
const ThrowRecord& lastthrow();

// print_goroutine_header() prints "goroutine N [state]:" (Go's format), with the
// wait reason and minutes waited for a blocked goroutine, and its name if any.
void print_goroutine_header(Printer& out, const G* gp);
// print_goroutine_stack() prints "stack=[lo, hi] N bytes, U used", the use
// (hi - sp) only when sp is inside the stack.
void print_goroutine_stack(Printer& out, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t sp);
// traceback_here() prints the calling goroutine's stack from the caller's frame.
// Precondition: gp is the calling goroutine.
void traceback_here(Printer& out, const G* gp);
// traceback_parked() prints the stack bounds and use of a goroutine that is
// switched out (runnable or waiting), then its backtrace. It may be readied,
// run and even exit meanwhile: the stack is read through a copy, never in place.
void traceback_parked(Printer& out, const G* gp);

// tracebackothers() prints every goroutine but me (nullptr: every one), Go
// style: header, stack, backtrace; "(running on another thread)" instead of the
// stack of one that is running or in a syscall. Dead and idle Gs are skipped.
void tracebackothers(Printer& out, const G* me);

// sigquit_install() makes SIGQUIT print every goroutine to stderr and go on;
// the printing is done by a dedicated thread, not in the handler. Called once by
// runtime_init.
void sigquit_install();
// sigquit_dumps() is how many SIGQUIT dumps have been printed completely.
std::uint64_t sigquit_dumps();

}  // namespace gort::rt
