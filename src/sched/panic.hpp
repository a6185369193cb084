// Panics (exceptions escaping a goroutine) and goexit.
#pragma once

#include <cstdint>

namespace gort::rt {

struct G;

// run_goroutine() runs gp's entry. An exception escaping it is a panic: Go's
// report on stderr and exit status 2. goexit's unwinding ends here quietly.
void run_goroutine(G* gp);

}  // namespace gort::rt
