// Panics, goexit and deferred calls (Go's panic.go).
//
// A C++ exception is Go's panic and a catch is its recover. One that escapes a
// goroutine's function is fatal, as an unrecovered panic is in Go: run_goroutine
// prints "panic: <what()>", the goroutine and where the exception was thrown, and
// exits with status 2. Deferred calls (GORT_DEFER, gort/defer.hpp) and
// destructors run while the exception unwinds the stack, as Go runs deferred
// calls while panicking. goexit unwinds the same way with an exception no user
// code can name, which run_goroutine ends quietly.
//
// The report shows where the exception was thrown, from the record __cxa_throw
// keeps (traceback.cpp), when the record is of this exception: it is not when the
// goroutine moved to another thread while destructors ran, when a destructor
// threw and caught another exception meanwhile, or when the exception was not
// thrown on this goroutine (std::rethrow_exception of one from elsewhere). Then
// the report shows where the exception left the goroutine, and says so.
#include "sched/panic.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "base/print.hpp"
#include "gort/defer.hpp"
#include "gort/go.hpp"
#include "sched/runtime.hpp"
#include "sched/traceback.hpp"
#include "stack/fault.hpp"

namespace gort::detail {

// Thrown by gort::goexit to unwind the goroutine's stack. Deliberately not a
// std::exception, so `catch (const std::exception&)` lets it through. Only
// run_goroutine may end it: one destroyed anywhere else was swallowed by a
// `catch (...)` that did not rethrow, which Go's Goexit cannot be, so that is a
// fatal error rather than a goroutine that silently goes on.
struct GoexitUnwind {
  bool recovered = false;  // set by run_goroutine
  ~GoexitUnwind() {
    if (!recovered) rt::fatal("gort::goexit: the unwinding was caught and not rethrown (catch (...) must rethrow)");
  }
};

}  // namespace gort::detail

namespace gort::rt {

namespace {

// printpanicval() prints the value of the exception being handled: what() of a
// std::exception, a thrown string, or else "(type)". It returns the address of
// the thrown object where it can tell it. Precondition: called in a handler.
const void* printpanicval(Printer& out) {
  try {
    throw;
  } catch (const std::exception& e) {
    out.str(e.what());
    return dynamic_cast<const void*>(&e);
  } catch (const char* s) {
    out.str(s);
  } catch (const std::string& s) {
    out.str(s);
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    int status = 0;
    char* name = t != nullptr ? abi::__cxa_demangle(t->name(), nullptr, nullptr, &status) : nullptr;
    out.str("(").str(name != nullptr ? name : t != nullptr ? t->name() : "?").str(")");
    std::free(name);
  }
  return nullptr;
}

// fatalpanic() reports the exception being handled as an unrecovered panic of gp
// (nullptr: a plain thread) and exits with status 2. note, if not empty, follows
// the value. Precondition: called in a handler.
[[noreturn]] void fatalpanic(const G* gp, std::string_view note) {
  Printer out(2);
  out.str("panic: ");
  const void* obj = printpanicval(out);
  out.str(note).str("\n");
  if (gp == nullptr) {
    out.flush();
    exit_fatal();
  }
  const ThrowRecord& r = lastthrow();
  const bool recorded = r.g == gp && r.goid == gp->goid && r.type == abi::__cxa_current_exception_type() &&
                        (obj == nullptr || obj == r.obj);
  if (!recorded) {
    out.str("runtime: where it was thrown is unknown; the backtrace shows where it left the goroutine\n");
  }
  out.str("\n");
  print_goroutine_header(out, gp);
  if (recorded) {
    print_frames(out, r.pcs, r.n, kThrowFrames);
  } else {
    traceback_here(out, gp);
  }
  out.flush();
  exit_fatal();
}

}  // namespace

void run_goroutine(G* gp) {
  try {
    gp->fn->invoke(gp->fnp);
  } catch (gort::detail::GoexitUnwind& u) {
    // goexit: destructors and deferred calls have run; the goroutine ends.
    u.recovered = true;
    gp->goexiting = false;
    if (gp->goid == sched.main_goid.load(std::memory_order_relaxed)) {
      sched.main_goexited.store(true, std::memory_order_relaxed);
    }
  } catch (...) {
    fatalpanic(gp, {});
  }
  // Every record unlinks itself at scope exit; one left would dangle into the
  // stack of whatever runs on this G next.
  if (gp->defers != nullptr) fatal("goroutine exited with a GORT_DEFER record still linked");
}

}  // namespace gort::rt

namespace gort {

void goexit() {
  rt::G* gp = rt::getgp();
  if (gp == nullptr) rt::fatal("gort::goexit called off a goroutine");
  // A destructor run by goexit's unwinding calling it again would throw out of
  // the destructor, which is std::terminate: say what happened instead.
  if (gp->goexiting) rt::fatal("gort::goexit called while the goroutine is exiting");
  gp->goexiting = true;
  throw detail::GoexitUnwind{};
}

namespace detail {

void** defer_head() noexcept {
  rt::G* gp = rt::getgp();
  return gp != nullptr ? &gp->defers : nullptr;
}

void defer_misuse() noexcept {
  rt::fatal("GORT_DEFER: a deferred call ran out of order (its record is not on its goroutine's stack?)");
}

void defer_threw() noexcept {
  try {
    throw;
  } catch (const GoexitUnwind&) {
    rt::fatal("gort::goexit called in a deferred call");
  } catch (...) {
    rt::fatalpanic(rt::getgp(), " [thrown by a deferred call]");
  }
}

}  // namespace detail

}  // namespace gort
