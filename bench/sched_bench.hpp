// `gort-bench sched`: goroutine scheduling beside the Go peer (bench/peers/go/sched).
#pragma once

#include <string>

namespace gort::bench {

struct SchedBenchArgs {
  int runs = 7;         // each result is the median of this many runs
  bool quick = false;   // smaller counts, for a smoke test
  std::string go_peer;  // the Go program; empty: next to gort-bench (peers/go/sched)
};

// run_sched_bench() measures gort in child processes (one per GORTMAXPROCS
// setting, one for idle memory), runs the Go peer, and prints our lines, Go's and
// the ratios. self is this executable's path.
int run_sched_bench(const SchedBenchArgs& args, const std::string& self);

// Which group of measurements a `sched-part` child process runs.
struct SchedPartArgs {
  std::string part;  // "p1" (one P), "p2" (two Ps) or "rss" (idle memory)
  int runs = 7;
  bool quick = false;
};

// run_sched_part() runs one group inside gort::main and prints `name value` lines.
int run_sched_part(const SchedPartArgs& args);

}  // namespace gort::bench
