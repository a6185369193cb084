// Counters with one writer: per-P and per-M statistics and the ticks sysmon
// samples. Their owner bumps them on every switch and channel operation.
#pragma once

#include <atomic>
#include <type_traits>

namespace gort::rt {

// owner_add() adds d to a, a counter only the calling thread writes; any other
// thread may read it (relaxed) at any time. Precondition: no other writer.
//
// It means a relaxed load and a relaxed store, done as one `add` to memory:
// that is not atomic against a second writer, but there is none, and a reader
// sees the old or the new value as it would with the pair. GCC compiles the
// pair to three instructions (load, add, store); a channel round trip bumps
// eight such counters. TSan builds, and other targets, keep the pair, which is
// what TSan can check.
template <class T>
inline void owner_add(std::atomic<T>& a, T d = 1) {
  static_assert(std::is_integral_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  static_assert(sizeof(std::atomic<T>) == sizeof(T) && std::atomic<T>::is_always_lock_free);
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
  if constexpr (sizeof(T) == 8) {
    asm volatile("addq %1, %0" : "+m"(a) : "er"(d));
  } else {
    asm volatile("addl %1, %0" : "+m"(a) : "ir"(d));
  }
#else
  a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
#endif
}

}  // namespace gort::rt
