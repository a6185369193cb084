// Goroutine headers and backtraces, and the record of where exceptions are thrown.
//
// Where was it thrown? By the time run_goroutine catches an exception escaping a
// goroutine, the frames that threw it are unwound and their stack reused by the
// destructors that ran. So the library defines __cxa_throw, which every throw
// expression calls: it records the frame-pointer backtrace of the throw (PCs
// only, in a per-thread record: a throw may not allocate) and calls the C++
// runtime's own __cxa_throw, found once with dlsym(RTLD_NEXT). This interposes
// because the executable linking the static library comes first in the dynamic
// linker's lookup order, so libstdc++'s own throws (std::vector::at) reach it
// through their PLT too; under ASan the next __cxa_throw is ASan's interceptor,
// which calls libstdc++'s. It is defined here, in a file without throw
// expressions and without <cxxabi.h>: g++ declares __cxa_throw itself, with
// void* for the type, in a file that throws.
#include "sched/traceback.hpp"

#include <dlfcn.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "stack/fault.hpp"

namespace gort::rt {

namespace {

// How much of a parked goroutine's stack traceback_parked copies, from its saved
// stack pointer up: enough for dozens of ordinary frames. Deeper frames are cut.
constexpr std::size_t kParkedCopy = 64 * 1024;

Lock scratchlock;  // guards scratch
alignas(16) unsigned char scratch[kParkedCopy];

// initial-exec: __cxa_throw must not allocate.
__attribute__((tls_model("initial-exec"))) thread_local ThrowRecord throwrec;

using CxaThrow = void (*)(void*, void*, void (*)(void*));

extern "C" void __cxa_throw(void* obj, void* type, void (*dest)(void*));

// cxa_throw_next() is the C++ runtime's __cxa_throw, the one ours hides.
CxaThrow cxa_throw_next() {
  static const CxaThrow next = [] {
    auto f = reinterpret_cast<CxaThrow>(dlsym(RTLD_NEXT, "__cxa_throw"));
    if (f == nullptr || f == &__cxa_throw) {
      fatal("gort: cannot find the C++ runtime's __cxa_throw (is libstdc++ linked statically?)");
    }
    return f;
  }();
  return next;
}

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

const ThrowRecord& lastthrow() { return throwrec; }

const char* waitreason_name(WaitReason r) {
  switch (r) {
    case WaitReason::none: return "";
    case WaitReason::chan_receive: return "chan receive";
    case WaitReason::chan_send: return "chan send";
    case WaitReason::select: return "select";
    case WaitReason::select_no_cases: return "select (no cases)";
    case WaitReason::sleep: return "sleep";
    case WaitReason::io_wait: return "IO wait";
    case WaitReason::io_wait_accept: return "IO wait (accept)";
    case WaitReason::sync_mutex_lock: return "sync.Mutex.Lock";
    case WaitReason::sync_rwmutex_lock: return "sync.RWMutex.Lock";
    case WaitReason::sync_rwmutex_rlock: return "sync.RWMutex.RLock";
    case WaitReason::sync_waitgroup_wait: return "sync.WaitGroup.Wait";
    case WaitReason::sync_cond_wait: return "sync.Cond.Wait";
    case WaitReason::semaphore_acquire: return "semaphore acquire";
  }
  return "?";
}

void print_goroutine_header(Printer& out, const G* gp) {
  const Gstatus s = gp->status.load(std::memory_order_relaxed);
  out.str("goroutine ").dec(gp->goid).str(" [");
  if (s == Gstatus::waiting && gp->waitreason != WaitReason::none) {
    out.str(waitreason_name(gp->waitreason));
    const std::int64_t mins = (nanotime_coarse() - gp->waitsince) / 60'000'000'000;
    if (mins > 0) out.str(", ").sdec(mins).str(" minutes");
  } else {
    out.str(status_name(s));
  }
  out.str("]");
  if (!gp->name.empty()) out.str(" \"").str(gp->name).str("\"");
  out.str(":\n");
}

void print_goroutine_stack(Printer& out, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t sp) {
  out.str("stack=[").hex(lo).str(", ").hex(hi).str("] ").dec(hi - lo).str(" bytes");
  if (sp >= lo && sp < hi) out.str(", ").dec(hi - sp).str(" used");
  out.str("\n");
}

__attribute__((noinline)) void traceback_here(Printer& out, const G* gp) {
  auto fp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  auto pc = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  // Start at our caller: its return address is in our frame.
  const auto* f = reinterpret_cast<const std::uintptr_t*>(fp);
  print_backtrace(out, pc, f[0], gp->stack.lo, gp->stack.hi);
}

void traceback_parked(Printer& out, const G* gp) {
  // Nothing stops gp meanwhile: it may be readied and run on another M, exit,
  // and have its stack freed (a stack of a non-default size is, and under
  // stackfaultonfree it is faulted, so a plain read would crash the process we
  // only meant to inspect). So the used part of the stack is copied with
  // process_vm_readv, which fails with EFAULT where a read would fault, and the
  // frames are walked in the copy. A goroutine that ran meanwhile prints a
  // garbled backtrace, never a crash.
  const std::uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
  const auto sp = reinterpret_cast<std::uintptr_t>(gp->ctx.sp);
  print_goroutine_stack(out, lo, hi, sp);
  if (sp < lo || sp + sizeof(SwitchFrame) > hi) return;  // it is running again
  std::lock_guard lk(scratchlock);
  const std::size_t want = std::min<std::size_t>(hi - sp, kParkedCopy);
  iovec local{scratch, want};
  iovec remote{reinterpret_cast<void*>(sp), want};
  const ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (got < static_cast<ssize_t>(sizeof(SwitchFrame))) {
    out.str("(stack not readable: ").str(got < 0 ? std::strerror(errno) : "short read").str(")\n");
    return;
  }
  const auto* f = reinterpret_cast<const SwitchFrame*>(scratch);
  const auto copy = reinterpret_cast<std::uintptr_t>(scratch);
  print_backtrace(out, f->pc, f->rbp, sp, sp + static_cast<std::uintptr_t>(got),
                  static_cast<std::intptr_t>(copy - sp));
}

}  // namespace gort::rt

// __cxa_throw records where the exception is thrown, then throws it (see the top
// of the file). Cheap on any thread; off goroutine stacks it records nothing.
extern "C" void __cxa_throw(void* obj, void* type, void (*dest)(void*)) {
  using namespace gort::rt;
  if (const StackOwner* g = getowner(); g != nullptr) {
    ThrowRecord& r = throwrec;
    r.g = g;
    r.goid = g->goid;
    r.obj = obj;
    r.type = static_cast<const std::type_info*>(type);
    // Our frame's return address is in the function that throws.
    r.n = callers(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)), g->stack.lo, g->stack.hi,
                  r.pcs, kThrowFrames + 1);
  }
  cxa_throw_next()(obj, type, dest);
  __builtin_unreachable();
}
