// Goroutine-local storage: slots in the G (G::gls), and per-thread slots for
// code running off goroutines.
#include <atomic>

#include "base/print.hpp"
#include "gort/local.hpp"
#include "sched/runtime.hpp"

namespace gort::rt {

namespace {

std::atomic<int> nkeys{0};
// One destructor per key: every value of a key has the same type.
std::atomic<void (*)(void*)> dtors[kGlsSlots];

// Off goroutines: one slot array per thread, emptied when the thread exits.
struct ThreadSlots {
  void* v[kGlsSlots] = {};
  ~ThreadSlots() { gls_destroy(v); }
};
thread_local ThreadSlots thread_slots;

}  // namespace

void gls_destroy(void** slots) {
  // Only keys handed out can hold values: most programs have none, and this runs
  // at every goroutine exit.
  const int n = nkeys.load(std::memory_order_relaxed);
  for (int k = 0; k < n && k < kGlsSlots; k++) {
    if (slots[k] == nullptr) continue;
    void* p = slots[k];
    slots[k] = nullptr;
    dtors[k].load(std::memory_order_acquire)(p);
  }
}

}  // namespace gort::rt

namespace gort::detail {

int gls_key() {
  int k = rt::nkeys.fetch_add(1, std::memory_order_relaxed);
  if (k >= rt::kGlsSlots) rt::fatal("gort::GoroutineLocal: more than 8 goroutine-local variables");
  return k;
}

void*& gls_slot(int key) {
  rt::G* gp = rt::getgp();
  return gp != nullptr ? gp->gls[key] : rt::thread_slots.v[key];
}

void gls_set_dtor(int key, void (*dtor)(void*)) { rt::dtors[key].store(dtor, std::memory_order_release); }

}  // namespace gort::detail
