// netpollinit and the dispatch from the scheduler and the net/fs calls to the
// backend chosen at start-up; the blocking path for threads without a P.
#include "io/poll.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/log.hpp"
#include "base/print.hpp"
#include "init.hpp"
#include "io/io.hpp"
#include "sched/sched_io.hpp"

namespace gort::rt {

namespace {
Backend* be = nullptr;  // never destroyed: Ms use it while the process exits
}  // namespace

Backend& backend() {
  if (be == nullptr) schedinit();  // a plain thread using gort::net before gort::main
  return *be;
}

void io_fatal(const char* what, int err) { fatal(fmt::format("{}: {}", what, std::strerror(err))); }

void netpollinit() {
  const std::string& want = runtime_config().io_backend;
  if (want != "epoll") {
    try {
      Backend* u = make_uring_backend();
      for (P* p : sched.allp) u->init_p(p);
      be = u;
    } catch (const std::system_error& e) {
      // io.backend=uring insists; auto falls back, saying why once.
      if (want == "uring") {
        fatal(fmt::format("io.backend=uring: cannot set up io_uring: {}", e.what()));
      }
      log()->warn("io_uring unavailable ({}); using the epoll backend (io.backend=epoll to silence)", e.what());
      // Ps set up before the failure (RLIMIT_MEMLOCK running out part way)
      // must not look like io_uring Ps to the scheduler. Their rings stay
      // mapped, unused: a one-off cost at start-up.
      for (P* p : sched.allp) {
        p->poller = nullptr;
        p->io = PollHint{};
      }
    }
  }
  if (be == nullptr) {
    try {
      Backend* e = make_epoll_backend();
      for (P* p : sched.allp) e->init_p(p);
      be = e;
    } catch (const std::system_error& e) {
      fatal(fmt::format("cannot set up the epoll backend: {}", e.what()));
    }
  }
  log()->debug("io backend: {}", be->name());
}

void netpoll(P* p, GList& ready, int max) { be->netpoll(p, ready, max); }
void netpollflush(P* p) { be->flush(p); }
void netpollwait(P* p, std::int64_t until) { be->wait(p, until); }
void netpollbreak(P* p) { be->wake(p); }
bool netpollpending(P* p) { return be->pending(p); }


const char* io_backend_name() { return backend().name().data(); }

bool netpollblock(std::atomic<std::uintptr_t>& gpp, WaitReason reason, bool (*onwait)(void*), void* arg) {
  std::uintptr_t old = gpp.load(std::memory_order_acquire);
  for (;;) {
    if (old == kReady) {
      if (gpp.compare_exchange_weak(old, 0, std::memory_order_acq_rel)) return true;
      continue;
    }
    // Another goroutine waits on the word: leave it to that one; our caller
    // retries its operation, as after a wake-up without readiness.
    if (old != 0) return false;
    if (gpp.compare_exchange_weak(old, kWait, std::memory_order_acq_rel)) break;
  }
  if (onwait != nullptr && !onwait(arg)) return gpp.exchange(0, std::memory_order_acq_rel) == kReady;
  // Publish ourselves only once off our stack (rule 4 of runtime.hpp); if an
  // unblock replaced kWait meanwhile, resume at once.
  gopark(
      [](G* gp, void* arg) {
        std::uintptr_t w = kWait;
        return static_cast<std::atomic<std::uintptr_t>*>(arg)->compare_exchange_strong(
            w, reinterpret_cast<std::uintptr_t>(gp), std::memory_order_acq_rel);
      },
      &gpp, reason);
  return gpp.exchange(0, std::memory_order_acq_rel) == kReady;
}

G* netpollunblock(std::atomic<std::uintptr_t>& gpp, bool ioready) {
  std::uintptr_t old = gpp.load(std::memory_order_acquire);
  for (;;) {
    if (old == kReady) return nullptr;
    if (old == 0 && !ioready) return nullptr;
    const std::uintptr_t nv = ioready ? kReady : 0;
    if (gpp.compare_exchange_weak(old, nv, std::memory_order_acq_rel)) break;
  }
  if (old <= kWait) return nullptr;  // nobody parked: a parking goroutine resumes by itself
  return reinterpret_cast<G*>(old);
}

void netpollwake(std::atomic<std::uintptr_t>& gpp, bool ioready) {
  if (G* gp = netpollunblock(gpp, ioready)) goready(gp);
}

long io_op(net::FdState& fd, const OpArgs& a, std::int64_t deadline) {
  net::FdRef ref(&fd);
  if (!ref) return -EBADF;
  // A deadline already past fails at once (Go). The coarse clock (5 ns, not
  // ~100 ns; a server sets a read deadline before every read) never runs
  // ahead of nanotime: a deadline it misses by a tick is still enforced by
  // the backend's timer, just after the call started.
  if (deadline != 0 && nanotime_coarse() >= deadline) return -ETIMEDOUT;
  long r;
  if (getgp_parkable() != nullptr && be != nullptr) {
    // A safe point: on epoll a goroutine whose calls never block (data always
    // waiting) would otherwise keep its P for ever.
    checkpreempt();
    r = be->op(fd, a, deadline);
  } else {
    r = op_blocking(fd, a, deadline);
  }
  // An operation that close() woke reports the close, not what the shutdown
  // made the kernel say (EOF, EPIPE, EINVAL).
  if (r <= 0 && fd.closed()) return -EBADF;
  return r;
}

long syscall_op(int fd, const OpArgs& a, bool nonblock) {
  long r = 0;
  const int dw = nonblock ? MSG_DONTWAIT : 0;
  switch (a.kind) {
    case OpKind::read:
      r = a.off < 0 ? ::read(fd, a.buf, a.len) : ::pread(fd, a.buf, a.len, a.off);
      break;
    case OpKind::write:
      r = a.off < 0 ? ::write(fd, a.buf, a.len) : ::pwrite(fd, a.buf, a.len, a.off);
      break;
    case OpKind::recv:
      r = ::recv(fd, a.buf, a.len, dw);
      break;
    case OpKind::send:
      r = ::send(fd, a.buf, a.len, dw | MSG_NOSIGNAL);
      break;
    case OpKind::accept:
      r = ::accept4(fd, a.addr, a.addrlen, SOCK_CLOEXEC | (be != nullptr ? be->socket_flags() : 0));
      break;
    case OpKind::connect:
      r = ::connect(fd, a.addr, a.alen);
      break;
    case OpKind::fsync:
      r = ::fsync(fd);
      break;
  }
  return r < 0 ? -errno : r;
}

long op_blocking(net::FdState& fd, const OpArgs& a, std::int64_t deadline) {
  if (fd.kind == net::FdState::Kind::file) {
    // Regular files are always "ready": the call blocks in the kernel.
    entersyscall();
    long r = syscall_op(fd.fd, a, false);
    exitsyscall();
    return r;
  }
  if (a.kind == OpKind::connect) {
    // A non-blocking socket (epoll backend) answers EINPROGRESS: wait until
    // writable, then read the outcome from SO_ERROR.
    long r = syscall_op(fd.fd, a, false);
    if (r != -EINPROGRESS) return r;
  }
  const short ev = a.kind == OpKind::send || a.kind == OpKind::write || a.kind == OpKind::connect ? POLLOUT : POLLIN;
  for (;;) {
    if (a.kind != OpKind::connect && a.kind != OpKind::accept) {
      long r = syscall_op(fd.fd, a, true);
      if (r != -EAGAIN) return r;
    }
    int ms = -1;
    if (deadline != 0) {
      const std::int64_t left = deadline - nanotime();
      if (left <= 0) return -ETIMEDOUT;
      ms = static_cast<int>((left + 999'999) / 1'000'000);
    }
    pollfd pfd{fd.fd, ev, 0};
    entersyscall();
    int n = ::poll(&pfd, 1, ms);
    exitsyscall();
    if (n < 0 && errno != EINTR) return -errno;
    if (fd.closed()) return -EBADF;
    if (n <= 0) continue;
    if (a.kind == OpKind::connect) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
      return -err;
    }
    if (a.kind == OpKind::accept) {
      long r = syscall_op(fd.fd, a, true);
      if (r != -EAGAIN) return r;
    }
  }
}

}  // namespace gort::rt

namespace gort::net {

FdState::FdState(int fd_, Kind kind_) : fd(fd_), kind(kind_) {}

FdState::~FdState() {
  // The last handle is gone: no operation can hold a reference (they run
  // inside the handles' member functions), so this closes the descriptor now.
  close();
  if (rt::be != nullptr) rt::be->unregister_fd(*this);
}

bool FdState::incref() {
  const std::uint64_t v = state_.fetch_add(kRef, std::memory_order_acquire);
  if ((v & kClosed) != 0) {
    decref();
    return false;
  }
  return true;
}

void FdState::decref() {
  const std::uint64_t v = state_.fetch_sub(kRef, std::memory_order_acq_rel) - kRef;
  if (v == kClosed) maybe_closefd();
}

bool FdState::close() {
  const std::uint64_t v = state_.fetch_or(kClosed, std::memory_order_acq_rel);
  if ((v & kClosed) != 0) return false;
  if (kind != Kind::file && v / kRef != 0) {
    // Operations in flight: shutdown wakes a blocked accept (EINVAL), recv (0)
    // or send (EPIPE), whichever backend, ring or thread waits on it. Only
    // then: it sends a FIN, which would spoil an abortive close (SO_LINGER 0).
    ::shutdown(fd, SHUT_RDWR);
  }
  if (rt::be != nullptr) rt::be->unblock(*this);
  maybe_closefd();
  return true;
}

// maybe_closefd() closes the descriptor if it is closed and unreferenced,
// exactly once: only the CAS from "closed, no refs" to "done" does it.
void FdState::maybe_closefd() {
  std::uint64_t want = kClosed;
  if (state_.compare_exchange_strong(want, kClosed | kDone, std::memory_order_acq_rel)) ::close(fd);
}

}  // namespace gort::net
