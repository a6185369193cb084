// The io_uring backend: one ring per P (docs/design.md "I/O").
//
// A goroutine prepares its SQE on its P's ring and parks; the SQEs of all the
// goroutines that parked since are submitted together when the P runs out of
// goroutines (findrunnable) or when kSubmitBatch have piled up, so a busy P
// pays one io_uring_enter for many operations. Completions are reaped by the
// P's owner at every switch (a load of the CQ tail when there are none) and
// in findrunnable; an idle P's M sleeps in io_uring_enter(GETEVENTS) with the
// next timer deadline, woken by a write to the P's eventfd, whose read is
// always pending on the ring.
//
// Pinning: the operation record (UringOp) and its buffers live on the parked
// goroutine's stack or in its objects; it resumes only when the operation's
// own completion was reaped, so the kernel never writes into memory that has
// been reused.
//
// Deadlines: a timer in the P's heap (owner-only: only the M holding the P
// runs it) that submits IORING_OP_ASYNC_CANCEL for the operation; its
// completion (-ECANCELED) is still waited for. Not a linked timeout: one of
// those per read cost 7% of the HTTP server's CPU (hrtimer start and cancel
// under the timer base's irq lock, a second SQE and CQE), while our timer is
// a heap push and pop, and deadlines rarely fire.
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>

#include "base/print.hpp"
#include "init.hpp"
#include "io/io.hpp"
#include "io/poll.hpp"
#include "sched/sched_io.hpp"

namespace gort::rt {

namespace {

// Submit without waiting for the P to go idle once this many SQEs are queued:
// a P that never idles must still get its I/O going. 32 SQEs cost ~70 ns each
// in one enter against ~450 ns alone (docs/kernel.md), so the batch has paid off.
constexpr unsigned kSubmitBatch = 32;
// user_data of completions that carry no operation: the deadline cancels
// (their operation's own completion says what happened) and the wake-up read.
constexpr std::uint64_t kIgnore = 0;
constexpr std::uint64_t kWake = 1;
// user_data of a multishot accept: its AcceptQ's address with this bit set
// (operation records are 8-byte aligned, so their low bits are clear).
constexpr std::uint64_t kAcceptTag = 2;

// io.recv_bufring: a provided-buffer ring per P for recv (buffer group 0).
constexpr unsigned kBufCount = 256;     // a power of two, as the ring needs
constexpr unsigned kBufSize = 16384;    // 4 MiB per P

struct UringP {
  io_uring ring;
  int efd = -1;
  std::uint64_t efdbuf = 0;
  io_uring_buf_ring* br = nullptr;  // null when io.recv_bufring is off
  std::byte* bufs = nullptr;
};

static_assert(kSqTaskrun == IORING_SQ_TASKRUN, "pollhint.hpp restates liburing's flag");

}  // namespace

// io.multishot_accept: one multishot IORING_OP_ACCEPT per listener, armed on
// the ring of the P where an accept first had to wait. Its completions queue
// the new descriptors here for whichever goroutine accepts next, on any P.
// Freed by the listener's unregister_fd, or, if still armed then, by its
// final completion (no IORING_CQE_F_MORE), which the shutdown in unblock()
// brings about.
struct AcceptQ {
  Lock lock;                // guards the rest
  std::deque<int> ready;    // accepted, not yet handed out
  int err = 0;              // the error that ended the multishot, for one accepter
  std::deque<std::atomic<std::uintptr_t>*> waiters;  // accepters' wake words, FIFO
  bool armed = false;
  bool dead = false;        // the listener is gone
};

namespace {

// acceptq_free() closes what nobody claimed and frees q (not armed).
void acceptq_free(AcceptQ* q) {
  for (int fd : q->ready) ::close(fd);
  delete q;
}

// One operation in flight, on its goroutine's stack.
struct UringOp {
  G* g = nullptr;
  void* buf = nullptr;  // recv with a provided buffer: where netpoll copies the bytes
  int res = 0;
  bool done = false;  // written and read only by the P's owner (rule 1)
  RuntimeTimer deadline;     // owner-only: see "Deadlines" above
};

UringP* up(P* p) { return static_cast<UringP*>(p->poller); }

class Uring;
Uring* be_uring = nullptr;  // for the deadline timers' function

class Uring final : public Backend {
 public:
  Uring() {
    // A probe ring: fails here, not in init_p, when io_uring is off (sysctl
    // io_uring_disabled, seccomp) or the memlock limit is too small.
    io_uring r;
    int e = io_uring_queue_init(8, &r, 0);
    if (e < 0) throw std::system_error(-e, std::generic_category(), "io_uring_setup");
    const bool extarg = (r.features & IORING_FEAT_EXT_ARG) != 0;
    io_uring_queue_exit(&r);
    if (!extarg) throw std::system_error(ENOSYS, std::generic_category(), "io_uring without EXT_ARG (kernel < 5.11)");
  }

  std::string_view name() const override { return "io_uring"; }

  void init_p(P* p) override {
    auto* u = new UringP;
    const Config& c = runtime_config();
    io_uring_params params{};
    // The CQ holds completions between two reaps: with many connections per
    // P a burst can exceed the SQ size, so give it room (overflow is not lost
    // on kernels with NODROP, but costs a slow path).
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = c.io_entries * 8;
    if (c.io_coop_taskrun) {
      // Completions are not pushed by interrupting the submitting thread (an
      // IPI while it runs goroutines); they wait as task work until that
      // thread enters the kernel, which our Ms do at every submit and wait,
      // and the TASKRUN flag tells netpoll to enter when it finds them
      // waiting. A sleeping thread is still woken for them.
      params.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    }
    if (c.io_sqpoll) {
      params.flags |= IORING_SETUP_SQPOLL;
      params.sq_thread_idle = 10;  // ms
    }
    int e = io_uring_queue_init_params(c.io_entries, &u->ring, &params);
    if (e < 0) {
      delete u;
      throw std::system_error(-e, std::generic_category(), "io_uring_setup for a P");
    }
    u->efd = ::eventfd(0, EFD_CLOEXEC);
    if (u->efd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    if (c.io_recv_bufring) setup_bufring(u);
    p->poller = u;
    p->io.cqtail = u->ring.cq.ktail;
    p->io.cqhead = u->ring.cq.khead;
    if (c.io_coop_taskrun) p->io.sqflags = u->ring.sq.kflags;
    arm_wake(p);
    flush(p);
  }

  void netpoll(P* p, GList& ready, int max) override {
    UringP* u = up(p);
    unsigned head;
    unsigned seen = 0;
    int n = 0;  // goroutines listed
    // No more than max (the scheduler passes its run queue's room): the rest
    // wait in the CQ, in completion order, for the next look. Overflowing into
    // the global queue instead starved them (drained one per 61 ticks while
    // this P stays busy: 136 ms p99 at 1,000 echo connections).
    if (p->io.sqflags != nullptr && (IO_URING_READ_ONCE(*p->io.sqflags) & IORING_SQ_TASKRUN) != 0) {
      io_uring_get_events(&u->ring);  // run the task work that posts the completions
    }
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
      if (n >= max) break;
      seen++;
      const std::uint64_t ud = cqe->user_data;
      if (ud == kIgnore) continue;
      if (ud == kWake) {
        arm_wake(p);
        continue;
      }
      if ((ud & kAcceptTag) != 0) {
        n += accept_complete(p, reinterpret_cast<AcceptQ*>(ud & ~kAcceptTag), cqe, ready);
        continue;
      }
      auto* op = reinterpret_cast<UringOp*>(ud);
      op->res = cqe->res;
      if ((cqe->flags & IORING_CQE_F_BUFFER) != 0) take_buffer(u, op, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      op->done = true;
      p->io.inflight--;
      ready.push(op->g);
      n++;
    }
    io_uring_cq_advance(&u->ring, seen);
  }

  void flush(P* p) override {
    UringP* u = up(p);
    for (;;) {
      int r = io_uring_submit(&u->ring);
      if (r >= 0 || r == -EINTR) break;
      if (r == -EBUSY || r == -EAGAIN) {
        // The CQ is backed up (or the kernel is short of memory): reap and retry.
        netpollinject(p);
        continue;
      }
      io_fatal("io_uring_enter (submit)", -r);
    }
    p->io.unsubmitted = 0;
  }

  void wait(P* p, std::int64_t until) override {
    UringP* u = up(p);
    __kernel_timespec ts{};
    if (until != 0) {
      std::int64_t left = until - nanotime();
      if (left <= 0) left = 0;
      ts.tv_sec = left / 1'000'000'000;
      ts.tv_nsec = left % 1'000'000'000;
    }
    // One enter submits what the P queued since its last flush (the wake-up
    // read's re-arm, at least) and sleeps. We do not hold p, but no other M
    // may touch its ring while we sleep in it (rule 2), so this M still acts
    // as its owner. -ETIME, -EINTR: back to findrunnable, which looks again.
    io_uring_cqe* cqe = nullptr;
    io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, until != 0 ? &ts : nullptr, nullptr);
    p->io.unsubmitted = 0;
  }

  bool pending(P* p) const override { return p->io.inflight != 0; }

  void wake(P* p) override {
    const std::uint64_t one = 1;
    if (::write(up(p)->efd, &one, sizeof one) < 0 && errno != EAGAIN) io_fatal("eventfd write", errno);
  }

  long op(net::FdState& fd, const OpArgs& a, std::int64_t deadline) override {
    if (a.kind == OpKind::accept && fd.aq != nullptr) return accept_multishot(fd);
    const long r = run(fd, a, deadline, true);
    // Every provided buffer in use: this recv goes without one.
    return r == -ENOBUFS && a.kind == OpKind::recv ? run(fd, a, deadline, false) : r;
  }

  int register_fd(net::FdState& fd) override {
    if (fd.kind == net::FdState::Kind::listener && runtime_config().io_multishot_accept) fd.aq = new AcceptQ;
    return 0;
  }

  void unregister_fd(net::FdState& fd) override {
    AcceptQ* q = fd.aq;
    if (q == nullptr) return;
    fd.aq = nullptr;
    q->lock.lock();
    q->dead = true;
    const bool armed = q->armed;
    q->lock.unlock();
    if (!armed) acceptq_free(q);  // else its final completion frees it
  }

  void unblock(net::FdState& fd) override {
    // An armed multishot accept holds the socket open in the kernel even with
    // nobody accepting: shut it down so the multishot ends.
    if (fd.aq != nullptr) ::shutdown(fd.fd, SHUT_RDWR);
  }
  int socket_flags() const override { return 0; }

 private:
  // run() submits a and parks until its completion; bufsel lets a recv take
  // a provided buffer (io.recv_bufring).
  long run(net::FdState& fd, const OpArgs& a, std::int64_t deadline, bool bufsel) {
    P* p = getm()->p;
    // The kernel and the P's timer heap hold op's address until it completes.
    NoMove nomove(getgp(), "an io_uring operation");
    UringOp op;
    op.g = getgp();
    io_uring_sqe* sqe = get_sqe(p);
    prep(sqe, fd.fd, a);
    if (bufsel && a.kind == OpKind::recv && up(p)->br != nullptr) {
      // The kernel picks a buffer when data arrives; netpoll copies it out.
      op.buf = a.buf;
      sqe->addr = 0;
      sqe->len = static_cast<unsigned>(std::min<std::size_t>(a.len, kBufSize));
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
    }
    io_uring_sqe_set_data(sqe, &op);
    p->io.inflight++;
    if (++p->io.unsubmitted >= kSubmitBatch) flush(p);
    if (deadline != 0) {
      op.deadline.when = deadline;
      op.deadline.f = cancel_op;
      op.deadline.arg = &op;
      op.deadline.owneronly = true;
      addtimer(&op.deadline);  // on p: we run on it
    }
    gopark([](G*, void* arg) { return !static_cast<UringOp*>(arg)->done; }, &op, WaitReason::io_wait);
    if (deadline != 0) deltimer(&op.deadline);
    if (op.res == -ECANCELED && deadline != 0) return -ETIMEDOUT;
    return op.res;
  }

  // setup_bufring() registers u's provided-buffer ring (buffer group 0).
  static void setup_bufring(UringP* u) {
    const std::size_t ringbytes = kBufCount * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, ringbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap for the buffer ring");
    u->br = static_cast<io_uring_buf_ring*>(mem);
    u->bufs = new std::byte[std::size_t{kBufCount} * kBufSize];
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(u->br);
    reg.ring_entries = kBufCount;
    reg.bgid = 0;
    if (int e = io_uring_register_buf_ring(&u->ring, &reg, 0); e < 0) {
      throw std::system_error(-e, std::generic_category(), "io_uring_register_buf_ring");
    }
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < kBufCount; i++) {
      io_uring_buf_ring_add(u->br, u->bufs + std::size_t{i} * kBufSize, kBufSize, static_cast<unsigned short>(i),
                            io_uring_buf_ring_mask(kBufCount), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(u->br, kBufCount);
  }

  // take_buffer() copies a recv's bytes from provided buffer bid into the
  // parked goroutine's buffer and gives the buffer back to the ring, at reap
  // time: only the P's owner may touch its buffer ring (rule 1), and the
  // goroutine may resume on another P.
  static void take_buffer(UringP* u, UringOp* op, unsigned bid) {
    std::byte* b = u->bufs + std::size_t{bid} * kBufSize;
    if (op->res > 0) std::memcpy(op->buf, b, static_cast<std::size_t>(op->res));
    io_uring_buf_ring_add(u->br, b, kBufSize, static_cast<unsigned short>(bid), io_uring_buf_ring_mask(kBufCount), 0);
    io_uring_buf_ring_advance(u->br, 1);
  }

  // accept_multishot() takes the next descriptor from fd's queue, arming the
  // multishot accept on this P's ring if none is, and parking until one comes.
  long accept_multishot(net::FdState& fd) {
    AcceptQ* q = fd.aq;
    for (;;) {
      if (fd.closed()) return -EBADF;
      q->lock.lock();
      if (!q->ready.empty()) {
        const int nfd = q->ready.front();
        q->ready.pop_front();
        q->lock.unlock();
        return nfd;
      }
      if (q->err != 0) {
        const int e = q->err;
        q->err = 0;
        q->lock.unlock();
        return -e;
      }
      if (!q->armed) {
        // Prepared outside the lock: a full ring flushes, and a flush may
        // reap (netpoll takes q->lock).
        q->armed = true;
        q->lock.unlock();
        P* p = getm()->p;
        io_uring_sqe* sqe = get_sqe(p);
        io_uring_prep_multishot_accept(sqe, fd.fd, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(q) | kAcceptTag);
        p->io.inflight++;
        if (++p->io.unsubmitted >= kSubmitBatch) flush(p);
        continue;
      }
      // Park on a wake word, without holding q->lock: this switch may reap
      // completions, and netpoll takes q->lock (poll.hpp rule 4).
      std::atomic<std::uintptr_t> word{0};
      q->waiters.push_back(&word);
      q->lock.unlock();
      netpollblock(word, WaitReason::io_wait_accept);
    }
  }

  // accept_complete() files one completion of q's multishot accept (run by
  // the P's owner in netpoll) and lists in ready the accepters it concerns:
  // one per new descriptor, all when the multishot ended. Returns how many.
  static int accept_complete(P* p, AcceptQ* q, const io_uring_cqe* cqe, GList& ready) {
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    q->lock.lock();
    if (cqe->res >= 0) {
      if (q->dead) {
        ::close(cqe->res);
      } else {
        q->ready.push_back(cqe->res);
      }
    } else if (!more) {
      q->err = -cqe->res;
    }
    std::size_t wake = cqe->res >= 0 ? 1 : 0;
    if (!more) {
      q->armed = false;
      p->io.inflight--;
      wake = q->waiters.size();  // they look again: take the error, or re-arm
    }
    std::atomic<std::uintptr_t>* ws[64];
    std::size_t n = 0;
    while (n < wake && n < std::size(ws) && !q->waiters.empty()) {
      ws[n++] = q->waiters.front();
      q->waiters.pop_front();
    }
    const bool free = !more && q->dead;
    q->lock.unlock();
    int listed = 0;
    for (std::size_t i = 0; i < n; i++) {
      if (G* gp = netpollunblock(*ws[i], true)) {
        ready.push(gp);
        listed++;
      }
    }
    if (free) acceptq_free(q);
    return listed;
  }

  // get_sqe() returns a free SQE of p's ring. Ring full: submit and retry,
  // never drop (with SQPOLL the kernel thread frees the slots: wait for it).
  io_uring_sqe* get_sqe(P* p) {
    UringP* u = up(p);
    io_uring_sqe* sqe;
    while ((sqe = io_uring_get_sqe(&u->ring)) == nullptr) {
      flush(p);
      if (io_uring_sq_space_left(&u->ring) == 0) io_uring_sqring_wait(&u->ring);
    }
    return sqe;
  }

  // arm_wake() keeps a read of the eventfd pending: netpollbreak's write
  // completes it, which ends the owner's io_uring_enter wait.
  void arm_wake(P* p) {
    UringP* u = up(p);
    io_uring_sqe* sqe = get_sqe(p);
    io_uring_prep_read(sqe, u->efd, &u->efdbuf, sizeof u->efdbuf, 0);
    io_uring_sqe_set_data64(sqe, kWake);
    p->io.unsubmitted++;
  }

  // cancel_op() is a deadline timer's function, run by the M holding the
  // operation's P (owneronly): it cancels the operation by its user_data. The
  // operation may have completed meanwhile (the cancel then finds nothing); a
  // later operation at the same address is queued after this cancel, so it
  // cannot be the one cancelled. Submitted at once: the deadline has passed.
  static void cancel_op(void* op) {
    P* p = getm()->p;
    Uring* self = be_uring;
    io_uring_sqe* sqe = self->get_sqe(p);
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data64(sqe, kIgnore);
    p->io.unsubmitted++;
    self->flush(p);
  }

  static void prep(io_uring_sqe* sqe, int fd, const OpArgs& a) {
    switch (a.kind) {
      case OpKind::read:
        io_uring_prep_read(sqe, fd, a.buf, static_cast<unsigned>(a.len), static_cast<std::uint64_t>(a.off));
        break;
      case OpKind::write:
        io_uring_prep_write(sqe, fd, a.buf, static_cast<unsigned>(a.len), static_cast<std::uint64_t>(a.off));
        break;
      case OpKind::recv:
        io_uring_prep_recv(sqe, fd, a.buf, a.len, 0);
        break;
      case OpKind::send:
        io_uring_prep_send(sqe, fd, a.buf, a.len, MSG_NOSIGNAL);
        break;
      case OpKind::accept:
        io_uring_prep_accept(sqe, fd, a.addr, a.addrlen, SOCK_CLOEXEC);
        break;
      case OpKind::connect:
        io_uring_prep_connect(sqe, fd, a.addr, a.alen);
        break;
      case OpKind::fsync:
        io_uring_prep_fsync(sqe, fd, 0);
        break;
    }
  }
};

}  // namespace

Backend* make_uring_backend() {
  auto* u = new Uring;
  be_uring = u;
  return u;
}

}  // namespace gort::rt
