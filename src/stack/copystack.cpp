// copystack and fault-driven growth (copystack.hpp). Async-signal-safe
// throughout: see the header.
#include "stack/copystack.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "base/print.hpp"
#include "mem/sys.hpp"
#include "stack/fault.hpp"
#include "stack/stackpool.hpp"

namespace gort::rt {

void (*adjust_owner)(StackOwner* g, const StackMove& mv, const Stack& nw) = nullptr;

namespace {

// Counters for stack_stats(): relaxed atomics, which are signal-safe; a copy
// costs far more than their adds.
std::atomic<std::uint64_t> ncopies{0}, copied_bytes{0}, adjusted_words{0}, copy_ns{0};

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The general-purpose registers that may hold a pointer (all but rip, flags and
// the segment, error and trap words).
constexpr int kPointerRegs[] = {REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
                                REG_RDI, REG_RSI, REG_RBP, REG_RBX, REG_RDX, REG_RAX, REG_RCX, REG_RSP};

// adjustregs() adjusts the interrupted code's registers: the general ones, and
// each 8-byte lane of the SSE registers (compilers copy pointer pairs through
// them). The upper halves of AVX registers live in the extended save area and
// are not adjusted (docs/stacks.md "The contract").
std::uint64_t adjustregs(mcontext_t* mc, const StackMove& mv) {
  std::uint64_t n = 0;
  for (int r : kPointerRegs) {
    auto w = static_cast<std::uintptr_t>(mc->gregs[r]);
    if (mv.adjust(w)) {
      mc->gregs[r] = static_cast<greg_t>(w);
      n++;
    }
  }
  if (mc->fpregs != nullptr) {
    for (auto& x : mc->fpregs->_xmm) {
      std::uintptr_t lane[2];
      std::memcpy(lane, x.element, sizeof lane);
      const bool a = mv.adjust(lane[0]), b = mv.adjust(lane[1]);
      if (a || b) {
        std::memcpy(x.element, lane, sizeof lane);
        n += a + b;
      }
    }
  }
  return n;
}

}  // namespace

void copystack(StackOwner* g, std::size_t newsize, std::uintptr_t sp, mcontext_t* mc) {
  const std::int64_t t0 = now_ns();
  const Stack old = g->stack;
  const Stack nw = stackalloc_copying(g, newsize);
  const StackMove mv{old.base(), old.hi, static_cast<std::intptr_t>(nw.hi - old.hi)};
  // The frames: from the red zone below sp to the top. A fault on the way down
  // can leave sp inside the guard, where nothing was written.
  const std::uintptr_t from = std::max(old.lo, (sp - kRedZone) & ~std::uintptr_t{7});
  const std::size_t words = (old.hi - from) / sizeof(std::uintptr_t);
  const auto* src = reinterpret_cast<const std::uintptr_t*>(from);
  auto* dst = reinterpret_cast<std::uintptr_t*>(nw.hi) - words;
  // Copy and adjust in one pass (adjustpointers), conservatively: any word
  // that looks like a pointer into the old region is one.
  std::uint64_t adjusted = 0;
  for (std::size_t i = 0; i < words; i++) {
    std::uintptr_t w = src[i];
    adjusted += mv.adjust(w);
    dst[i] = w;
  }
  if (mc != nullptr) adjusted += adjustregs(mc, mv);
  g->stack = nw;
  if (adjust_owner != nullptr) adjust_owner(g, mv, nw);
  // The backtrace of the move, for the report of a later touch of the old
  // region (stackfaultonfree keeps it no-access for ever).
  StackMoveRecord rec;
  StackMoveRecord* recp = nullptr;
  if (stack_debug().faultonfree) {
    rec.newlo = nw.lo;
    rec.newhi = nw.hi;
    if (mc != nullptr) {
      rec.pcs[0] = static_cast<std::uintptr_t>(mc->gregs[REG_RIP]);
      // The frame chain as it was, read from the old copy before it goes.
      rec.npcs = 1 + callers(static_cast<std::uintptr_t>(mc->gregs[REG_RBP]) - static_cast<std::uintptr_t>(mv.delta),
                             old.lo, old.hi, rec.pcs + 1, kMoveFrames - 1);
    }
    recp = &rec;
  }
  const int level = stackdebug_level();
  stackfree_moved(g, old, "moved by copystack", recp);
  if (level > 0) {
    Printer(2).str("copystack: goroutine ").dec(g->goid).str(" [").hex(old.lo).str(", ").hex(old.hi)
        .str(") -> [").hex(nw.lo).str(", ").hex(nw.hi).str("), copied ").dec(words * sizeof(std::uintptr_t))
        .str(" bytes, adjusted ").dec(adjusted).str(" words\n");
  }
  ncopies.fetch_add(1, std::memory_order_relaxed);
  copied_bytes.fetch_add(words * sizeof(std::uintptr_t), std::memory_order_relaxed);
  adjusted_words.fetch_add(adjusted, std::memory_order_relaxed);
  copy_ns.fetch_add(static_cast<std::uint64_t>(now_ns() - t0), std::memory_order_relaxed);
}

bool stackgrow_fault(StackOwner* g, ucontext_t* uc, std::uintptr_t addr) {
  mcontext_t* mc = &uc->uc_mcontext;
  const Stack& s = g->stack;
  const auto sp = static_cast<std::uintptr_t>(mc->gregs[REG_RSP]);
  // What must fit: the frames down to the lower of sp and the address touched,
  // plus a page, or what morestack asked for below sp.
  std::size_t need = s.hi - std::min(sp, addr) + kPageSize;
  if (g->stackneed != 0) need = std::max(need, s.hi - sp + g->stackneed);
  g->stackneed = 0;
  std::size_t n = s.size() * 2;
  while (n < need) n *= 2;
  if (n > copying_geom.max) return false;
  if (g->nomove != nullptr) {
    Printer out(2);
    out.str("runtime: goroutine ").dec(g->goid).str(" ran out of its ").dec(s.size())
        .str("-byte stack in ").str(g->nomove)
        .str(", where the stack cannot move (records outside it point into it)\n");
    out.str("runtime: sp=").hex(sp).str(" stack=[").hex(s.lo).str(", ").hex(s.hi).str("]\n");
    out.flush();
    fatal("stack growth in a runtime path that must not move the stack");
  }
  copystack(g, n, sp, mc);
  return true;
}

void copystack_stats(StackStats& st) {
  st.copies = ncopies.load(std::memory_order_relaxed);
  st.copy_bytes = copied_bytes.load(std::memory_order_relaxed);
  st.copy_words_adjusted = adjusted_words.load(std::memory_order_relaxed);
  st.copy_ns = copy_ns.load(std::memory_order_relaxed);
}

}  // namespace gort::rt
