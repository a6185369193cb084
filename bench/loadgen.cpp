/* The echo load generator of `gort-bench net` (see loadgen.hpp): closed-loop
 * ping-pong over N loopback TCP connections, one thread, level-triggered epoll.
 *
 * Per request the generator does one send() and, per readiness event, one
 * recv(); a round trip is timed from just before the send to just after the
 * recv that completes the reply (the client-observed latency, both kernels'
 * loopback paths included). Every connection has at most one request in
 * flight, so a reply can never be confused with the next one and a short
 * write of a 64-byte message into an empty send buffer cannot happen. */
#include "loadgen.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "sys.hpp"

namespace gort::bench {

void LatencyHistogram::record(std::uint64_t ns) {
  ++counts_[index(ns)];
  ++total_;
}

void LatencyHistogram::clear() {
  counts_.fill(0);
  total_ = 0;
}

std::size_t LatencyHistogram::index(std::uint64_t ns) {
  constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;
  if (ns < kSub) return ns;
  // The top kSubBits+1 bits of ns pick the bucket: the power of two, then the sub-bucket.
  const int shift = static_cast<int>(std::bit_width(ns)) - 1 - kSubBits;
  return (static_cast<std::size_t>(shift) + 1) * kSub + static_cast<std::size_t>((ns >> shift) - kSub);
}

double LatencyHistogram::midpoint_ns(std::size_t i) {
  constexpr std::size_t kSub = std::size_t{1} << kSubBits;
  if (i < kSub) return static_cast<double>(i);
  const int shift = static_cast<int>(i / kSub) - 1;
  const double lo = std::ldexp(static_cast<double>(i % kSub + kSub), shift);
  return lo + (std::ldexp(1.0, shift) - 1) / 2;
}

double LatencyHistogram::percentile_ns(double q) const {
  if (total_ == 0) return 0;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return midpoint_ns(i);
  }
  return midpoint_ns(kBuckets - 1);
}

namespace {

// thread_cpu_s() is the calling thread's CPU time (user + system) in seconds.
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One client connection: its socket, the reply bytes received so far, and when the request went out.
struct Conn {
  int fd = -1;
  std::size_t got = 0;
  std::uint64_t sent_ns = 0;
};

// A LoadRun owns the epoll instance and the connections of one run and closes them all at the end.
class LoadRun {
 public:
  // The constructor prepares `cfg.connections` unconnected slots and the message.
  explicit LoadRun(const EchoLoadConfig& cfg)
      : cfg_(cfg),
        conns_(static_cast<std::size_t>(cfg.connections)),
        msg_(cfg.message_bytes),
        reply_(cfg.message_bytes) {
    for (std::size_t i = 0; i < msg_.size(); ++i) msg_[i] = static_cast<char>('a' + i % 26);
  }
  // The destructor closes every socket and the epoll instance.
  ~LoadRun() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (ep_ >= 0) close(ep_);
  }
  LoadRun(const LoadRun&) = delete;
  LoadRun& operator=(const LoadRun&) = delete;

  // connect_all() opens every connection (non-blocking connects, all in flight at once); "" or the error.
  std::string connect_all(std::uint64_t deadline_ns);
  // prime() does one verified round trip on every connection; "" or the error.
  std::string prime(std::uint64_t deadline_ns);
  // load() runs the warm-up and the window and fills r.
  void load(EchoLoadResult& r, const std::function<void()>& window_start, const std::function<void()>& window_end);

 private:
  // send_request() stamps c and writes the message; false on a failed or short write.
  bool send_request(Conn& c, std::uint64_t t) {
    c.sent_ns = t;
    c.got = 0;
    return send(c.fd, msg_.data(), msg_.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg_.size());
  }
  // receive() reads what is pending on c; 1 when the reply is complete, 0 when not yet, -1 on error (error set).
  int receive(Conn& c, std::string& error) {
    const ssize_t n = recv(c.fd, reply_.data() + c.got, msg_.size() - c.got, 0);
    if (n > 0) {
      c.got += static_cast<std::size_t>(n);
      return c.got == msg_.size() ? 1 : 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    error = n == 0 ? std::string("the server closed a connection") : errno_text("recv");
    return -1;
  }
  // await_all() waits on epoll until step(conn, key, error) has returned 1
  // (done) for every connection, each event calling it once: 0 is not yet,
  // -1 an error (in error). The timeout message counts the ones that were
  // done ("timed out connecting: 3 of 64 connected").
  template <class F>
  std::string await_all(std::uint64_t deadline_ns, const char* doing, const char* done_word, F step) {
    std::size_t pending = conns_.size();
    std::string error;
    while (pending > 0) {
      const std::uint64_t now = now_ns();
      if (now >= deadline_ns) {
        return std::string("timed out ") + doing + ": " + std::to_string(conns_.size() - pending) + " of " +
               std::to_string(conns_.size()) + " " + done_word;
      }
      const int n = epoll_wait(ep_, events_.data(), static_cast<int>(events_.size()), wait_ms(now, deadline_ns));
      if (n < 0 && errno != EINTR) return errno_text("epoll_wait");
      for (int k = 0; k < n; ++k) {
        const std::uint64_t key = events_[static_cast<std::size_t>(k)].data.u64;
        const int r = step(conns_[key], key, error);
        if (r < 0) return error;
        if (r > 0) --pending;
      }
    }
    return "";
  }

  // wait_ms() is the epoll timeout until deadline_ns, rounded up, at least 1 ms.
  static int wait_ms(std::uint64_t now, std::uint64_t deadline_ns) {
    if (deadline_ns <= now) return 1;
    return static_cast<int>(std::min<std::uint64_t>((deadline_ns - now + 999'999) / 1'000'000, 1000));
  }

  const EchoLoadConfig& cfg_;
  std::vector<Conn> conns_;
  std::vector<char> msg_, reply_;
  std::vector<epoll_event> events_ = std::vector<epoll_event>(512);
  int ep_ = -1;
};

std::string LoadRun::connect_all(std::uint64_t deadline_ns) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return errno_text("epoll_create1");
  const sockaddr_in sa = loopback(cfg_.port);
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_text("socket");
    conns_[i].fd = fd;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0 && errno != EINPROGRESS) {
      return errno_text("connect");
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0) return errno_text("epoll_ctl");
  }
  return await_all(deadline_ns, "connecting", "connected", [&](Conn& c, std::uint64_t key, std::string& error) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      error = std::string("connect: ") + std::strerror(err);
      return -1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) < 0) {
      error = errno_text("epoll_ctl");
      return -1;
    }
    return 1;
  });
}

std::string LoadRun::prime(std::uint64_t deadline_ns) {
  for (Conn& c : conns_) {
    if (!send_request(c, now_ns())) return errno_text("send");
  }
  return await_all(deadline_ns, "waiting for the first replies", "answered",
                   [&](Conn& c, std::uint64_t, std::string& error) {
                     const int done = receive(c, error);
                     if (done <= 0) return done;
                     if (std::memcmp(reply_.data(), msg_.data(), msg_.size()) != 0) {
                       error = "the reply differs from the request";
                       return -1;
                     }
                     c.got = 0;
                     return 1;
                   });
}

void LoadRun::load(EchoLoadResult& r, const std::function<void()>& window_start,
                   const std::function<void()>& window_end) {
  LatencyHistogram hist;
  const std::uint64_t t0 = now_ns();
  const std::uint64_t win0 = t0 + static_cast<std::uint64_t>(cfg_.warmup_s * 1e9);
  const std::uint64_t win1 = win0 + static_cast<std::uint64_t>(cfg_.duration_s * 1e9);
  for (Conn& c : conns_) {
    if (!send_request(c, now_ns())) {
      r.error = errno_text("send");
      return;
    }
  }
  bool measuring = false;
  std::uint64_t tw0 = 0;
  double cpu0 = 0;
  for (;;) {
    const std::uint64_t now = now_ns();
    if (!measuring && now >= win0) {
      window_start();
      tw0 = now_ns();
      cpu0 = thread_cpu_s();
      hist.clear();
      r.requests = 0;
      measuring = true;
    }
    if (measuring && now >= win1) {
      window_end();
      r.window_s = static_cast<double>(now_ns() - tw0) * 1e-9;
      r.cpu_s = thread_cpu_s() - cpu0;
      break;
    }
    const int n =
        epoll_wait(ep_, events_.data(), static_cast<int>(events_.size()), wait_ms(now, measuring ? win1 : win0));
    if (n < 0 && errno != EINTR) {
      r.error = errno_text("epoll_wait");
      return;
    }
    for (int k = 0; k < n; ++k) {
      Conn& c = conns_[events_[static_cast<std::size_t>(k)].data.u64];
      const int done = receive(c, r.error);
      if (done < 0) return;
      if (done == 0) continue;
      const std::uint64_t t = now_ns();
      if (measuring) {
        hist.record(t - c.sent_ns);
        ++r.requests;
      }
      ++r.total_requests;
      if (!send_request(c, t)) {
        r.error = errno_text("send");
        return;
      }
    }
  }
  r.p50_us = hist.percentile_ns(0.50) / 1e3;
  r.p99_us = hist.percentile_ns(0.99) / 1e3;
  r.ok = true;
}

}  // namespace

EchoLoadResult run_echo_load(const EchoLoadConfig& cfg, const std::function<void()>& window_start,
                             const std::function<void()>& window_end) {
  EchoLoadResult r;
  LoadRun run(cfg);
  // Generous: a full accept queue drops SYNs, and the client retries after 1 s, 3 s, ...
  constexpr std::uint64_t kSetupNs = 20'000'000'000;
  r.error = run.connect_all(now_ns() + kSetupNs);
  if (r.error.empty()) r.error = run.prime(now_ns() + kSetupNs);
  if (!r.error.empty()) return r;
  r.total_requests = static_cast<std::uint64_t>(cfg.connections);
  run.load(r, window_start, window_end);
  return r;
}

}  // namespace gort::bench
