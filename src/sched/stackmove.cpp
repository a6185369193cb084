// The scheduler's side of relocatable goroutines (stackmove.hpp).
#include "sched/stackmove.hpp"

#include "gort/go.hpp"
#include "stack/copystack.hpp"

namespace gort::rt {

namespace {

template <class T>
void adjustptr(T*& p, const StackMove& mv) {
  auto w = reinterpret_cast<std::uintptr_t>(p);
  if (mv.adjust(w)) p = reinterpret_cast<T*>(w);
}

}  // namespace

void adjust_g(StackOwner* g, const StackMove& mv, const Stack& nw) {
  auto* gp = static_cast<G*>(g);
  // The innermost GORT_DEFER record; the records link each other on the stack,
  // which the copy adjusted (Go's adjustdefers).
  adjustptr(gp->defers, mv);
  // Waiter records live on the stack but are linked only while the goroutine
  // parks, when it never moves (NoMove covers the linking); adjusted anyway,
  // as Go's adjustsudogs.
  adjustptr(gp->waiting, mv);
  for (void*& slot : gp->gls) adjustptr(slot, mv);
  for (void*& w : gp->ehstate) adjustptr(w, mv);
  adjustptr(gp->ctx.sp, mv);
  context_stack_moved(gp->ctx, nw.lo, nw.hi);
}

void nomove_enter(G* gp, const char* path) {
  gort::morestack(kRuntimeHeadroom);
  gp->nomove = path;
}

}  // namespace gort::rt

namespace gort {

void morestack(std::size_t bytes) {
  rt::G* gp = rt::getgp();
  if (gp == nullptr || gp->stack.kind != rt::StackKind::copying) return;
  const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (sp - gp->stack.lo >= bytes) return;
  // Ask the fault handler for the room (stackgrow_fault reads stackneed) by
  // touching the guard: the load re-runs on the new stack, its address
  // register adjusted into it.
  gp->stackneed = bytes;
  (void)*reinterpret_cast<const volatile char*>(gp->stack.lo - 1);
}

}  // namespace gort
