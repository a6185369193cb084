// GORT_DEFER: Go's defer statement for C++ scopes.
//
//   gort::Mutex mu;
//   mu.lock();
//   GORT_DEFER(mu.unlock());
//   GORT_DEFER(log("done"); wg.done());
//
// The statements run when the enclosing scope exits: normally, while an
// exception (a panic) unwinds it, or while gort::goexit ends the goroutine.
// Several run last-in first-out, interleaved with destructors in C++'s usual
// reverse order of construction. Differences from Go:
//  - The statements capture everything by reference and see the values at scope
//    exit; Go evaluates a deferred call's arguments at the defer statement. Copy
//    a value into a local first to defer with it.
//  - They belong to the enclosing block, not the function.
//  - They must not throw (a destructor cannot): an exception escaping them is a
//    fatal panic, "panic: <what()> [thrown by a deferred call]", status 2, and so
//    is gort::goexit called in them. `return` in them ends the statements only.
//
// On a goroutine each record lives on its stack and is linked from the G,
// innermost first, so the runtime can find every record on a stack (the
// planned copying stacks will adjust them when a stack moves). A record must
// therefore stay on the
// goroutine's stack where it was made: not in a C++20 coroutine frame, which may
// resume on another goroutine; a record unlinked out of order is a fatal error.
// Off goroutines (plain threads) GORT_DEFER works the same, unlinked.
#pragma once

#include <utility>

namespace gort::detail {

// A deferred call's record. Layout known to the runtime (G::defers).
struct DeferRecord {
  DeferRecord* link = nullptr;  // the next outer record of the goroutine
  void** head = nullptr;        // &G::defers of its goroutine; nullptr off goroutines
};

// defer_head() is &G::defers of the calling goroutine, nullptr off goroutines.
void** defer_head() noexcept;
// defer_misuse() is the fatal error for a record unlinked out of order.
[[noreturn]] void defer_misuse() noexcept;
// defer_threw() reports the exception escaping deferred statements as a fatal
// panic. Precondition: called in a catch (...) handler.
[[noreturn]] void defer_threw() noexcept;

template <class F>
class Defer : DeferRecord {
 public:
  explicit Defer(F&& fn) : fn_(std::move(fn)) {
    head = defer_head();
    if (head != nullptr) {
      link = static_cast<DeferRecord*>(*head);
      *head = static_cast<DeferRecord*>(this);
    }
  }
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;

  // Unlinked before the statements run, as Go pops a defer before calling it, so
  // records they make themselves link in the right place.
  ~Defer() {
    if (head != nullptr) {
      if (*head != static_cast<DeferRecord*>(this)) defer_misuse();
      *head = link;
    }
    try {
      fn_();
    } catch (...) {
      defer_threw();
    }
  }

 private:
  F fn_;
};

}  // namespace gort::detail

#define GORT_DEFER_CONCAT2(a, b) a##b
#define GORT_DEFER_CONCAT(a, b) GORT_DEFER_CONCAT2(a, b)
// GORT_DEFER(statements); runs the statements at scope exit (see above).
#define GORT_DEFER(...) \
  ::gort::detail::Defer GORT_DEFER_CONCAT(gort_defer_, __COUNTER__)([&]() { __VA_ARGS__; })
