#include "arch/context.hpp"

#include <pthread.h>

#include <cstring>

#include "base/print.hpp"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORT_VALGRIND 1
#endif
#if GORT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if GORT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace gort::rt {

namespace {

#if GORT_VALGRIND
// Valgrind's client requests are no-ops natively, but each builds a 6-word
// request on the stack: ~25 instructions of every spawn, out of ~550. Asked once.
const bool on_valgrind = [] { return RUNNING_ON_VALGRIND != 0; }();
#endif

// context_start is the first C++ frame of every fresh context.
void context_start(void* p) {
  auto* c = static_cast<Context*>(p);
#if GORT_ASAN || GORT_TSAN
  detail::sanitizer_finish_switch(*c);
#endif
  c->fn(c->arg);
  fatal("context entry function returned");
}

}  // namespace

void make_context(Context& c, std::uintptr_t lo, std::uintptr_t hi, void (*fn)(void*), void* arg) {
  if (hi - lo < 4096) fatal("make_context: stack smaller than 4 KiB");
#if GORT_ASAN
  // The stack may have hosted a context that ended with its frames' redzones
  // still poisoned (stacks are reused without a free): start from clean shadow.
  __asan_unpoison_memory_region(reinterpret_cast<void*>(lo), hi - lo);
#endif
  c.fn = fn;
  c.arg = arg;
  c.stack_lo = lo;
  c.stack_hi = hi;
  // The frame sits at the 16-byte aligned top, so that once the switch has popped
  // it, the trampoline's call enters context_start with the ABI's alignment.
  std::uintptr_t sp = (hi & ~std::uintptr_t{15}) - sizeof(SwitchFrame);
  auto* f = reinterpret_cast<SwitchFrame*>(sp);
  std::memset(f, 0, sizeof *f);
  // The new context starts with the creating thread's floating-point modes.
  asm volatile("stmxcsr %0" : "=m"(f->mxcsr));
  asm volatile("fnstcw %0" : "=m"(f->fpucw));
  f->r12 = reinterpret_cast<std::uint64_t>(&context_start);
  f->r13 = reinterpret_cast<std::uint64_t>(&c);
  f->rbp = 0;
  f->pc = reinterpret_cast<std::uint64_t>(&gort_ctx_trampoline);
  c.sp = f;
#if GORT_VALGRIND
  if (on_valgrind) c.valgrind_id = VALGRIND_STACK_REGISTER(lo, hi);
#endif
#if GORT_TSAN
  if (c.tsan_fiber == nullptr) {
    c.tsan_fiber = __tsan_create_fiber(0);
    c.tsan_owned = true;
  }
#endif
}

void context_stack_moved(Context& c, std::uintptr_t lo, std::uintptr_t hi) {
  c.stack_lo = lo;
  c.stack_hi = hi;
#if GORT_VALGRIND
  if (c.valgrind_id != 0) VALGRIND_STACK_CHANGE(c.valgrind_id, lo, hi);
#endif
}

void init_thread_context(Context& c) {
  pthread_attr_t attr;
  void* addr = nullptr;
  std::size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  c.stack_lo = reinterpret_cast<std::uintptr_t>(addr);
  c.stack_hi = c.stack_lo + size;
#if GORT_TSAN
  c.tsan_fiber = __tsan_get_current_fiber();
  c.tsan_owned = false;
#endif
}

void reset_context(Context& c) {
#if GORT_VALGRIND
  if (c.valgrind_id != 0) {
    VALGRIND_STACK_DEREGISTER(c.valgrind_id);
    c.valgrind_id = 0;
  }
#endif
  c.sp = nullptr;
}

void destroy_context(Context& c) {
  reset_context(c);
#if GORT_TSAN
  if (c.tsan_owned) __tsan_destroy_fiber(c.tsan_fiber);
  c.tsan_fiber = nullptr;
  c.tsan_owned = false;
#endif
}

void switch_context_final(Context& from, Context& to, void* arg) {
#if GORT_ASAN || GORT_TSAN
  detail::sanitizer_start_switch(from, to, true);
#endif
  gort_ctx_switch(&from.sp, to.sp, arg);
  fatal("a finished context was resumed");
}

namespace detail {

void sanitizer_start_switch([[maybe_unused]] Context& from, [[maybe_unused]] Context& to,
                            [[maybe_unused]] bool from_exits) {
#if GORT_ASAN
  __sanitizer_start_switch_fiber(from_exits ? nullptr : &from.asan_fake_stack,
                                 reinterpret_cast<const void*>(to.stack_lo),
                                 to.stack_hi - to.stack_lo);
#endif
#if GORT_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

void sanitizer_finish_switch([[maybe_unused]] Context& self) {
#if GORT_ASAN
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, nullptr, nullptr);
#endif
}

}  // namespace detail

}  // namespace gort::rt
