// The scheduler's side of relocatable goroutines (stack/copystack.hpp): what
// of a G points into its stack, and the runtime paths where it must not move.
#pragma once

#include "sched/runtime.hpp"
#include "stack/copystack.hpp"

namespace gort::rt {

// Stack a runtime path needs below the caller's frame from the moment it links
// a record on the goroutine's stack (a waiter, an I/O operation) until it is
// off that stack: the park, the switch and the scheduling done on the way,
// measured at under 1 KiB (docs/stacks.md "Runtime paths"), twice that for
// safety. A relocatable goroutine with less grows before it links anything.
constexpr std::size_t kRuntimeHeadroom = 2048;

// nomove_enter() gives gp kRuntimeHeadroom and marks it as inside path
// (StackOwner::nomove). Precondition: gp runs on a copying stack.
void nomove_enter(G* gp, const char* path);

// NoMove marks the scope of a runtime path in which records outside the
// goroutine's stack point into it: a guard fault there is a fatal error naming
// path instead of a move that would leave them dangling. On a stable stack, or
// off goroutines (gp null), it costs one test.
class NoMove {
 public:
  NoMove(G* gp, const char* path) : gp_(gp != nullptr && gp->stack.kind == StackKind::copying ? gp : nullptr) {
    if (gp_ != nullptr) [[unlikely]] {
      prev_ = gp_->nomove;
      nomove_enter(gp_, path);
    }
  }
  ~NoMove() {
    if (gp_ != nullptr) [[unlikely]] gp_->nomove = prev_;
  }
  NoMove(const NoMove&) = delete;
  NoMove& operator=(const NoMove&) = delete;

 private:
  G* gp_;
  const char* prev_ = nullptr;
};

// adjust_g() is copystack's adjust_owner for a G: the fields that may point
// into its stack, and the bounds its context keeps for the sanitizers and
// valgrind. Async-signal-safe.
void adjust_g(StackOwner* g, const StackMove& mv, const Stack& nw);

}  // namespace gort::rt
