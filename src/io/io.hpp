// The I/O layer's internal interface: one operation on a descriptor, done for
// the calling goroutine by the backend (io_uring or epoll), or for a plain
// thread (or a goroutine inside gort::syscall) by blocking that thread.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/fd.hpp"

namespace gort::rt {

struct P;
struct GList;

enum class OpKind : std::uint8_t { read, write, recv, send, accept, connect, fsync };

// One operation. Its buffers stay valid (pinned on the caller's stack or in
// the caller's objects) until io_op returns: the caller is parked meanwhile.
struct OpArgs {
  OpKind kind;
  void* buf = nullptr;         // read/write/recv/send
  std::size_t len = 0;
  std::int64_t off = -1;       // read/write: file offset, -1 for the file position
  sockaddr* addr = nullptr;    // accept (out), connect (in)
  socklen_t* addrlen = nullptr;  // accept: in/out
  socklen_t alen = 0;          // connect
};

// io_op() runs a on fd, waiting at most until deadline (nanotime; 0: none).
// Returns the syscall's result (>= 0) or -errno: -ETIMEDOUT after the deadline,
// -EBADF once fd was closed (the callers map it to Errc::closed).
long io_op(net::FdState& fd, const OpArgs& a, std::int64_t deadline);

// A backend: the per-P pollers (poll.hpp) and the operations on goroutines.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // init_p() sets up p's poller. Throws std::system_error when it cannot.
  virtual void init_p(P* p) = 0;
  virtual void netpoll(P* p, GList& ready, int max) = 0;
  virtual void flush(P* p) = 0;
  virtual void wait(P* p, std::int64_t until) = 0;
  virtual void wake(P* p) = 0;
  virtual bool pending(P* p) const = 0;
  // op() runs a for the calling goroutine, which holds a P.
  virtual long op(net::FdState& fd, const OpArgs& a, std::int64_t deadline) = 0;
  // register_fd() prepares a new descriptor (non-blocking mode, epoll
  // registration); on failure returns -errno.
  virtual int register_fd(net::FdState& fd) = 0;
  // unregister_fd() releases what register_fd set up; fd is closed already.
  virtual void unregister_fd(net::FdState& fd) = 0;
  // unblock() wakes goroutines blocked on fd, which is being closed.
  virtual void unblock(net::FdState& fd) = 0;
  // socket_flags() are the SOCK_* flags new sockets need (SOCK_NONBLOCK on epoll).
  virtual int socket_flags() const = 0;
};

// io_fatal() stops the process: an I/O call of the runtime's own failed with err.
[[noreturn]] void io_fatal(const char* what, int err);

// backend() is the backend in use (netpollinit chose it).
Backend& backend();
Backend* make_uring_backend();  // uring.cpp; throws std::system_error
Backend* make_epoll_backend();  // epoll.cpp; throws std::system_error

// syscall_op() makes the call a describes once; nonblock adds MSG_DONTWAIT to
// recv/send. Returns the result or -errno.
long syscall_op(int fd, const OpArgs& a, bool nonblock);

// op_blocking() runs a on a thread that may block (no P to park): poll(2) for
// readiness until the deadline, then the non-blocking call.
long op_blocking(net::FdState& fd, const OpArgs& a, std::int64_t deadline);

}  // namespace gort::rt
