// gort::net: TCP in blocking style. Each call parks only the calling goroutine;
// the P's io_uring (or the epoll fallback) completes it. From a plain thread the
// calls block that thread.
//
// Errors are values (IoResult / Result<T> with a std::error_code): Errc::eof at
// the end of the stream, std::errc::timed_out after a deadline, Errc::closed on
// a closed Conn or Listener, the system's errno otherwise (connection_reset,
// broken_pipe, connection_refused...).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "gort/result.hpp"

namespace gort::net {

using Clock = std::chrono::steady_clock;

// Addr is an IPv4 or IPv6 socket address.
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  // to_string() is "1.2.3.4:80" or "[::1]:80".
  std::string to_string() const;
  // port() is the port in host order.
  int port() const;
};
// parse_addr() parses "127.0.0.1:8080", "[::1]:8080", ":8080" (every address)
// and "localhost:8080" (resolved, IPv4 first). Errc::bad_address when malformed.
Result<Addr> parse_addr(std::string_view hostport);

struct FdState;  // the runtime's per-descriptor record (src/io)

// Conn is a TCP connection. Move-only; the destructor closes it. Calls from
// several goroutines at once are allowed: one reader and one writer at a time,
// close() from anywhere (it wakes blocked reads and writes with Errc::closed).
// The Conn object must outlive the calls on it: close() it, let the blocked
// calls return, then destroy it. (A Listener may be destroyed under a
// blocked accept(): that call keeps what it needs.)
class Conn {
 public:
  Conn() = default;
  explicit Conn(std::shared_ptr<FdState> fd) : fd_(std::move(fd)) {}
  Conn(Conn&&) noexcept = default;
  Conn& operator=(Conn&&) noexcept = default;
  ~Conn();

  // read() reads at least one byte into buf (or returns Errc::eof at the end);
  // an empty buf returns {0, {}} at once.
  IoResult read(std::span<std::byte> buf);
  IoResult read(std::span<char> buf) { return read(std::as_writable_bytes(buf)); }
  // read_full() reads exactly buf.size() bytes; Errc::unexpected_eof if the
  // stream ends part way, Errc::eof if it ends before the first byte.
  IoResult read_full(std::span<std::byte> buf);
  IoResult read_full(std::span<char> buf) { return read_full(std::as_writable_bytes(buf)); }
  // write() sends some of buf (at least one byte unless it fails).
  IoResult write(std::span<const std::byte> buf);
  // write_all() sends all of buf unless an error stops it (n says how much went).
  IoResult write_all(std::span<const std::byte> buf);
  IoResult write_all(std::string_view s) { return write_all(std::as_bytes(std::span(s.data(), s.size()))); }

  enum class Shut { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };
  // shutdown() shuts down one or both directions (write: the peer reads EOF).
  std::error_code shutdown(Shut how = Shut::write);
  // close() closes the connection; blocked calls return Errc::closed. Idempotent.
  std::error_code close();

  // Deadlines, as Go's: an absolute time after which a blocked or new call fails
  // with std::errc::timed_out; Clock::time_point{} means none. A new deadline
  // applies to calls that start after it is set.
  void set_deadline(Clock::time_point t);
  void set_read_deadline(Clock::time_point t);
  void set_write_deadline(Clock::time_point t);

  Addr local_addr() const;
  Addr remote_addr() const;
  // fd() is the socket descriptor (-1 when closed), for setsockopt and the like.
  int fd() const;
  bool valid() const { return fd_ != nullptr; }

 private:
  std::shared_ptr<FdState> fd_;
};

struct ListenOptions {
  // SO_REUSEPORT, so several listeners (one per process or per P) share a port.
  bool reuse_port = false;
  // listen(2)'s backlog; the kernel caps it at net.core.somaxconn.
  int backlog = 4096;
};

// Listener is a listening TCP socket. Move-only; the destructor closes it.
class Listener {
 public:
  Listener() = default;
  explicit Listener(std::shared_ptr<FdState> fd) : fd_(std::move(fd)) {}
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  ~Listener();

  // accept() waits for the next connection, which gets TCP_NODELAY (as in
  // Go). EMFILE/ENFILE are returned as errors (accept_loop backs off and
  // retries); after close(), Errc::closed.
  Result<Conn> accept();
  // close() stops listening and wakes a blocked accept() with Errc::closed.
  std::error_code close();
  Addr addr() const;
  int fd() const;
  bool valid() const { return fd_ != nullptr; }

 private:
  std::shared_ptr<FdState> fd_;
};

// listen() opens a TCP listener on hostport (see parse_addr; port 0 picks one).
Result<Listener> listen(std::string_view hostport, const ListenOptions& opts = {});
// dial() connects to hostport; timeout 0 means the system's own (no deadline).
Result<Conn> dial(std::string_view hostport, std::chrono::nanoseconds timeout = {});

// accept_loop() accepts connections until the listener is closed, calling
// handle(Conn) on a new goroutine for each (handle is moved into shared
// storage that those goroutines keep alive). As Go's net/http Server.Serve, it
// survives EMFILE/ENFILE and other temporary errors: it logs them and backs off
// (5 ms doubling to 1 s). Returns the error that ended it (Errc::closed after close()).
template <class F>
std::error_code accept_loop(Listener& ln, F&& handle);

namespace detail {
// accept_backoff() logs a temporary accept error and sleeps; false when ec is
// not temporary (the loop must end). delay is the previous backoff, 0 at first.
bool accept_backoff(std::error_code ec, std::chrono::milliseconds& delay);
}  // namespace detail

}  // namespace gort::net

#include "gort/go.hpp"

template <class F>
std::error_code gort::net::accept_loop(Listener& ln, F&& handle) {
  // Shared by the connections' goroutines, which may outlive this call.
  auto h = std::make_shared<std::decay_t<F>>(std::forward<F>(handle));
  std::chrono::milliseconds delay{0};
  for (;;) {
    Result<Conn> c = ln.accept();
    if (!c) {
      if (!detail::accept_backoff(c.error(), delay)) return c.error();
      continue;
    }
    delay = std::chrono::milliseconds{0};
    gort::go([h, conn = std::move(*c)]() mutable { (*h)(std::move(conn)); });
  }
}
