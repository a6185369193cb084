// gort::net: TCP listeners and connections over the I/O backend.
#include "gort/net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include "base/log.hpp"
#include "gort/go.hpp"
#include "io/io.hpp"
#include "sched/sched_io.hpp"

namespace gort::net {

namespace {

using rt::OpArgs;
using rt::OpKind;

// Go caps one read or write at 1 GiB (internal/poll maxRW); so do we, which
// also keeps the length within io_uring's 32-bit field.
constexpr std::size_t kMaxRW = std::size_t{1} << 30;

// errc() turns a -errno result into an error code; EBADF means we closed it.
std::error_code errc(long r) {
  if (r == -EBADF) return make_error_code(Errc::closed);
  return {static_cast<int>(-r), std::generic_category()};
}

std::int64_t to_nanotime(Clock::time_point t) {
  if (t == Clock::time_point{}) return 0;
  // steady_clock is CLOCK_MONOTONIC, as nanotime(): the same time line.
  const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return std::max<std::int64_t>(ns, 1);
}

// newfd() wraps a fresh descriptor and registers it with the backend.
Result<std::shared_ptr<FdState>> newfd(int fd, FdState::Kind kind) {
  auto st = std::make_shared<FdState>(fd, kind);
  if (int r = rt::backend().register_fd(*st); r < 0) return std::error_code(-r, std::generic_category());
  return st;
}

// with_port() sets a's port and length from its family.
Addr with_port(Addr a, int port) {
  const auto nport = htons(static_cast<std::uint16_t>(port));
  if (a.ss.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = nport;
    a.len = sizeof(sockaddr_in);
  } else {
    reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = nport;
    a.len = sizeof(sockaddr_in6);
  }
  return a;
}

// parse_port() parses a decimal port 0-65535.
bool parse_port(std::string_view s, int& port) {
  if (s.empty() || s.size() > 5) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
  return ec == std::errc() && p == s.data() + s.size() && port >= 0 && port <= 65535;
}

}  // namespace

std::string Addr::to_string() const {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    // A named string, not "[" + std::string(host): GCC 12 at -O3 (a Release
    // build) falsely reports an overlapping memcpy in that operator+ (its bug
    // 105329), an error under -Werror.
    const std::string h = host;
    return "[" + h + "]:" + std::to_string(port());
  }
  return "?";
}

int Addr::port() const {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

Result<Addr> parse_addr(std::string_view hostport) {
  const std::size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) return Errc::bad_address;
  std::string_view host = hostport.substr(0, colon);
  int port = 0;
  if (!parse_port(hostport.substr(colon + 1), port)) return Errc::bad_address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Errc::bad_address;  // an IPv6 literal needs brackets
  }
  Addr a;
  std::string h(host);
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (h.empty()) {
    // ":port": every address, both families where the system allows (Go's ":8080").
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    return with_port(a, port);
  }
  if (inet_pton(AF_INET, h.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    return with_port(a, port);
  }
  if (inet_pton(AF_INET6, h.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    return with_port(a, port);
  }
  // A name: resolve it (blocking: inside gort::syscall, so the P moves on).
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = gort::syscall([&] { return getaddrinfo(h.c_str(), nullptr, &hints, &res); });
  if (rc != 0 || res == nullptr) {
    rt::log()->debug("resolving {}: {}", h, gai_strerror(rc));
    return std::error_code(EHOSTUNREACH, std::generic_category());
  }
  // IPv4 first, as Go's dialer prefers for "localhost".
  const addrinfo* pick = res;
  for (const addrinfo* r = res; r != nullptr; r = r->ai_next) {
    if (r->ai_family == AF_INET) {
      pick = r;
      break;
    }
  }
  std::memcpy(&a.ss, pick->ai_addr, pick->ai_addrlen);
  freeaddrinfo(res);
  return with_port(a, port);
}

// ---- Conn ----

Conn::~Conn() = default;

IoResult Conn::read(std::span<std::byte> buf) {
  if (!fd_) return {0, make_error_code(Errc::closed)};
  if (buf.empty()) return {};
  OpArgs a{OpKind::recv, buf.data(), std::min(buf.size(), kMaxRW)};
  const long r = rt::io_op(*fd_, a, fd_->rdeadline.load(std::memory_order_relaxed));
  if (r > 0) return {static_cast<std::size_t>(r), {}};
  if (r == 0) return {0, make_error_code(Errc::eof)};
  return {0, errc(r)};
}

IoResult Conn::read_full(std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    IoResult r = read(buf.subspan(got));
    got += r.n;
    if (r.ec) {
      if (r.ec == Errc::eof && got > 0) return {got, make_error_code(Errc::unexpected_eof)};
      return {got, r.ec};
    }
  }
  return {got, {}};
}

IoResult Conn::write(std::span<const std::byte> buf) {
  if (!fd_) return {0, make_error_code(Errc::closed)};
  if (buf.empty()) return {};
  OpArgs a{OpKind::send, const_cast<std::byte*>(buf.data()), std::min(buf.size(), kMaxRW)};
  const long r = rt::io_op(*fd_, a, fd_->wdeadline.load(std::memory_order_relaxed));
  if (r >= 0) return {static_cast<std::size_t>(r), {}};
  return {0, errc(r)};
}

IoResult Conn::write_all(std::span<const std::byte> buf) {
  std::size_t sent = 0;
  while (sent < buf.size()) {
    IoResult r = write(buf.subspan(sent));
    sent += r.n;
    if (r.ec) return {sent, r.ec};
  }
  return {sent, {}};
}

std::error_code Conn::shutdown(Shut how) {
  if (!fd_) return make_error_code(Errc::closed);
  FdRef ref(fd_.get());
  if (!ref) return make_error_code(Errc::closed);
  if (::shutdown(fd_->fd, static_cast<int>(how)) < 0) return {errno, std::generic_category()};
  return {};
}

std::error_code Conn::close() {
  if (!fd_ || !fd_->close()) return make_error_code(Errc::closed);
  return {};
}

void Conn::set_deadline(Clock::time_point t) {
  set_read_deadline(t);
  set_write_deadline(t);
}
void Conn::set_read_deadline(Clock::time_point t) {
  if (fd_) fd_->rdeadline.store(to_nanotime(t), std::memory_order_relaxed);
}
void Conn::set_write_deadline(Clock::time_point t) {
  if (fd_) fd_->wdeadline.store(to_nanotime(t), std::memory_order_relaxed);
}

namespace {

// sockname() is getsockname (local) or getpeername of fd; empty when closed.
Addr sockname(FdState* fd, bool peer) {
  Addr a;
  if (fd == nullptr) return a;
  FdRef ref(fd);
  if (!ref) return a;
  a.len = sizeof a.ss;
  int r = peer ? ::getpeername(fd->fd, reinterpret_cast<sockaddr*>(&a.ss), &a.len)
               : ::getsockname(fd->fd, reinterpret_cast<sockaddr*>(&a.ss), &a.len);
  if (r < 0) a = Addr{};
  return a;
}

int fdnum(const std::shared_ptr<FdState>& fd) { return fd && !fd->closed() ? fd->fd : -1; }

}  // namespace

Addr Conn::local_addr() const { return sockname(fd_.get(), false); }
Addr Conn::remote_addr() const { return sockname(fd_.get(), true); }
int Conn::fd() const { return fdnum(fd_); }

// ---- Listener ----

Listener::~Listener() = default;

Result<Conn> Listener::accept() {
  if (!fd_) return Errc::closed;
  // Our own reference: a server commonly closes and drops its Listener while
  // the accepting goroutine is still blocked in here.
  const std::shared_ptr<FdState> fd = fd_;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  OpArgs a{OpKind::accept};
  a.addr = reinterpret_cast<sockaddr*>(&ss);
  a.addrlen = &len;
  const long r = rt::io_op(*fd, a, 0);
  if (r < 0) {
    // After close(), the shutdown makes a blocked accept fail with EINVAL.
    if (r == -EINVAL && fd->closed()) return Errc::closed;
    return errc(r);
  }
  const int nfd = static_cast<int>(r);
  // TCP_NODELAY on, as Go does: request/response protocols must not wait for
  // Nagle's delayed ACK dance.
  const int one = 1;
  ::setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto st = newfd(nfd, FdState::Kind::socket);
  if (!st) return st.error();
  return Conn(std::move(*st));
}

std::error_code Listener::close() {
  if (!fd_ || !fd_->close()) return make_error_code(Errc::closed);
  return {};
}

Addr Listener::addr() const { return sockname(fd_.get(), false); }
int Listener::fd() const { return fdnum(fd_); }

// ---- listen, dial ----

namespace {

// new_socket() makes a TCP socket for family with the backend's flags.
Result<std::shared_ptr<FdState>> new_socket(int family, FdState::Kind kind) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | rt::backend().socket_flags(), 0);
  if (fd < 0) return std::error_code(errno, std::generic_category());
  return newfd(fd, kind);
}

}  // namespace

Result<Listener> listen(std::string_view hostport, const ListenOptions& opts) {
  Result<Addr> a = parse_addr(hostport);
  if (!a) return a.error();
  auto st = new_socket(a->ss.ss_family, FdState::Kind::listener);
  if (!st) return st.error();
  const int fd = (*st)->fd;
  const int one = 1, zero = 0;
  // SO_REUSEADDR: a restarted server can bind while old connections linger in
  // TIME_WAIT (Go sets it too).
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (opts.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    return std::error_code(errno, std::generic_category());
  }
  if (a->ss.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a->ss), a->len) < 0) {
    return std::error_code(errno, std::generic_category());
  }
  if (::listen(fd, opts.backlog) < 0) return std::error_code(errno, std::generic_category());
  return Listener(std::move(*st));
}

Result<Conn> dial(std::string_view hostport, std::chrono::nanoseconds timeout) {
  Result<Addr> a = parse_addr(hostport);
  if (!a) return a.error();
  auto st = new_socket(a->ss.ss_family, FdState::Kind::socket);
  if (!st) return st.error();
  OpArgs op{OpKind::connect};
  op.addr = reinterpret_cast<sockaddr*>(&a->ss);
  op.alen = a->len;
  const std::int64_t deadline = timeout.count() > 0 ? rt::nanotime() + timeout.count() : 0;
  const long r = rt::io_op(**st, op, deadline);
  if (r < 0) return errc(r);
  const int one = 1;
  ::setsockopt((*st)->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Conn(std::move(*st));
}

namespace detail {

bool accept_backoff(std::error_code ec, std::chrono::milliseconds& delay) {
  // Temporary: out of descriptors or buffers, or a connection that died in
  // the backlog. Anything else (closed, EINVAL, EBADF) ends the loop.
  const int e = ec.category() == std::generic_category() ? ec.value() : 0;
  const bool temporary = e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == ECONNABORTED ||
                         e == EINTR || e == EAGAIN || e == EPROTO || e == EPERM;
  if (!temporary) return false;
  if (e == ECONNABORTED || e == EINTR || e == EAGAIN || e == EPROTO) return true;  // retry at once
  // Go's net/http: 5 ms, doubling, at most 1 s.
  delay = delay.count() == 0 ? std::chrono::milliseconds(5) : std::min(delay * 2, std::chrono::milliseconds(1000));
  rt::log()->warn("accept: {}; retrying in {} ms", ec.message(), delay.count());
  gort::sleep(delay);
  return true;
}

}  // namespace detail

}  // namespace gort::net
