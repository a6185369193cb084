// `gort-bench stack`: how fast the stack layer is, as `name value` lines on stdout.
//
//   stack_switch_ns                one-way switch, ping-pong with a fresh gort context
//   boost_fiber_switch_ns          the same with boost::context::fiber, as a yardstick
//   stack_switch_ratio_vs_boost    the first over the second
//   stack_alloc_free_*_ns          one stackalloc + stackfree pair, per origin
//   stack_first_touch_ns_per_page  the kernel's cost of committing one page of a stack
#include "stack_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include <boost/context/fiber.hpp>

#include "arch/context.hpp"
#include "measure.hpp"
#include "stack/stack.hpp"

namespace gort::bench {
namespace {

namespace rt = gort::rt;


constexpr std::size_t kPage = 4096;
constexpr std::size_t kMallocedSize = 64 * 1024;  // not the default size: jemalloc serves it

/* The syscall-bound measurements cost microseconds per operation where the others
 * cost nanoseconds, so they do --iterations divided by these: with the default
 * iterations each run stays in the tens of milliseconds, long enough to drown the
 * clock's overhead, short enough for the whole subcommand to finish in seconds. */
constexpr std::uint64_t kMallocedDivisor = 64;
constexpr std::uint64_t kSystemDivisor = 256;
constexpr std::uint64_t kTouchDivisor = 4096;  // stacks, of stack.size / 4 KiB pages each

/* First-touch stacks are allocated, touched and freed in batches: one timed window
 * then covers ~1000 page faults, so the clock reads are noise, while the resident
 * set stays a few MiB however many stacks a run touches. */
constexpr std::size_t kTouchBatch = 16;

// scaled() is iters / divisor, but at least 1.
std::uint64_t scaled(std::uint64_t iters, std::uint64_t divisor) {
  return std::max<std::uint64_t>(1, iters / divisor);
}

// ScopedStackDebug switches the stack debug modes for its lifetime, then restores
// the previous ones.
class ScopedStackDebug {
 public:
  explicit ScopedStackDebug(const rt::StackDebug& d) : saved_(rt::stack_debug()) {
    rt::set_stack_debug(d);
  }
  ~ScopedStackDebug() { rt::set_stack_debug(saved_); }
  ScopedStackDebug(const ScopedStackDebug&) = delete;
  ScopedStackDebug& operator=(const ScopedStackDebug&) = delete;

 private:
  rt::StackDebug saved_;
};

/* modes() is the configured debug modes with stackfromsystem forced to fromsystem.
 * Each measurement needs stacks of one origin, so it cannot leave that mode to
 * $GORTDEBUG; the other modes (poison, nocache, trace level) are left as configured
 * and reported by report_modes(), so their cost can be measured too. Without
 * fromsystem, faultonfree does nothing but make set_stack_debug warn: dropped. */
rt::StackDebug modes(bool fromsystem) {
  rt::StackDebug d = rt::stack_debug();
  d.fromsystem = fromsystem;
  d.faultonfree = d.faultonfree && fromsystem;
  return d;
}

// report_modes() prints a comment naming the stack debug modes when they are not
// the defaults, since they change every stack number.
void report_modes() {
  const rt::StackDebug d = rt::stack_debug();
  if (d == rt::StackDebug{}) return;
  std::printf("# stack debug modes: level=%d fromsystem=%d faultonfree=%d poison=%d nocache=%d\n",
              d.level, d.fromsystem, d.faultonfree, d.poison, d.nocache);
}

// origin_name() is the name of an origin, for messages.
const char* origin_name(rt::StackOrigin o) {
  switch (o) {
    case rt::StackOrigin::cache: return "cache";
    case rt::StackOrigin::malloced: return "malloced";
    case rt::StackOrigin::system: return "system";
  }
  return "?";
}

// origin_is() allocates and frees one stack of n bytes under the current modes and
// says whether it came from origin want; a benchmark of the wrong origin is useless.
bool origin_is(std::size_t n, rt::StackOrigin want) {
  rt::StackOwner owner;
  const rt::Stack s = rt::stackalloc(&owner, n);
  const rt::StackOrigin got = s.origin;
  rt::stackfree(&owner, s);
  if (got == want) return true;
  std::fprintf(stderr, "gort-bench: a %zu-byte stack came from origin %s, expected %s\n", n,
               origin_name(got), origin_name(want));
  return false;
}

// PingPong is what the thread's own context and the fiber bouncing with it share.
struct PingPong {
  rt::Context main;
  rt::Context fiber;
  bool done = false;
};

// pingpong_entry() is the fiber's body: switch back to main until told to stop,
// then leave for good.
[[noreturn]] void pingpong_entry(void* p) {
  auto* pp = static_cast<PingPong*>(p);
  while (!pp->done) rt::switch_context(pp->fiber, pp->main);
  rt::switch_context_final(pp->fiber, pp->main);
}

// gort_switch_ns() times iters round trips between this thread and a fresh gort
// context, per one-way switch.
double gort_switch_ns(std::uint64_t iters) {
  rt::StackOwner owner;
  const rt::Stack s = rt::stackalloc(&owner);
  owner.stack = s;
  PingPong pp;
  rt::init_thread_context(pp.main);
  rt::make_context(pp.fiber, s.lo, s.hi, pingpong_entry, &pp);
  rt::switch_context(pp.main, pp.fiber);  // the first entry goes through the trampoline
  const double ns = elapsed_ns([&] {
    for (std::uint64_t i = 0; i < iters; ++i) rt::switch_context(pp.main, pp.fiber);
  });
  pp.done = true;
  rt::switch_context(pp.main, pp.fiber);  // the fiber leaves by switch_context_final
  rt::destroy_context(pp.fiber);
  rt::destroy_context(pp.main);
  owner.stack = {};
  rt::stackfree(&owner, s);
  return ns / (2.0 * static_cast<double>(iters));
}

// boost_switch_ns() is gort_switch_ns() with a boost::context::fiber.
double boost_switch_ns(std::uint64_t iters) {
  namespace ctx = boost::context;
  bool done = false;
  ctx::fiber f{[&done](ctx::fiber&& main) {
    while (!done) main = std::move(main).resume();
    return std::move(main);
  }};
  f = std::move(f).resume();  // the first entry sets the fiber up
  const double ns = elapsed_ns([&] {
    for (std::uint64_t i = 0; i < iters; ++i) f = std::move(f).resume();
  });
  done = true;
  f = std::move(f).resume();  // the fiber's function returns; f is empty after
  return ns / (2.0 * static_cast<double>(iters));
}

// alloc_free_ns() times iters stackalloc + stackfree pairs of n bytes (0: the
// default size), per pair.
double alloc_free_ns(std::uint64_t iters, std::size_t n) {
  rt::StackOwner owner;
  const double ns = elapsed_ns([&] {
    for (std::uint64_t i = 0; i < iters; ++i) {
      const rt::Stack s = rt::stackalloc(&owner, n);
      keep(s.lo);
      rt::stackfree(&owner, s);
    }
  });
  return ns / static_cast<double>(iters);
}

// touch_pages() writes one byte in every page of s, top down as a stack grows, and
// returns how many pages it touched.
std::uint64_t touch_pages(const rt::Stack& s) {
  const std::uint64_t pages = (s.size() + kPage - 1) / kPage;
  for (std::uint64_t i = 0; i < pages; ++i) {
    *reinterpret_cast<volatile char*>(s.hi - 1 - i * kPage) = 1;
  }
  return pages;
}

// first_touch_ns() touches every page of `stacks` fresh default-size stacks and
// returns the time of the touching alone, per page.
double first_touch_ns(std::uint64_t stacks) {
  rt::StackOwner owner;
  std::vector<rt::Stack> batch;
  double ns = 0;
  std::uint64_t pages = 0;
  for (std::uint64_t done = 0; done < stacks; done += batch.size()) {
    batch.clear();
    const std::uint64_t n = std::min<std::uint64_t>(kTouchBatch, stacks - done);
    for (std::uint64_t k = 0; k < n; ++k) batch.push_back(rt::stackalloc(&owner));
    ns += elapsed_ns([&] {
      for (const rt::Stack& s : batch) pages += touch_pages(s);
    });
    for (const rt::Stack& s : batch) rt::stackfree(&owner, s);
  }
  return ns / static_cast<double>(pages);
}

// bench_switch() prints the gort and boost switch times and their ratio.
void bench_switch(const StackBenchArgs& a) {
  ScopedStackDebug m(modes(false));
  const std::vector<double> med = interleaved_medians_ns(
      a.runs, {[&] { return gort_switch_ns(a.iterations); },
               [&] { return boost_switch_ns(a.iterations); }});
  emit("stack_switch_ns", med[0]);
  emit("boost_fiber_switch_ns", med[1]);
  emit("stack_switch_ratio_vs_boost", med[0] / med[1], 3);
}

// One stackalloc + stackfree measurement: which size, from which origin.
struct AllocCase {
  const char* name;
  std::size_t bytes;  // 0: the default size
  rt::StackOrigin origin;
  std::uint64_t divisor;  // of --iterations
};

constexpr AllocCase kAllocCases[] = {
    {"stack_alloc_free_cache_ns", 0, rt::StackOrigin::cache, 1},
    {"stack_alloc_free_malloced_ns", kMallocedSize, rt::StackOrigin::malloced, kMallocedDivisor},
    {"stack_alloc_free_system_ns", 0, rt::StackOrigin::system, kSystemDivisor},
};

// bench_alloc_free() prints one alloc+free time per origin; false if a stack came
// from the wrong origin.
bool bench_alloc_free(const StackBenchArgs& a) {
  for (const AllocCase& c : kAllocCases) {
    ScopedStackDebug m(modes(c.origin == rt::StackOrigin::system));
    if (!origin_is(c.bytes, c.origin)) return false;
    const std::uint64_t iters = scaled(a.iterations, c.divisor);
    emit(c.name, median_ns(a.runs, [&] { return alloc_free_ns(iters, c.bytes); }));
  }
  return true;
}

// bench_first_touch() prints the first-touch cost per page; false if a stack came
// from the wrong origin.
bool bench_first_touch(const StackBenchArgs& a) {
  /* System stacks are fresh mmaps, so every page touched is a real first touch
   * (cached stacks may still hold pages from an earlier user). Poisoning writes
   * every page at allocation, which would make these second touches: off here. */
  rt::StackDebug d = modes(true);
  d.poison = false;
  ScopedStackDebug m(d);
  if (!origin_is(0, rt::StackOrigin::system)) return false;
  const std::uint64_t stacks = scaled(a.iterations, kTouchDivisor);
  emit("stack_first_touch_ns_per_page", median_ns(a.runs, [&] { return first_touch_ns(stacks); }));
  return true;
}

}  // namespace

int run_stack_bench(const StackBenchArgs& a) {
  std::printf("# median of %d runs, %llu iterations\n", a.runs,
              static_cast<unsigned long long>(a.iterations));
  report_modes();
  bench_switch(a);
  if (!bench_alloc_free(a) || !bench_first_touch(a)) return 1;
  emit("stack_cache_ns_target", 20, 0);
  emit("stack_switch_ns_target", 6, 0);
  std::printf("# ok\n");
  return 0;
}

}  // namespace gort::bench
