#include "sched/traceback.hpp"

#include "stack/fault.hpp"

namespace gort::rt {

namespace {

const char* status_name(Gstatus s) {
  switch (s) {
    case Gstatus::idle: return "idle";
    case Gstatus::runnable: return "runnable";
    case Gstatus::running: return "running";
    case Gstatus::syscall: return "syscall";
    case Gstatus::waiting: return "waiting";
    case Gstatus::dead: return "dead";
  }
  return "?";
}

}  // namespace

void print_goroutine_header(Printer& out, const G* gp) {
  const Gstatus s = gp->status.load(std::memory_order_relaxed);
  out.str("goroutine ").dec(gp->goid).str(" [");
  if (s == Gstatus::waiting && gp->waitreason[0] != 0) {
    out.str(gp->waitreason);
    const std::int64_t mins = (nanotime() - gp->waitsince) / 60'000'000'000;
    if (mins > 0) out.str(", ").sdec(mins).str(" minutes");
  } else {
    out.str(status_name(s));
  }
  out.str("]");
  if (!gp->name.empty()) out.str(" \"").str(gp->name).str("\"");
  out.str(":\n");
}

__attribute__((noinline)) void traceback_here(Printer& out, const G* gp) {
  auto fp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  // Start at our caller: its return address is in our frame.
  const auto* f = reinterpret_cast<const std::uintptr_t*>(fp);
  print_backtrace(out, pc, f[0], gp->stack.lo, gp->stack.hi);
}

void traceback_parked(Printer& out, const G* gp) {
  const auto* f = static_cast<const SwitchFrame*>(gp->ctx.sp);
  if (f == nullptr) return;
  print_backtrace(out, f->pc, f->rbp, gp->stack.lo, gp->stack.hi);
}

}  // namespace gort::rt
