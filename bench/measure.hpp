// Measurement helpers shared by every gort-bench subcommand.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

namespace gort::bench {

using Clock = std::chrono::steady_clock;

// A Trial runs one measurement once and returns nanoseconds per operation.
using Trial = std::function<double()>;

// keep() makes v look used, so the compiler cannot drop the loop that produced it.
inline void keep(std::uintptr_t v) { asm volatile("" : : "r"(v) : "memory"); }

// elapsed_ns() times one call of body.
template <class F>
double elapsed_ns(F&& body) {
  const auto t0 = Clock::now();
  body();
  const auto t1 = Clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count();
}

// median() is the middle of v (the mean of the two middles when v has an even size).
inline double median(std::vector<double> v) {
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  if (v.size() % 2 == 1) return v[mid];
  const double below = *std::max_element(v.begin(), v.begin() + mid);
  return (below + v[mid]) / 2;
}

/* interleaved_medians_ns() runs every trial `runs` times, round-robin, and returns
 * each trial's median.
 *
 * Why the median: a shared 2-core VM loses time in bursts (another tenant, a host
 * interrupt, a migration). A mean smears a burst into the result; the median
 * ignores the few runs it hits.
 * Why round-robin: trials that are compared with each other (gort against boost)
 * then run side by side, gort, boost, gort, boost..., so a slow phase of the
 * machine (frequency scaling, a noisy neighbour for a second) hits both alike
 * instead of whichever happened to run during it.
 * Why one untimed round first: it pays the one-off costs (lazy PLT binding, the
 * stack cache's first refill from the pool, page faults on fresh spans) so that
 * no timed run carries them. */
inline std::vector<double> interleaved_medians_ns(int runs, const std::vector<Trial>& trials) {
  for (const Trial& t : trials) t();
  std::vector<std::vector<double>> samples(trials.size());
  for (int r = 0; r < runs; ++r) {
    for (std::size_t i = 0; i < trials.size(); ++i) samples[i].push_back(trials[i]());
  }
  std::vector<double> medians;
  for (auto& s : samples) medians.push_back(median(std::move(s)));
  return medians;
}

// median_ns() is the median of `runs` runs of one trial.
inline double median_ns(int runs, const Trial& trial) { return interleaved_medians_ns(runs, {trial})[0]; }

// emit() prints one result line, `name value`, and flushes it so that a later
// fatal error in the runtime cannot swallow it.
inline void emit(const char* name, double value, int decimals = 2) {
  std::printf("%s %.*f\n", name, decimals, value);
  std::fflush(stdout);
}

}  // namespace gort::bench
