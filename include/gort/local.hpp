// Goroutine-local storage: what thread_local is to threads, for goroutines.
//
// A goroutine may run on a different thread (M) after every blocking call or
// yield, so `thread_local` in goroutine code means "the thread running me right
// now", which changes under the code's feet. GoroutineLocal<T> follows the
// goroutine instead.
#pragma once

#include <cstddef>

namespace gort {

namespace detail {
// gls_key() allocates one of the kGlsSlots slots for the program's lifetime.
int gls_key();
// gls_slot() is the calling goroutine's (or, off goroutines, thread's) slot.
void*& gls_slot(int key);
// gls_set_dtor() records how to destroy the value in a slot when its goroutine
// (or thread) ends.
void gls_set_dtor(int key, void (*dtor)(void*));
}  // namespace detail

// GoroutineLocal<T> gives every goroutine its own T, default-constructed on the
// goroutine's first get() and destroyed when the goroutine exits. Declare it
// static or at namespace scope: there are 8 slots per program (a fatal error
// names the limit when they run out). Off goroutines, each thread has its own.
template <class T>
class GoroutineLocal {
 public:
  GoroutineLocal() : key_(detail::gls_key()) {}
  GoroutineLocal(const GoroutineLocal&) = delete;
  GoroutineLocal& operator=(const GoroutineLocal&) = delete;

  // get() returns the calling goroutine's T.
  T& get() {
    void*& slot = detail::gls_slot(key_);
    if (slot == nullptr) {
      slot = new T();
      detail::gls_set_dtor(key_, [](void* p) { delete static_cast<T*>(p); });
    }
    return *static_cast<T*>(slot);
  }
  T* operator->() { return &get(); }
  T& operator*() { return get(); }

 private:
  int key_;
};

}  // namespace gort
