// Goroutine headers and backtraces for panics, dumps and reports.
#pragma once

#include "base/print.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

// print_goroutine_header() prints "goroutine N [state]:" (Go's format), with the
// wait reason and minutes waited for a blocked goroutine, and its name if any.
void print_goroutine_header(Printer& out, const G* gp);
// traceback_here() prints the calling goroutine's stack from the caller's frame.
void traceback_here(Printer& out, const G* gp);
// traceback_parked() prints the stack of a goroutine that is switched out.
void traceback_parked(Printer& out, const G* gp);

}  // namespace gort::rt
