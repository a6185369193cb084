// copystack: moving a relocatable goroutine's stack to a larger region, named
// as in Go's runtime/stack.go (copystack, adjustpointers, morestack).
//
// Go knows where every pointer on a stack is (stack maps); C++ frames carry no
// such maps, so the copy adjusts conservatively: every aligned word in the
// copied range whose value lies in the old region (guard included) is moved by
// the distance between the regions, and so is every general-purpose and SSE
// register of the interrupted code. The locations outside the stack that may
// point into it are adjusted precisely: the owner's fields, through
// adjust_owner (the scheduler's: GORT_DEFER chain, waiter records, goroutine-
// local slots, sanitizer bounds). What that cannot reach (a pointer kept on
// the heap or another stack) is the contract of docs/stacks.md "The contract".
//
// Growth is fault-driven: the handler (fault.cpp) calls stackgrow_fault when a
// relocatable goroutine touches its guard, and returns into the copied frames.
// It may have interrupted anything, malloc and runtime locks included, so
// everything here is async-signal-safe: no lock, no heap, no logger.
#pragma once

#include <ucontext.h>

#include <cstdint>

#include "gort/stats.hpp"
#include "stack/stack.hpp"

namespace gort::rt {

// A move: a pointer p with lo <= p <= hi (the old region, guard included, and
// one past its top) becomes p + delta.
struct StackMove {
  std::uintptr_t lo = 0, hi = 0;
  std::intptr_t delta = 0;
  // adjust() moves w if it points into the old region; says whether it did.
  bool adjust(std::uintptr_t& w) const {
    if (w - lo > hi - lo) return false;
    w += static_cast<std::uintptr_t>(delta);
    return true;
  }
};

// adjust_owner is the scheduler's part of a move (Go's adjustdefers,
// adjustsudogs, ...): it adjusts the fields of g outside its stack that may
// point into it and records nw as g's bounds where it keeps them. Set once by
// schedinit before any goroutine runs; called in the fault handler.
extern void (*adjust_owner)(StackOwner* g, const StackMove& mv, const Stack& nw);

// The red zone of the x86-64 System V ABI: a leaf function may keep live data
// in the 128 bytes below its stack pointer, so a copy starts there.
constexpr std::uintptr_t kRedZone = 128;

// copystack() moves g's stack, which g runs on and whose frames end at sp, to
// a fresh copying region of newsize bytes, adjusts every pointer into the old
// one it can find (the copied words, the registers in mc if not null, the
// owner's fields), and frees the old region through stackfree. Invariant 1 of
// stack.hpp holds after it, as after any stackalloc/stackfree pair.
// Async-signal-safe.
void copystack(StackOwner* g, std::size_t newsize, std::uintptr_t sp, mcontext_t* mc);

// stackgrow_fault() handles a touch at addr of the guard of g's copying stack:
// it grows the stack by doubling until the frames and addr fit with a page to
// spare (or g->stackneed, set by morestack, below sp), rewrites the registers
// in uc, and returns true; the faulting instruction then re-runs on the new
// stack. Returns false when that would pass stack.copying_max (the caller
// reports the overflow). A fault while g->nomove is set is a fatal error naming
// the runtime path. Async-signal-safe.
bool stackgrow_fault(StackOwner* g, ucontext_t* uc, std::uintptr_t addr);

// copystack_stats() adds the copy counters to st.
void copystack_stats(StackStats& st);

}  // namespace gort::rt
