// The epoll backend, for kernels or sandboxes without io_uring (io.backend=
// epoll, or auto when io_uring cannot be set up). Go's netpoll_epoll.go model:
// one epoll instance, every socket registered once, edge-triggered, with a
// poll descriptor holding the goroutine waiting to read and the one waiting
// to write (Go's pollDesc rg/wg: 0, kReady, kWait, or the parked G).
//
// An operation tries the non-blocking call first and parks only on EAGAIN, so
// a socket with data pending costs one syscall, as in Go. The Ps share the
// epoll instance: each idle P's M sleeps in ppoll on it and on the P's own
// eventfd (netpollbreak); a busy P harvests it in findrunnable when its run
// queue is empty. Regular files cannot be polled: their calls block the M
// inside gort::syscall, so sysmon hands the P to another M.
//
// Poll descriptors are never freed, only reused (as Go's pollCache): an event
// harvested just before its socket was closed may still name one, and the
// worst it can do then is a spurious wake-up, after which the operation
// retries its call and parks again.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>

#include "io/io.hpp"
#include "io/poll.hpp"
#include "sched/sched_io.hpp"

namespace gort::rt {

struct PollDesc {
  std::atomic<std::uintptr_t> rg{0};
  std::atomic<std::uintptr_t> wg{0};
  RuntimeTimer rt;  // read and write deadlines
  RuntimeTimer wt;
  PollDesc* link = nullptr;  // free list
};

namespace {

struct EpollP {
  int efd = -1;
};

// The deadline timers: wake the goroutine without readiness; it then sees the
// deadline has passed.
void rtimeout(void* arg) { netpollwake(static_cast<PollDesc*>(arg)->rg, false); }
void wtimeout(void* arg) { netpollwake(static_cast<PollDesc*>(arg)->wg, false); }

class Epoll final : public Backend {
 public:
  Epoll() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  }

  std::string_view name() const override { return "epoll"; }

  void init_p(P* p) override {
    auto* e = new EpollP;
    e->efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->efd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    p->poller = e;
  }

  void netpoll(P*, GList& ready, int max) override {
    if (nwait_.load(std::memory_order_relaxed) == 0) return;
    // Each event readies at most two goroutines (a reader and a writer).
    epoll_event evs[128];
    const int n = ::epoll_wait(epfd_, evs, std::clamp(max / 2, 1, 128), 0);
    for (int i = 0; i < n; i++) {
      auto* pd = static_cast<PollDesc*>(evs[i].data.ptr);
      const std::uint32_t ev = evs[i].events;
      if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        if (G* gp = netpollunblock(pd->rg, true)) ready.push(gp);
      }
      if ((ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
        if (G* gp = netpollunblock(pd->wg, true)) ready.push(gp);
      }
    }
  }

  void flush(P*) override {}

  void wait(P* p, std::int64_t until) override {
    auto* e = static_cast<EpollP*>(p->poller);
    pollfd fds[2] = {{epfd_, POLLIN, 0}, {e->efd, POLLIN, 0}};
    timespec ts{};
    timespec* tsp = nullptr;
    if (until != 0) {
      std::int64_t left = until - nanotime();
      if (left <= 0) return;
      ts.tv_sec = left / 1'000'000'000;
      ts.tv_nsec = left % 1'000'000'000;
      tsp = &ts;
    }
    if (::ppoll(fds, 2, tsp, nullptr) > 0 && (fds[1].revents & POLLIN) != 0) {
      std::uint64_t v;
      while (::read(e->efd, &v, sizeof v) > 0) {
      }
    }
  }

  bool pending(P*) const override { return nwait_.load(std::memory_order_relaxed) != 0; }

  void wake(P* p) override {
    const std::uint64_t one = 1;
    if (::write(static_cast<EpollP*>(p->poller)->efd, &one, sizeof one) < 0 && errno != EAGAIN) {
      io_fatal("eventfd write", errno);
    }
  }

  long op(net::FdState& fd, const OpArgs& a, std::int64_t deadline) override {
    if (fd.kind == net::FdState::Kind::file || fd.pd == nullptr) return op_blocking(fd, a, deadline);
    const bool w = a.kind == OpKind::send || a.kind == OpKind::write || a.kind == OpKind::connect;
    if (a.kind == OpKind::connect) {
      long r = syscall_op(fd.fd, a, true);
      if (r != -EINPROGRESS) return r;
      while (!pdblock(fd, true, deadline)) {
        if (fd.closed()) return -EBADF;
        if (deadline != 0 && nanotime() >= deadline) return -ETIMEDOUT;
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
      return -err;
    }
    for (;;) {
      long r = syscall_op(fd.fd, a, true);
      if (r != -EAGAIN) return r;
      if (!pdblock(fd, w, deadline)) {
        if (fd.closed()) return -EBADF;
        if (deadline != 0 && nanotime() >= deadline) return -ETIMEDOUT;
      }
    }
  }

  int register_fd(net::FdState& fd) override {
    if (fd.kind == net::FdState::Kind::file) return 0;
    PollDesc* pd = pdalloc();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = pd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd.fd, &ev) < 0) {
      const int err = errno;
      pdfree(pd);
      return -err;
    }
    fd.pd = pd;
    return 0;
  }

  void unregister_fd(net::FdState& fd) override {
    if (fd.pd == nullptr) return;
    pdfree(fd.pd);
    fd.pd = nullptr;
  }

  void unblock(net::FdState& fd) override {
    if (fd.pd == nullptr) return;
    netpollwake(fd.pd->rg, false);
    netpollwake(fd.pd->wg, false);
  }

  int socket_flags() const override { return SOCK_NONBLOCK; }

 private:
  // pdblock() parks until pd is ready for reading (or writing, w), the
  // deadline passes or the descriptor is closed. True if it became ready.
  bool pdblock(const net::FdState& fd, bool w, std::int64_t deadline) {
    PollDesc* pd = fd.pd;
    std::atomic<std::uintptr_t>& gpp = w ? pd->wg : pd->rg;
    struct Wait {
      const net::FdState* fd;
      RuntimeTimer* t;
    } wait{&fd, nullptr};
    if (deadline != 0) {
      wait.t = w ? &pd->wt : &pd->rt;
      wait.t->when = deadline;
      wait.t->period = 0;
      wait.t->f = w ? wtimeout : rtimeout;
      wait.t->arg = pd;
    }
    // The timer is armed and the close checked only once the word says
    // kWait: a timeout or close before then would find nobody to wake.
    nwait_.fetch_add(1, std::memory_order_relaxed);
    const bool ready = netpollblock(gpp, WaitReason::io_wait, [](void* a) {
      auto* wt = static_cast<Wait*>(a);
      if (wt->t != nullptr) addtimer(wt->t);
      return !wt->fd->closed();
    }, &wait);
    nwait_.fetch_sub(1, std::memory_order_relaxed);
    if (wait.t != nullptr) deltimer(wait.t);
    return ready;
  }

  PollDesc* pdalloc() {
    lock_.lock();
    PollDesc* pd = free_;
    if (pd != nullptr) free_ = pd->link;
    lock_.unlock();
    if (pd == nullptr) pd = new PollDesc;
    pd->rg.store(0, std::memory_order_relaxed);
    pd->wg.store(0, std::memory_order_relaxed);
    return pd;
  }

  void pdfree(PollDesc* pd) {
    lock_.lock();
    pd->link = free_;
    free_ = pd;
    lock_.unlock();
  }

  int epfd_ = -1;
  std::atomic<int> nwait_{0};  // goroutines parked on a PollDesc
  Lock lock_;                  // guards free_
  PollDesc* free_ = nullptr;
};

}  // namespace

Backend* make_epoll_backend() { return new Epoll; }

}  // namespace gort::rt
