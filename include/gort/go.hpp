// Goroutines: gort::main, gort::go, yield, sleep, goexit, syscall.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "gort/options.hpp"

namespace gort {

// Options for one goroutine.
struct GoOptions {
  // Usable stack bytes; 0 means the default (conf stack.size, 256 KiB). Other
  // sizes are served by jemalloc (rounded up to whole pages). For a
  // relocatable goroutine, the first size (rounded up to a power of two).
  std::size_t stack_size = 0;
  // A relocatable goroutine's stack starts small (conf stack.copying_min, one
  // page) and moves to a region twice as large whenever it runs out, with the
  // pointers into it adjusted; so nothing outside its own stack may point
  // into it (no stack-local std::map, no WaitGroup on its stack that others
  // use: docs/stacks.md "The contract"). Unset: conf stack.kind decides.
  std::optional<bool> relocatable{};
  // Shown in goroutine dumps; empty for none.
  std::string_view name{};
};

namespace detail {

// A goroutine's entry, type-erased.
struct GoFn {
  void (*invoke)(void* fn);
  void (*destroy)(void* fn);
  bool heap;  // the callable was allocated with new
};

// newproc_begin() makes a G and returns room for an entry of size/align bytes
// inside it, or nullptr if it does not fit (the caller then allocates one).
void* newproc_begin(const GoOptions* opts, std::size_t size, std::size_t align, void** g);
// newproc_end() queues the G to run fn, whose callable is at p.
void newproc_end(void* g, const GoFn* fn, void* p);
// newproc_abort() recycles a G whose entry could not be constructed.
void newproc_abort(void* g);

template <class Fn>
struct GoFnFor {
  static void invoke(void* p) { (*static_cast<Fn*>(p))(); }
  static void destroy_inline(void* p) { static_cast<Fn*>(p)->~Fn(); }
  static void destroy_heap(void* p) { delete static_cast<Fn*>(p); }
  static constexpr GoFn inline_ops{invoke, destroy_inline, false};
  static constexpr GoFn heap_ops{invoke, destroy_heap, true};
};

// run_main() runs invoke(fn) as goroutine 1 and returns once it returned; fn
// stays the caller's (it outlives the call), so it is never copied or moved.
int run_main(void (*invoke)(void* fn), void* fn, const Options& opts);
void sleep_ns(std::int64_t ns);
void entersyscall();
void exitsyscall();

}  // namespace detail

// go() starts fn() as a new goroutine, as Go's `go` statement.
template <class F>
void go(const GoOptions& opts, F&& fn) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "gort::go needs a callable taking no arguments");
  void* g = nullptr;
  void* room = detail::newproc_begin(&opts, sizeof(Fn), alignof(Fn), &g);
  try {
    if (room != nullptr) {
      ::new (room) Fn(std::forward<F>(fn));
      detail::newproc_end(g, &detail::GoFnFor<Fn>::inline_ops, room);
    } else {
      detail::newproc_end(g, &detail::GoFnFor<Fn>::heap_ops, new Fn(std::forward<F>(fn)));
    }
  } catch (...) {
    detail::newproc_abort(g);
    throw;
  }
}

// go() with default options.
template <class F>
void go(F&& fn) {
  static const GoOptions defaults{};
  go(defaults, std::forward<F>(fn));
}

// main() starts the runtime with opts, runs fn as goroutine 1 and returns 0 when
// fn returns. Other goroutines are abandoned, as in Go. A configuration error
// exits with status 2. It may be called again after it returned (the runtime
// stays up); not concurrently. fn may be any callable taking no arguments,
// move-only or not movable at all: it is called where it is.
template <class F>
int main(F&& fn, const Options& opts = {}) {
  using Fn = std::remove_reference_t<F>;
  static_assert(std::is_invocable_v<Fn&>, "gort::main needs a callable taking no arguments");
  return detail::run_main([](void* p) { (*static_cast<Fn*>(p))(); },
                          const_cast<void*>(static_cast<const void*>(std::addressof(fn))), opts);
}

// yield() lets other goroutines run, as runtime.Gosched.
void yield();

// sleep() blocks the calling goroutine (or thread) for at least d.
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  detail::sleep_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// goexit() ends the calling goroutine after running its destructors and deferred
// calls, by unwinding its stack (so a `catch (...)` on the way must rethrow).
// In goroutine 1, as in Go, gort::main does not return: the other goroutines go
// on, and once none is left the program dies with "fatal error: no goroutines
// (main called runtime.Goexit) - deadlock!".
[[noreturn]] void goexit();

// morestack() makes sure the calling goroutine has at least bytes of stack
// below its stack pointer, moving a relocatable goroutine's stack now rather
// than in the middle of the deep call it is about to make. A no-op on stable
// stacks and off goroutines.
void morestack(std::size_t bytes);

// goid() is the calling goroutine's id (goroutine 1 runs main's fn); 0 off goroutines.
std::uint64_t goid();

// syscall() runs fn, a call that may block its thread (a blocking read, a lock
// held by a plain thread, a slow library), and returns its result. If it takes
// longer than ~20 us, sysmon hands this goroutine's processor to another thread
// so other goroutines keep running.
template <class F>
decltype(auto) syscall(F&& fn) {
  struct Guard {
    Guard() { detail::entersyscall(); }
    ~Guard() { detail::exitsyscall(); }
  } guard;
  return std::forward<F>(fn)();
}

}  // namespace gort
