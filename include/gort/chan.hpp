// Channels, select and timers, as Go's (runtime/chan.go, select.go, time.go).
//
//   gort::Chan<int> ch(10);            // make(chan int, 10); Chan<int> ch; is unbuffered
//   auto ch2 = ch;                      // the same channel: Chan is a shared handle
//   ch.send(1);                         // ch <- 1
//   std::optional<int> v = ch.recv();   // v, ok := <-ch   (nullopt: closed and drained)
//   if (auto [v, closed] = ch.try_recv(); v) ...   // select { case v := <-ch: ... default: }
//   ch.close();
//
//   gort::select(gort::recv_case(ch, [](std::optional<int> v) { ... }),
//                gort::send_case(out, 42, [] { ... }),
//                gort::timeout_case(100ms, [] { ... }));
//
// Every operation works from goroutines, which park (their thread runs other
// goroutines meanwhile), and from plain std::threads, which block; a thread
// and a goroutine may be the two ends of one channel.
//
// As in Go, sending on a closed channel and closing a closed channel panic:
// they throw gort::panic_error, which, escaping a goroutine, prints
// "panic: <what>" and exits with status 2.
//
// The element type T must be nothrow move-constructible and destructible:
// values are moved under the channel's lock, which must never be left held.
// For the same reason T's copy and move constructors must not block (no
// channel operation, gort::Mutex, sleep, I/O or gort::syscall inside them).
// T may be move-only and need not be default-constructible.
//
// Timer, after() and timeout_case use the runtime's timers: Timer and after()
// need the runtime started (inside gort::main, or after it has run once).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "gort/panic.hpp"

namespace gort {

template <class T>
class Chan;

namespace detail {

struct hchan;  // the channel (chan.cpp), Go's hchan

// How a channel moves its elements, so that the algorithm in chan.cpp is not a
// template. A sender's value is always a T; a receiver's slot is always a
// std::optional<T>; the buffer holds raw T slots.
struct elemops {
  std::size_t size;
  std::size_t align;
  void (*construct)(void* slot, void* src) noexcept;  // move *src into the raw slot
  void (*emplace)(void* dst, void* src) noexcept;     // move *src into the optional *dst
  void (*destroy)(void* slot) noexcept;               // end the T in slot
};

template <class T>
struct elemops_for {
  static void construct(void* slot, void* src) noexcept {
    std::construct_at(static_cast<T*>(slot), std::move(*static_cast<T*>(src)));
  }
  static void emplace(void* dst, void* src) noexcept {
    static_cast<std::optional<T>*>(dst)->emplace(std::move(*static_cast<T*>(src)));
  }
  static void destroy(void* slot) noexcept { std::destroy_at(static_cast<T*>(slot)); }
  static constexpr elemops ops{sizeof(T), alignof(T), construct, emplace, destroy};
};

// makechan() makes a channel with room for cap elements (Go's makechan).
hchan* makechan(const elemops* ops, std::size_t cap);
// chanretain() and chanrelease() count the handles to c; the last release frees it.
void chanretain(hchan* c) noexcept;
void chanrelease(hchan* c) noexcept;
// chansend() sends *ep (a T, moved from only if sent). If block, it waits for a
// receiver or buffer room; else it returns false when it would have to wait.
// Throws panic_error if c is closed, or gets closed while it waits.
bool chansend(hchan* c, void* ep, bool block);
// chanrecv() receives into *ep (an empty std::optional<T>), which stays empty
// if c is closed and drained. Returns false, if !block, when it would have to wait.
bool chanrecv(hchan* c, void* ep, bool block);
// closechan() closes c, waking every waiter. Throws panic_error if c is closed.
void closechan(hchan* c);
// chanlen() is the number of buffered elements; chancap() the capacity.
std::size_t chanlen(hchan* c);
std::size_t chancap(hchan* c) noexcept;

// chanaccess gives the select cases and Timer the channel behind a Chan.
struct chanaccess {
  template <class T>
  static hchan* get(const Chan<T>& ch) noexcept {
    return ch.c_;
  }
};

}  // namespace detail

// TryRecvResult is what Chan::try_recv() found: a value, or none because the
// channel is empty (closed == false) or closed and drained (closed == true).
template <class T>
struct TryRecvResult {
  std::optional<T> value;
  bool closed = false;
};

// Chan<T> is a handle to a channel of T, as Go's chan T: copies refer to the same
// channel, which lives as long as some handle does. Operations act on the
// channel, not the handle, so they are const (a lambda's copy can send). A moved-from Chan may only be
// assigned to or destroyed (in a select case it is never ready, as Go's nil channel).
template <class T>
class Chan {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "gort::Chan<T>: T must be a non-const object type");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "gort::Chan<T>: T must be nothrow move-constructible and destructible");

 public:
  using value_type = T;

  // Chan() makes a channel buffering up to cap values; 0: unbuffered, a send
  // waits for a receiver. Throws std::length_error if cap is absurdly large.
  explicit Chan(std::size_t cap = 0) : c_(detail::makechan(&detail::elemops_for<T>::ops, cap)) {}
  Chan(const Chan& o) noexcept : c_(o.c_) {
    if (c_ != nullptr) detail::chanretain(c_);
  }
  Chan(Chan&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~Chan() {
    if (c_ != nullptr) detail::chanrelease(c_);
  }

  // send() sends v, waiting for a receiver or for buffer room. Throws
  // panic_error if the channel is closed (before or while waiting).
  void send(T&& v) const { detail::chansend(c_, &v, true); }
  void send(const T& v) const
    requires std::is_copy_constructible_v<T>
  {
    T copy(v);
    send(std::move(copy));
  }

  // try_send() sends v if that needs no waiting and returns whether it did; v
  // is moved from only if sent. Throws panic_error if the channel is closed.
  bool try_send(T&& v) const { return detail::chansend(c_, &v, false); }
  bool try_send(const T& v) const
    requires std::is_copy_constructible_v<T>
  {
    T copy(v);
    return try_send(std::move(copy));
  }

  // recv() waits for a value; std::nullopt once the channel is closed and drained.
  std::optional<T> recv() const {
    std::optional<T> v;
    detail::chanrecv(c_, &v, true);
    return v;
  }

  // try_recv() takes a value if one is ready, without waiting; else it says
  // whether the channel is merely empty or closed and drained.
  TryRecvResult<T> try_recv() const {
    TryRecvResult<T> r;
    r.closed = detail::chanrecv(c_, &r.value, false) && !r.value.has_value();
    return r;
  }

  // close() closes the channel: buffered values can still be received, then
  // receivers get std::nullopt; waiting senders panic. Throws panic_error if
  // it is closed already.
  void close() const { detail::closechan(c_); }

  // len() is the number of buffered values; cap() the buffer's capacity.
  std::size_t len() const { return detail::chanlen(c_); }
  std::size_t cap() const noexcept { return detail::chancap(c_); }

  // Handles are equal when they refer to the same channel.
  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.c_ == b.c_; }

 private:
  friend struct detail::chanaccess;
  detail::hchan* c_;
};

// ---- select ----

namespace detail {

// One case of a select, as Go's scase. Timeout and default cases, and channel
// cases on a moved-from Chan, have c == nullptr and are never polled.
struct scase {
  hchan* c;
  void* elem;  // send: the T to send (moved from if sent); receive: the std::optional<T>
  bool send;
};

// selectgo() runs a select over cas[0, ncases) (Go's selectgo): it performs one
// of the ready channel cases, chosen uniformly at random, and returns its index.
// If none is ready and block, it waits for one, for at most timeout_ns (-1: no
// limit). Returns -1 if it did not block (!block or timeout_ns == 0) and none
// was ready, or if the timeout passed. order0 is room for 2 * ncases indices.
// Throws panic_error if the chosen case sends on a closed channel.
int selectgo(scase* cas, std::uint16_t* order0, std::size_t ncases, bool block, std::int64_t timeout_ns);

enum class casekind { chan, timeout, otherwise };

template <class T, class F>
struct recvcase {
  static constexpr casekind kind = casekind::chan;
  hchan* c;
  F fn;
  std::optional<T> v;
  scase as_scase() { return {c, &v, false}; }
  void run() {
    if constexpr (std::is_invocable_v<F&, std::optional<T>&&>) {
      std::invoke(fn, std::move(v));
    } else {
      std::invoke(fn);
    }
  }
};

template <class T, class F>
struct sendcase {
  static constexpr casekind kind = casekind::chan;
  hchan* c;
  T v;
  F fn;
  scase as_scase() { return {c, &v, true}; }
  void run() { std::invoke(fn); }
};

template <class F>
struct timeoutcase {
  static constexpr casekind kind = casekind::timeout;
  std::int64_t ns;
  F fn;
  scase as_scase() { return {nullptr, nullptr, false}; }
  void run() { std::invoke(fn); }
};

template <class F>
struct defaultcase {
  static constexpr casekind kind = casekind::otherwise;
  F fn;
  scase as_scase() { return {nullptr, nullptr, false}; }
  void run() { std::invoke(fn); }
};

template <class C>
std::int64_t timeout_of(const C& c) {
  if constexpr (C::kind == casekind::timeout) {
    return c.ns;
  } else {
    return -1;
  }
}

}  // namespace detail

// recv_case() is `case v, ok := <-ch:`: fn(std::optional<T>) gets the value, or
// std::nullopt if ch is closed and drained. fn() taking nothing is accepted too.
template <class T, class F>
detail::recvcase<T, std::decay_t<F>> recv_case(const Chan<T>& ch, F&& fn) {
  static_assert(std::is_invocable_v<std::decay_t<F>&, std::optional<T>&&> || std::is_invocable_v<std::decay_t<F>&>,
                "gort::recv_case: fn must take a std::optional<T> or nothing");
  return {detail::chanaccess::get(ch), std::forward<F>(fn), std::nullopt};
}

// send_case() is `case ch <- v:`, then fn(). If select picks it while ch is
// closed, select throws panic_error, as Go's send panics.
template <class T, class F>
detail::sendcase<T, std::decay_t<F>> send_case(const Chan<T>& ch, std::type_identity_t<T> v, F&& fn) {
  return {detail::chanaccess::get(ch), std::move(v), std::forward<F>(fn)};
}

// timeout_case() is `case <-time.After(d):`, without the allocation: fn() runs
// if no other case became ready within d of entering select (d <= 0: none was
// ready at once).
template <class F>
detail::timeoutcase<std::decay_t<F>> timeout_case(std::chrono::nanoseconds d, F&& fn) {
  return {std::max<std::int64_t>(d.count(), 0), std::forward<F>(fn)};
}

// default_case() is `default:`: fn() runs if no other case is ready at once.
template <class F>
detail::defaultcase<std::decay_t<F>> default_case(F&& fn) {
  return {std::forward<F>(fn)};
}

// select() waits until one of its cases can proceed, performs it, runs its
// function and returns its index among the arguments. Among several ready cases
// it picks one uniformly at random. At most one timeout_case and one
// default_case. With no cases at all it blocks forever, as Go's `select {}`.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  using detail::casekind;
  constexpr std::size_t n = sizeof...(Cases);
  static_assert(n < 65536, "gort::select: too many cases");
  constexpr std::array<casekind, n> kinds{std::remove_cvref_t<Cases>::kind...};
  constexpr auto ndefault = std::count(kinds.begin(), kinds.end(), casekind::otherwise);
  static_assert(ndefault <= 1, "gort::select: more than one default_case");
  static_assert(std::count(kinds.begin(), kinds.end(), casekind::timeout) <= 1,
                "gort::select: more than one timeout_case");
  std::array<detail::scase, n> sc{cases.as_scase()...};
  std::array<std::uint16_t, 2 * n> order;
  const std::int64_t timeout = std::max({std::int64_t{-1}, detail::timeout_of(cases)...});
  const int i = detail::selectgo(sc.data(), order.data(), n, ndefault == 0, timeout);
  const std::size_t chosen =
      i >= 0 ? static_cast<std::size_t>(i)
             : static_cast<std::size_t>(std::find(kinds.begin(), kinds.end(),
                                                  ndefault != 0 ? casekind::otherwise : casekind::timeout) -
                                        kinds.begin());
  std::size_t k = 0;
  ((k++ == chosen ? cases.run() : void()), ...);
  return chosen;
}

// ---- timers ----

namespace detail {
struct timerchan;  // timerchan.cpp
}

// Timer is Go's time.Timer, with Go 1.23's guarantees: after stop() or reset()
// returns, no stale expiry time is received from chan(). Its members may be
// called from several goroutines and threads at once.
class Timer {
 public:
  using clock = std::chrono::steady_clock;

  // Timer() starts a timer that delivers clock::now() on chan() once d has
  // passed (d <= 0: at once). Precondition: the runtime has been started.
  explicit Timer(std::chrono::nanoseconds d);
  // ~Timer() stops it.
  ~Timer();
  Timer(Timer&& o) noexcept : c_(std::move(o.c_)), t_(std::exchange(o.t_, nullptr)) {}
  Timer& operator=(Timer&& o) noexcept {
    if (this != &o) {
      Timer old(std::move(*this));  // stopped and freed on the way out
      c_ = std::move(o.c_);
      t_ = std::exchange(o.t_, nullptr);
    }
    return *this;
  }

  // chan() delivers the expiry time, once per start (capacity 1, as in Go).
  // Only the timer may send on it or close it. Precondition: not moved from.
  const Chan<clock::time_point>& chan() const noexcept { return c_; }

  // stop() keeps the timer from delivering. Returns true if that changed
  // anything: it was pending, or it had fired and its value was not yet
  // received (the value is discarded). Precondition: not moved from.
  bool stop();
  // reset() stops the timer as stop() does, returning the same, and starts it
  // again to deliver once d has passed. Precondition: not moved from.
  bool reset(std::chrono::nanoseconds d);

 private:
  Chan<clock::time_point> c_;
  detail::timerchan* t_;
};

// after() is Go's time.After: a channel (capacity 1) on which the time is
// delivered once d has passed. Precondition: the runtime has been started.
Chan<std::chrono::steady_clock::time_point> after(std::chrono::nanoseconds d);

}  // namespace gort
