// FdState: the runtime's record of one descriptor (socket, listener or file),
// shared by the Conn/Listener/File handles.
//
// Closing follows Go's fdMutex idea, reduced to one atomic word: every
// operation holds a reference while it uses the descriptor; close() marks the
// word closed, wakes blocked operations (shutdown(2) for sockets, the poll
// descriptor on epoll) and the descriptor is close(2)d exactly once, by
// whoever drops the last reference. So the kernel never sees a descriptor
// number that was closed and reused under an operation in flight.
#pragma once

#include <atomic>
#include <cstdint>

#include "gort/net.hpp"

namespace gort::rt {
struct PollDesc;
struct AcceptQ;
}

namespace gort::net {

struct FdState {
  enum class Kind : std::uint8_t { socket, listener, file };

  FdState(int fd, Kind kind);
  ~FdState();
  FdState(const FdState&) = delete;
  FdState& operator=(const FdState&) = delete;

  // incref() takes a reference for one operation; false once closed.
  bool incref();
  // decref() drops it; the last one after close() closes the descriptor.
  void decref();
  // close() marks it closed and wakes blocked operations; false if it already was.
  bool close();
  bool closed() const { return (state_.load(std::memory_order_acquire) & kClosed) != 0; }

  const int fd;
  const Kind kind;
  // Deadlines: nanotime() values, 0 for none (Conn::set_*_deadline).
  std::atomic<std::int64_t> rdeadline{0};
  std::atomic<std::int64_t> wdeadline{0};
  // The epoll backend's readiness record (null on io_uring).
  rt::PollDesc* pd = nullptr;
  // The io_uring backend's multishot accept queue of a listener (or null).
  rt::AcceptQ* aq = nullptr;

 private:
  static constexpr std::uint64_t kClosed = 1, kDone = 2, kRef = 4;
  void maybe_closefd();
  std::atomic<std::uint64_t> state_{0};  // refs * kRef | kDone | kClosed
};

// FdRef holds one operation's reference (RAII over incref/decref).
class FdRef {
 public:
  explicit FdRef(FdState* fd) : fd_(fd != nullptr && fd->incref() ? fd : nullptr) {}
  ~FdRef() {
    if (fd_ != nullptr) fd_->decref();
  }
  FdRef(const FdRef&) = delete;
  FdRef& operator=(const FdRef&) = delete;
  // false when the descriptor is closed (or there was none).
  explicit operator bool() const { return fd_ != nullptr; }

 private:
  FdState* fd_;
};

}  // namespace gort::net
