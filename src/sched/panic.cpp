#include "sched/panic.hpp"

#include <exception>

#include "base/print.hpp"
#include "sched/runtime.hpp"
#include "sched/traceback.hpp"

namespace gort::detail {
// Thrown by gort::goexit to unwind the goroutine's stack. Deliberately not a
// std::exception, so `catch (const std::exception&)` lets it through.
struct GoexitUnwind {};
}  // namespace gort::detail

namespace gort::rt {

namespace {

[[noreturn]] void fatalpanic(G* gp, const char* what) {
  Printer out(2);
  out.str("panic: ").str(what).str("\n\n");
  out.flush();
  print_goroutine_header(out, gp);
  traceback_here(out, gp);
  out.flush();
  exit_fatal();
}

}  // namespace

void run_goroutine(G* gp) {
  try {
    gp->fn->invoke(gp->fnp);
  } catch (const gort::detail::GoexitUnwind&) {
    // goexit: destructors and deferred calls have run; the goroutine ends.
    if (gp->goid == sched.main_goid.load(std::memory_order_relaxed)) {
      sched.main_goexited.store(true, std::memory_order_relaxed);
    }
  } catch (const std::exception& e) {
    fatalpanic(gp, e.what());
  } catch (...) {
    fatalpanic(gp, "an exception not derived from std::exception");
  }
}

}  // namespace gort::rt

namespace gort {

void goexit() {
  rt::G* gp = rt::getgp();
  if (gp == nullptr) rt::fatal("gort::goexit called off a goroutine");
  gp->goexiting = true;
  throw detail::GoexitUnwind{};
}

}  // namespace gort
