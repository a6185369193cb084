// The fault handler. Everything reachable from on_fault must be
// async-signal-safe: no malloc, no stdio, no spdlog, no locks that a faulting
// thread could hold. Output goes through Printer (write(2)); names, files and
// lines come from the tables symtab_init() built at start-up (base/symtab.hpp)
// and libiberty's callback demangler, which allocates nothing.
#include "stack/fault.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>

#include "base/print.hpp"
#include "base/symtab.hpp"
#include "mem/sys.hpp"
#include "stack/copystack.hpp"

// libiberty's allocation-free demangler (Debian libiberty-dev). Declared here:
// its demangle.h drags in libiberty.h, whose basename() clashes with glibc's.
extern "C" int cplus_demangle_v3_callback(const char* mangled, int options,
                                          void (*callback)(const char*, std::size_t, void*),
                                          void* opaque);
constexpr int DMGL_PARAMS = 1 << 0;  // demangle.h: include function arguments
constexpr int DMGL_ANSI = 1 << 1;    // demangle.h: include const, volatile

namespace gort::rt {

namespace {

// 64 KiB of signal stack: docs/kernel.md measured the handler's classification on 64
// KiB; demangling a long name takes a few KiB of it. A guard page below it turns
// an overflow of the signal stack itself into a plain crash.
constexpr std::size_t kSigStackSize = 64 * 1024;

// Frames printed in a report; Go prints 100, and a runaway recursion's frames
// are all alike.
constexpr int kMaxFrames = 64;

// initial-exec: reading these from the handler must not allocate (a dlopen'd
// library's TLS is allocated lazily on first touch).
__attribute__((tls_model("initial-exec"))) thread_local std::uintptr_t tls_sigstack = 0;
// The thread's own stack, for backtraces of faults outside goroutine stacks.
__attribute__((tls_model("initial-exec"))) thread_local std::uintptr_t tls_stack_lo = 0;
__attribute__((tls_model("initial-exec"))) thread_local std::uintptr_t tls_stack_hi = 0;

struct sigaction old_segv, old_bus;

// The freed-stack record: chunks linked newest first, appended and read without
// locks (copystack frees stacks in the fault handler, which may have
// interrupted an append). An appender reserves an entry with a fetch_add on its
// chunk's count and publishes it with the release store of its ready flag; a
// full chunk is replaced by a new one with a CAS of the head.
struct FreedEntry {
  std::uintptr_t base, lo, hi;
  std::uint64_t goid;
  const char* why;
  StackMoveRecord moved;  // newhi 0: freed, not moved
  std::atomic<bool> ready;
};
struct FreedChunk {
  static constexpr std::size_t kCap = ((1 << 20) - 64) / sizeof(FreedEntry);
  FreedChunk* next;
  std::atomic<std::size_t> reserved;
  FreedEntry e[kCap];
};
std::atomic<FreedChunk*> freed_head{nullptr};

const FreedEntry* find_freed(std::uintptr_t addr) {
  for (FreedChunk* c = freed_head.load(std::memory_order_acquire); c != nullptr; c = c->next) {
    const std::size_t n = std::min(c->reserved.load(std::memory_order_acquire), FreedChunk::kCap);
    for (std::size_t i = 0; i < n; i++) {
      const FreedEntry& e = c->e[i];
      if (e.ready.load(std::memory_order_acquire) && addr >= e.base && addr < e.hi) return &e;
    }
  }
  return nullptr;
}

void demangled_piece(const char* s, std::size_t n, void* p) {
  static_cast<Printer*>(p)->str(std::string_view(s, n));
}

// print_frame() prints one frame Go style: the function, then its file:line and
// the pc's offset in the function, or where there is no line information, the
// module and the pc's offset in it (for addr2line).
void print_frame(Printer& out, std::uintptr_t pc, bool return_address) {
  // A return address points after the call; look up the call itself.
  const std::uintptr_t look = return_address ? pc - 1 : pc;
  SymFrame f;
  if (!symtab_lookup(look, f)) {
    // An object symtab_init() did not index (loaded after start-up, or its
    // file unreadable): what the dynamic symbol table knows.
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(look), &info) != 0) {
      f.module = info.dli_fname;
      f.bias = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
      f.func = info.dli_sname;
      f.func_pc = reinterpret_cast<std::uintptr_t>(info.dli_saddr);
    }
  }
  if (f.func == nullptr) {
    out.str("?()");
  } else if (cplus_demangle_v3_callback(f.func, DMGL_PARAMS | DMGL_ANSI, demangled_piece, &out) == 0) {
    out.str(f.func);
  }
  out.str("\n\t");
  if (f.file != nullptr) {
    if (f.dir != nullptr) out.str(f.dir).str("/");
    out.str(f.file).str(":").dec(f.line);
    if (f.func != nullptr) out.str(" +").hex(pc - f.func_pc);
  } else {
    out.str(f.module != nullptr ? f.module : "?");
    if (f.module != nullptr) out.str("+").hex(pc - f.bias);
  }
  out.str(" pc=").hex(pc).str("\n");
}

void print_goroutine(Printer& out, const StackOwner* g, std::uintptr_t pc, std::uintptr_t fp) {
  if (g != nullptr) {
    out.str("goroutine ").dec(g->goid).str(" [running]:\n");
    print_backtrace(out, pc, fp, g->stack.lo, g->stack.hi);
  } else {
    out.str("thread [running]:\n");
    print_backtrace(out, pc, fp, tls_stack_lo, tls_stack_hi);
  }
}

// chain() hands a fault that is not ours to the handler installed before us.
void chain(int sig, siginfo_t* si, void* uctx) {
  const struct sigaction& old = sig == SIGBUS ? old_bus : old_segv;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction != nullptr) {
    old.sa_sigaction(sig, si, uctx);
    return;
  }
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
    return;
  }
  // Default action: restore it; returning re-runs the faulting instruction,
  // which now kills the process as if we had never been installed.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  if (si->si_code <= 0) raise(sig);  // sent by kill(): nothing will re-fault
}

void on_fault(int sig, siginfo_t* si, void* uctx) {
  int saved_errno = errno;
  auto* uc = static_cast<ucontext_t*>(uctx);
  const std::uintptr_t addr = reinterpret_cast<std::uintptr_t>(si->si_addr);
  const std::uintptr_t sp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
  const std::uintptr_t pc = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const std::uintptr_t fp = static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
  const StackOwner* g = getowner();

  if (sig == SIGSEGV && g != nullptr) {
    const Stack& s = g->stack;
    auto in_guard = [&](std::uintptr_t a) { return a >= s.lo - s.guard && a < s.lo; };
    if (in_guard(addr) || in_guard(sp)) {
      // A relocatable goroutine's stack grows here (copystack.hpp); past
      // stack.copying_max it overflows as a stable one does past its size.
      if (s.kind == StackKind::copying && stackgrow_fault(const_cast<StackOwner*>(g), uc, addr)) {
        errno = saved_errno;
        return;
      }
      Printer out(2);
      out.str("runtime: goroutine ").dec(g->goid).str(" stack exceeds ")
          .dec(s.kind == StackKind::copying ? copying_geom.max : s.size()).str("-byte limit\n");
      out.str("runtime: sp=").hex(sp).str(" stack=[").hex(s.lo).str(", ").hex(s.hi).str("]\n");
      out.str("fatal error: stack overflow\n\n");
      print_goroutine(out, g, pc, fp);
      out.flush();
      exit_fatal();
    }
  }
  if (const FreedEntry* e = find_freed(addr)) {
    Printer out(2);
    const bool moved = e->moved.newhi != 0;
    out.str("unexpected fault address ").hex(addr).str("\n");
    out.str(moved ? "fatal error: use of moved stack\n\n" : "fatal error: use of freed stack\n\n");
    out.str(moved ? "runtime: the address is in the old stack of goroutine " : "runtime: the address is in the stack of goroutine ")
        .dec(e->goid).str(", [").hex(e->lo).str(", ").hex(e->hi).str(") ").dec(e->hi - e->lo).str(" bytes, ")
        .str(e->why);
    if (moved) {
      out.str(" to [").hex(e->moved.newlo).str(", ").hex(e->moved.newhi).str(") (stackfaultonfree); a pointer "
              "into the old stack outlived the move (docs/stacks.md \"The contract\"). The stack moved at:\n");
      print_frames(out, e->moved.pcs, e->moved.npcs, kMoveFrames);
      out.str("\n");
    } else {
      out.str(" (stackfaultonfree)\n\n");
    }
    print_goroutine(out, g, pc, fp);
    out.flush();
    exit_fatal();
  }
  errno = saved_errno;
  chain(sig, si, uctx);
}

}  // namespace

int callers(std::uintptr_t fp, std::uintptr_t lo, std::uintptr_t hi, std::uintptr_t* pcs, int max,
            std::intptr_t delta) {
  int n = 0;
  while (n < max && fp >= lo && fp + 16 <= hi && (fp & 7) == 0) {
    const auto* f = reinterpret_cast<const std::uintptr_t*>(fp + static_cast<std::uintptr_t>(delta));
    std::uintptr_t ret = f[1], next = f[0];
    if (ret == 0) break;
    pcs[n++] = ret;
    if (next <= fp) break;  // the chain must climb towards the top of the stack
    fp = next;
  }
  return n;
}

void print_frames(Printer& out, const std::uintptr_t* pcs, int n, int max) {
  for (int i = 0; i < n && i < max; i++) print_frame(out, pcs[i], true);
  if (n > max) out.str("...additional frames elided...\n");
}

void print_backtrace(Printer& out, std::uintptr_t pc, std::uintptr_t fp, std::uintptr_t lo,
                     std::uintptr_t hi, std::intptr_t delta) {
  std::uintptr_t pcs[kMaxFrames];
  const int n = callers(fp, lo, hi, pcs, kMaxFrames, delta);
  print_frame(out, pc, false);
  print_frames(out, pcs, n, kMaxFrames - 1);
}

void fault_install() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) != 0 || sigaction(SIGBUS, &sa, &old_bus) != 0) {
      fatal("fault_install: sigaction failed");
    }
  });
}

void minit_signalstack() {
  if (tls_sigstack != 0) return;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    tls_stack_lo = reinterpret_cast<std::uintptr_t>(addr);
    tls_stack_hi = tls_stack_lo + size;
  }
  void* p = SysAlloc(kPageSize + kSigStackSize);
  if (p == nullptr) fatal("minit: cannot allocate the signal stack");
  if (!SysGuardInstall(p, kPageSize)) fatal("minit: cannot guard the signal stack");
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(p) + kPageSize;
  ss.ss_size = kSigStackSize;
  if (sigaltstack(&ss, nullptr) != 0) fatal("minit: sigaltstack failed");
  tls_sigstack = reinterpret_cast<std::uintptr_t>(p);
}


void fault_record_freed(const Stack& s, std::uint64_t goid, const char* why, const StackMoveRecord* moved) {
  for (;;) {
    FreedChunk* c = freed_head.load(std::memory_order_acquire);
    if (c != nullptr) {
      const std::size_t i = c->reserved.fetch_add(1, std::memory_order_acq_rel);
      if (i < FreedChunk::kCap) {
        FreedEntry& e = c->e[i];
        e.base = s.base();
        e.lo = s.lo;
        e.hi = s.hi;
        e.goid = goid;
        e.why = why;
        if (moved != nullptr) e.moved = *moved;
        e.ready.store(true, std::memory_order_release);
        return;
      }
    }
    void* p = SysAlloc(sizeof(FreedChunk));
    if (p == nullptr) fatal("stackfaultonfree: cannot allocate the freed-stack record");
    auto* nc = new (p) FreedChunk;  // entries and counts are the mapping's zeros
    nc->next = c;
    if (!freed_head.compare_exchange_strong(c, nc, std::memory_order_acq_rel)) SysFree(p, sizeof(FreedChunk));
  }
}

}  // namespace gort::rt

thread_local const gort::rt::StackOwner* gort_tls_owner = nullptr;
