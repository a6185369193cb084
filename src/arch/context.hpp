// Execution contexts and the switch between them.
//
// A Context is a stack pointer into a switched-out stack (layout in
// context_layout.h) plus the bookkeeping that ASan, TSan and valgrind need to
// follow stack switches. Those hooks compile to nothing in a normal build.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/context_layout.h"

#if defined(__SANITIZE_ADDRESS__)
#define GORT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define GORT_TSAN 1
#endif

extern "C" {
void* gort_ctx_switch(void** save_sp, void* new_sp, void* arg);
void gort_ctx_trampoline();
}

namespace gort::rt {

// The words gort_ctx_switch leaves at the saved stack pointer.
struct SwitchFrame {
  std::uint32_t mxcsr;
  std::uint16_t fpucw;
  std::uint16_t pad;
  std::uint64_t r15, r14, r13, r12, rbx, rbp;
  std::uint64_t pc;
};
static_assert(offsetof(SwitchFrame, mxcsr) == GORT_CTX_FPU);
static_assert(offsetof(SwitchFrame, fpucw) == GORT_CTX_FPU + 4);
static_assert(offsetof(SwitchFrame, r15) == GORT_CTX_R15);
static_assert(offsetof(SwitchFrame, r14) == GORT_CTX_R14);
static_assert(offsetof(SwitchFrame, r13) == GORT_CTX_R13);
static_assert(offsetof(SwitchFrame, r12) == GORT_CTX_R12);
static_assert(offsetof(SwitchFrame, rbx) == GORT_CTX_RBX);
static_assert(offsetof(SwitchFrame, rbp) == GORT_CTX_RBP);
static_assert(offsetof(SwitchFrame, pc) == GORT_CTX_PC);
static_assert(sizeof(SwitchFrame) == GORT_CTX_SIZE);

struct Context {
  void* sp = nullptr;  // saved stack pointer while switched out
  void (*fn)(void*) = nullptr;  // entry of a fresh context
  void* arg = nullptr;
  std::uintptr_t stack_lo = 0, stack_hi = 0;  // bounds, for the sanitizers
#if GORT_ASAN
  void* asan_fake_stack = nullptr;
#endif
#if GORT_TSAN
  void* tsan_fiber = nullptr;
  bool tsan_owned = false;
#endif
  unsigned valgrind_id = 0;
};

// make_context() prepares c to run fn(arg) on the stack [lo, hi) at its first
// switch_context. Precondition: hi - lo >= 4 KiB; c outlives the run of fn.
// fn must never return; it ends by a final switch_context_final away.
void make_context(Context& c, std::uintptr_t lo, std::uintptr_t hi, void (*fn)(void*), void* arg);

// context_stack_moved() records that c's stack now spans [lo, hi) (copystack
// moved it while c runs), for the sanitizers and valgrind. Async-signal-safe.
void context_stack_moved(Context& c, std::uintptr_t lo, std::uintptr_t hi);

// init_thread_context() describes the calling thread's own stack (an M's g0),
// so other contexts can switch back to it.
void init_thread_context(Context& c);

// destroy_context() releases the sanitizer and valgrind records of c; the stack
// itself belongs to the caller.
void destroy_context(Context& c);

// reset_context() ends c's current run but keeps what can serve the next
// make_context on the same Context (TSan's fiber: creating one clears ~800 KB of
// shadow memory, which would dominate spawning under TSan).
void reset_context(Context& c);

namespace detail {
void sanitizer_start_switch(Context& from, Context& to, bool from_exits);
void sanitizer_finish_switch(Context& self);
}  // namespace detail

// switch_context() saves the running context into from and resumes to, handing
// it arg, which to's switch_context returns. Precondition: we are running on from.
inline void* switch_context(Context& from, Context& to, void* arg = nullptr) {
#if GORT_ASAN || GORT_TSAN
  detail::sanitizer_start_switch(from, to, false);
#endif
  void* r = gort_ctx_switch(&from.sp, to.sp, arg);
#if GORT_ASAN || GORT_TSAN
  detail::sanitizer_finish_switch(from);
#endif
  return r;
}

// switch_context_final() is switch_context for a context that will never run
// again (its goroutine has exited): ASan drops its fake stack.
[[noreturn]] void switch_context_final(Context& from, Context& to, void* arg = nullptr);

}  // namespace gort::rt
