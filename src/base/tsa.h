// Thread-safety annotations: clang's capability attributes, checked by
// -Wthread-safety (`make test-annotations`), no-ops under other compilers.
//
// A Lock is a capability; a field a lock guards says GUARDED_BY(that lock)
// and a function that needs it held says REQUIRES(it). The analysis is
// per-function and static, so where a lock's holder changes hands at a
// context switch (runtime.hpp rule 4: the goroutine that parks holds the lock,
// the code after the switch releases it) the function says RELEASE in its
// contract and NO_THREAD_SAFETY_ANALYSIS on its body, with the reason beside it.
// See https://clang.llvm.org/docs/ThreadSafetyAnalysis.html.
#pragma once

#if defined(__clang__)
#define GORT_TSA(x) __attribute__((x))
#else
#define GORT_TSA(x)
#endif

#define CAPABILITY(name) GORT_TSA(capability(name))
#define SCOPED_CAPABILITY GORT_TSA(scoped_lockable)
#define GUARDED_BY(x) GORT_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) GORT_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) GORT_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) GORT_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) GORT_TSA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) GORT_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GORT_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) GORT_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) GORT_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) GORT_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) GORT_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS GORT_TSA(no_thread_safety_analysis)
