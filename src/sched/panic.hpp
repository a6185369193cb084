// Panics (exceptions escaping a goroutine), goexit, and the record of where the
// last exception was thrown (panic.cpp interposes __cxa_throw for it).
#pragma once

#include <cstdint>

namespace gort::rt {

struct G;

// run_goroutine() runs gp's entry. An exception escaping it is a panic: Go's
// report on stderr, with the backtrace of the throw, and exit status 2.
// goexit's unwinding ends here quietly.
void run_goroutine(G* gp);

}  // namespace gort::rt
