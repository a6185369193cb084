// `gort-bench stack`: context switches, stack allocation and first touch.
#pragma once

#include <cstdint>

namespace gort::bench {

struct StackBenchArgs {
  // Ping-pong round trips and cache alloc+free pairs per run; the syscall-bound
  // measurements scale it down (see stack_bench.cpp).
  std::uint64_t iterations = 4'000'000;
  int runs = 11;  // each result is the median of this many runs
};

// run_stack_bench() prints the stack benchmark's `name value` lines on stdout and
// returns the process exit status (0, or 1 when a stack came from the wrong origin).
int run_stack_bench(const StackBenchArgs& args);

}  // namespace gort::bench
