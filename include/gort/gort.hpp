// gort: goroutines for C++20. This header includes the whole public API.
//
// gort::main and gort::go (go.hpp), configuration (Options), stack statistics
// and the debug modes.
#pragma once

#include <cstdio>
#include <string_view>

#include "gort/chan.hpp"
#include "gort/defer.hpp"
#include "gort/fs.hpp"
#include "gort/go.hpp"
#include "gort/local.hpp"
#include "gort/net.hpp"
#include "gort/options.hpp"
#include "gort/panic.hpp"
#include "gort/stats.hpp"
#include "gort/sync.hpp"

namespace gort {

// stack_stats() returns a snapshot of goroutine stack memory (see StackStats).
// Precondition: the runtime is initialised.
StackStats stack_stats();

// stats() returns a snapshot of the scheduler and of stack memory (see Stats).
// Precondition: the runtime is initialised.
Stats stats();

// dump_goroutines() prints every goroutine to f, as SIGQUIT does to stderr: id,
// state, wait reason and minutes waited, name, stack bounds and use, backtrace
// (the caller's first; "(running on another thread)" for ones running elsewhere).
// The process goes on. Precondition: the runtime is initialised.
void dump_goroutines(FILE* f);

// set_debug() switches debug modes at run time, in GORTDEBUG syntax, e.g.
// "stackpoison=1,efence=1" or "stack.debug=2". Stacks allocated before keep
// the origin they had, so they are still freed correctly. Only the debug keys
// (stack.debug, fromsystem, faultonfree, poison, nocache, efence) and log.level
// may change after start; throws std::invalid_argument naming a bad entry.
void set_debug(std::string_view settings);

}  // namespace gort
