// `gort-bench sched`: the scheduler's costs, measured the way the Go peer
// (bench/peers/go/sched/main.go) measures Go's, in the same run:
//
//   sched_yield_ns          two goroutines alternating with yield on 1 P, per yield
//   sched_spawn_ns          spawn + run + exit in batches of 1000 (WaitGroup), per goroutine
//   sched_spawn_1m_ns       1,000,000 spawned at once, then waited for, per goroutine
//   sched_chan_rtt_1p_ns    unbuffered channel ping-pong, per round trip, 1 P
//   sched_chan_rtt_2p_ns    the same on 2 Ps
//   sched_spawn_park_ns     spawn a goroutine that blocks on a channel, per goroutine
//   sched_idle_rss_bytes_per_g   resident memory per parked goroutine (1,000,000)
//   sched_stack_grow_1mib_stable_us, sched_stack_grow_1mib_relocatable_us
//                           a fresh goroutine recurses 1.15 MB deep, returns and
//                           exits, per goroutine: on a 2 MiB stable stack, and on
//                           a relocatable one growing from one page by copying
//   cpu_locked_op_ns, sched_floor_yield_ns, sched_floor_yield_1p_ns
//                           the floors under the targets (sched_floor.cpp)
//
// The number of Ps is fixed when the runtime starts, so each group runs in a
// child process (`gort-bench sched-part`) with GORTMAXPROCS set, as the Go peer
// sets GOMAXPROCS per measurement. Idle memory gets a fresh process of its own,
// so nothing an earlier measurement left behind is counted or reused.
#include "sched_bench.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gort/gort.hpp"
#include "measure.hpp"
#include "sched_floor.hpp"
#include "sys.hpp"

namespace gort::bench {
namespace {

using Results = std::map<std::string, double>;

// Counts: the defaults take ~20 s on our 2-vCPU VM; --quick a few seconds.
struct Counts {
  int yields, rtts, batches, million, parked, rss, grows;
};
constexpr Counts kFull{2'000'000, 200'000, 200, 1'000'000, 100'000, 1'000'000, 300};
constexpr Counts kQuick{200'000, 20'000, 20, 100'000, 10'000, 100'000, 30};

double per_op(double ns, double ops) { return ns / ops; }

double yield_ns(int n) {
  gort::WaitGroup wg;
  wg.add(2);
  const double ns = elapsed_ns([&] {
    for (int k = 0; k < 2; k++) {
      gort::go([&] {
        for (int i = 0; i < n; i++) gort::yield();
        wg.done();
      });
    }
    wg.wait();
  });
  return per_op(ns, 2.0 * n);
}

double chan_rtt_ns(int n) {
  gort::Chan<int> ping(0), pong(0);
  gort::go([=]() mutable {
    for (int i = 0; i < n; i++) pong.send(*ping.recv());
  });
  const double ns = elapsed_ns([&] {
    for (int i = 0; i < n; i++) {
      ping.send(i);
      (void)pong.recv();
    }
  });
  return per_op(ns, n);
}

// spawn_ns() spawns batches of `batch` goroutines, waiting for each batch.
double spawn_ns(int batches, int batch) {
  gort::WaitGroup wg;
  const double ns = elapsed_ns([&] {
    for (int b = 0; b < batches; b++) {
      wg.add(batch);
      for (int i = 0; i < batch; i++) gort::go([&] { wg.done(); });
      wg.wait();
    }
  });
  return per_op(ns, double(batches) * batch);
}

// park_n() spawns n goroutines that each block receiving on a channel; returns
// once all are parked (each signals before it blocks, as in the Go peer), with
// the channel whose close releases them and the group their exits signal.
struct Parked {
  gort::Chan<int> block{0};
  gort::WaitGroup parked, exited;
};
void park_n(Parked& p, int n) {
  p.parked.add(n);
  p.exited.add(n);
  for (int i = 0; i < n; i++) {
    gort::go([&p] {
      p.parked.done();
      (void)p.block.recv();
      p.exited.done();
    });
  }
  p.parked.wait();
}

double spawn_park_ns(int n) {
  Parked p;
  const double ns = elapsed_ns([&] { park_n(p, n); });
  p.block.close();
  p.exited.wait();
  return per_op(ns, n);
}

// The recursion of stack_grow_us, as the Go peer's growStack: kGrowFrames
// frames of about 1 KiB, 1.15 MB in all.
constexpr int kGrowFrames = 1150;

__attribute__((noinline)) unsigned char grow_stack(int n) {
  volatile unsigned char b[1024];
  b[n % 1024] = static_cast<unsigned char>(n);
  if (n == 0) return b[0];
  return static_cast<unsigned char>(grow_stack(n - 1) + b[n % 1024]);
}

// stack_grow_us() runs n fresh goroutines with opts one after the other, each
// recursing through grow_stack and exiting; microseconds per goroutine.
double stack_grow_us(int n, const gort::GoOptions& opts) {
  gort::Chan<unsigned char> done(0);
  unsigned sink = 0;
  const double ns = elapsed_ns([&] {
    for (int i = 0; i < n; i++) {
      gort::go(opts, [done]() mutable { done.send(grow_stack(kGrowFrames)); });
      sink += *done.recv();
    }
  });
  asm volatile("" : : "r"(sink));
  return per_op(ns, n) / 1e3;
}

std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

double idle_rss_per_g(int n) {
  const std::size_t before = rss_bytes();
  Parked p;
  park_n(p, n);
  const std::size_t after = rss_bytes();
  p.block.close();
  p.exited.wait();
  return double(after - before) / n;
}

// run_child() runs `cmd` through the shell and collects its `name value` lines;
// `#` lines are passed through to our output as they are.
bool run_child(const std::string& cmd, Results& out) {
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) {
    std::fprintf(stderr, "gort-bench sched: cannot run %s: %s\n", cmd.c_str(), std::strerror(errno));
    return false;
  }
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (line[0] == '#') {
      std::fputs(line, stdout);
      continue;
    }
    char name[256];
    double v = 0;
    if (std::sscanf(line, "%255s %lf", name, &v) == 2) out[name] = v;
  }
  const int st = pclose(f);
  if (st != 0) std::fprintf(stderr, "gort-bench sched: `%s` failed (status %d)\n", cmd.c_str(), st);
  return st == 0;
}

}  // namespace

int run_sched_part(const SchedPartArgs& a) {
  const Counts& c = a.quick ? kQuick : kFull;
  gort::main([&] {
    if (a.part == "p1") {
      emit("sched_yield_ns", median_ns(a.runs, [&] { return yield_ns(c.yields); }));
      emit("sched_chan_rtt_1p_ns", median_ns(a.runs, [&] { return chan_rtt_ns(c.rtts); }));
    } else if (a.part == "p2") {
      emit("sched_spawn_ns", median_ns(a.runs, [&] { return spawn_ns(c.batches, 1000); }));
      emit("sched_spawn_1m_ns", median_ns(a.runs, [&] { return spawn_ns(1, c.million); }));
      emit("sched_chan_rtt_2p_ns", median_ns(a.runs, [&] { return chan_rtt_ns(c.rtts); }));
      emit("sched_spawn_park_ns", median_ns(a.runs, [&] { return spawn_park_ns(c.parked); }));
      // Stable needs a stack the recursion fits in: 2 MiB, from jemalloc.
      const gort::GoOptions stable{.stack_size = 2 << 20}, relocatable{.relocatable = true};
      emit("sched_stack_grow_1mib_stable_us", median_ns(a.runs, [&] { return stack_grow_us(c.grows, stable); }));
      emit("sched_stack_grow_1mib_relocatable_us",
           median_ns(a.runs, [&] { return stack_grow_us(c.grows, relocatable); }));
    } else {
      emit("sched_idle_rss_bytes_per_g", idle_rss_per_g(c.rss), 1);
    }
  });
  // On this plain thread, where a loop without runtime calls is nobody's hog.
  if (a.part == "p1") emit_sched_floors(a.runs, a.quick);
  return 0;
}

int run_sched_bench(const SchedBenchArgs& a, const std::string& self) {
  const std::string flags = " --runs " + std::to_string(a.runs) + (a.quick ? " --quick" : "");
  Results ours, go;
  bool ok = run_child("GORTMAXPROCS=1 " + shell_quoted(self) + " sched-part --part p1" + flags, ours);
  ok = run_child("GORTMAXPROCS=2 " + shell_quoted(self) + " sched-part --part p2" + flags, ours) && ok;
  ok = run_child("GORTMAXPROCS=2 " + shell_quoted(self) + " sched-part --part rss" + flags, ours) && ok;

  std::string peer = a.go_peer;
  if (peer.empty()) peer = self.substr(0, self.rfind('/') + 1) + "peers/go/sched";
  if (executable(peer)) {
    ok = run_child(shell_quoted(peer) + " -runs " + std::to_string(a.runs) + (a.quick ? " -quick" : ""), go) && ok;
  } else {
    std::printf("# Go peer not found at %s (built by `make run` when golang-go is installed): no ratios\n",
                peer.c_str());
  }
  for (const auto& [name, v] : ours) {
    emit(name.c_str(), v);
    auto it = go.find("go_" + name);
    if (it == go.end() || it->second <= 0) continue;
    emit(it->first.c_str(), it->second);
    // sched_yield_ns -> sched_yield_ratio_vs_go
    std::string stem = name.substr(0, name.rfind('_'));
    if (name.ends_with("_bytes_per_g")) stem = name.substr(0, name.size() - std::strlen("_bytes_per_g"));
    emit((stem + "_ratio_vs_go").c_str(), v / it->second, 3);
  }
  std::printf("# targets: yield <= 8 ns, spawn <= 50 ns, chan rtt <= 50 ns, relocatable stack growth <= 0.25x Go\n");
  if (ours.count("sched_floor_yield_ns") != 0 && ours.count("sched_floor_yield_1p_ns") != 0) {
    // A yield on 1 P and both halves of a 1-P round trip take a goroutine off
    // the P with plain accesses (no stealers; runnext; a biased channel lock),
    // so they share sched_floor_yield_1p_ns (sched_floor.cpp).
    const double y = ours["sched_floor_yield_ns"], y1 = ours["sched_floor_yield_1p_ns"];
    std::printf("# floors here: yield >= %.1f ns on 1 P, %.1f with stealing Ps; chan rtt >= 2 x %.1f = %.1f ns\n", y1,
                y, y1, 2 * y1);
  }
  return ok ? 0 : 1;
}

}  // namespace gort::bench
