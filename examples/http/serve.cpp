// serve_conn(): one connection's read, parse, write loop.
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include "http/http.hpp"

namespace http {

namespace {

using namespace std::chrono_literals;
using gort::net::Clock;

// The bytes all InBufs hold (input_buffer_bytes()).
std::atomic<std::size_t> in_bytes{0};

/*
 * InBuf holds what was read and not yet consumed. The Session consumes every
 * complete line and all body bytes, so between reads it holds at most one
 * partial line: 8 KiB covers any ordinary request, and a longer line doubles
 * the buffer up to max_header_bytes, where the Session refuses it with 431.
 * Once that request is over the buffer goes back to 8 KiB (shrink()): else one
 * big head would pin up to max_header_bytes for the connection's life, 1 MiB
 * per idle keep-alive connection by default.
 */
class InBuf {
 public:
  explicit InBuf(std::size_t max_header_bytes)
      : cap_(kInitial), limit_(std::max(kInitial, max_header_bytes)), buf_(std::make_unique_for_overwrite<char[]>(cap_)) {
    in_bytes.fetch_add(cap_, std::memory_order_relaxed);
  }
  InBuf(const InBuf&) = delete;
  InBuf& operator=(const InBuf&) = delete;
  ~InBuf() { in_bytes.fetch_sub(cap_, std::memory_order_relaxed); }

  // data() is the unconsumed input.
  std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
  bool empty() const { return begin_ == end_; }
  // consume() drops the first n bytes of data().
  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // space() is where the next read goes, made large enough by moving the
  // partial line to the front or growing; empty if the buffer is at its limit.
  std::span<char> space() {
    if (cap_ - end_ < kMinRead && begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == cap_ && cap_ < limit_) resize(std::min(cap_ * 2, limit_));
    return {buf_.get() + end_, cap_ - end_};
  }
  // commit() appends the n bytes just read into space().
  void commit(std::size_t n) { end_ += n; }
  // shrink() returns a grown buffer to its initial size, keeping the data (the
  // start of a pipelined request) unless that needs more room.
  void shrink() {
    if (cap_ > kInitial && end_ - begin_ <= kInitial) resize(kInitial);
  }

 private:
  // resize() moves the data to the front of a new buffer of cap bytes.
  void resize(std::size_t cap) {
    auto fresh = std::make_unique_for_overwrite<char[]>(cap);
    std::memcpy(fresh.get(), buf_.get() + begin_, end_ - begin_);
    buf_ = std::move(fresh);
    in_bytes.fetch_add(cap, std::memory_order_relaxed);
    in_bytes.fetch_sub(cap_, std::memory_order_relaxed);
    cap_ = cap;
    end_ -= begin_;
    begin_ = 0;
  }

  static constexpr std::size_t kInitial = 8 * 1024;
  static constexpr std::size_t kMinRead = 1024;  // compact rather than read less than this
  std::size_t cap_;
  std::size_t limit_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::unique_ptr<char[]> buf_;
};

/*
 * linger_close() ends a connection after a response that closes it. Closing a
 * socket with unread input makes the kernel send RST, and an RST arriving
 * before the client has read the response can destroy it (the case of a 400
 * sent while the client is still sending). So, as Go's closeWriteAndWait and
 * nginx's lingering_close: send FIN, then read and discard until the client
 * closes too, for at most kLingerTime and kLingerBytes.
 */
constexpr auto kLingerTime = 500ms;
constexpr std::size_t kLingerBytes = 256 * 1024;

void linger_close(gort::net::Conn& conn) {
  conn.shutdown(gort::net::Conn::Shut::write);
  conn.set_read_deadline(gort::net::Clock::now() + kLingerTime);
  char sink[4096];
  for (std::size_t total = 0; total < kLingerBytes;) {
    const gort::IoResult r = conn.read(std::span<char>(sink));
    if (!r) break;
    total += r.n;
  }
  conn.close();
}

// after() is the deadline d after now; none when d is 0.
Clock::time_point after(Clock::time_point now, std::chrono::milliseconds d) {
  return d.count() > 0 ? now + d : Clock::time_point{};
}

/*
 * HeadTimer holds the deadline of the head being read (http.header_timeout).
 * The idle timeout limits each wait for input, so alone it let a client that
 * sends a byte every few seconds keep its connection for ever (slowloris).
 * As Go's ReadHeaderTimeout, the clock starts at the accept for the first
 * request, and for the next ones on a kept-alive connection when their first
 * byte is in: the wait before it is the idle timeout's business.
 */
class HeadTimer {
 public:
  HeadTimer(std::chrono::milliseconds limit, Clock::time_point now) : limit_(limit), deadline_(after(now, limit)) {}

  // deadline() is when the head the Session is reading must be complete; none
  // while it reads a body, waits for a next request's first byte, or without
  // limit. now is the time the caller read for this turn.
  Clock::time_point deadline(const Session& s, Clock::time_point now) {
    if (limit_.count() == 0 || !s.reading_head()) return {};
    if (s.answered() != timed_) {
      if (!s.head_started()) return {};
      timed_ = s.answered();
      deadline_ = after(now, limit_);
    }
    return deadline_;
  }

 private:
  std::chrono::milliseconds limit_;
  Clock::time_point deadline_;
  std::uint64_t timed_ = 0;  // answered() when the head deadline_ times began
};

}  // namespace

std::size_t input_buffer_bytes() { return in_bytes.load(std::memory_order_relaxed); }

void serve_conn(gort::net::Conn conn, const Settings& settings) {
  // Answers are small and each is written once: Nagle's algorithm would only
  // hold one back waiting for an ACK of the previous one.
  const int one = 1;
  setsockopt(conn.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  Session session(settings.max_header_bytes);
  InBuf in(settings.max_header_bytes);
  HeadTimer head(settings.header_timeout, Clock::now());
  std::string out;
  out.reserve(4096);
  for (;;) {
    const std::uint64_t answered = session.answered();
    const std::size_t n = session.feed(in.data(), out);
    in.consume(n);
    if (session.answered() != answered) in.shrink();
    // One clock read a turn serves every deadline below: a read costs ~100 ns
    // on our VMs, and three a request showed in the user CPU per request. So
    // the idle and head deadlines count from before the answer's write, which
    // is instant unless the client does not read (then the write deadline,
    // shorter than the idle one by default, ends it first).
    const Clock::time_point now = Clock::now();
    if (!out.empty()) {
      // A write waits only once the kernel's buffers hold megabytes of answers
      // the client has not read; without a deadline, a client that pipelines
      // and never reads would pin them and this goroutine for ever.
      conn.set_write_deadline(after(now, settings.write_timeout));
      if (!conn.write_all(out)) return;
      out.clear();
    }
    if (session.closing()) return linger_close(conn);
    // feed() stopped at kOutFlush with requests still buffered: serve them first.
    if (n > 0 && !in.empty()) continue;
    const std::span<char> space = in.space();
    // Never empty, as the Session refuses a partial line of max_header_bytes;
    // checked because a zero-byte read would spin.
    if (space.empty()) return;
    // The idle timeout is a limit on each wait for input: a client that sends
    // nothing for that long, between requests or inside one, is dropped
    // without an answer. The head's deadline, when it comes first, earns a 408.
    const Clock::time_point idle = after(now, settings.idle_timeout);
    const Clock::time_point head_end = head.deadline(session, now);
    const bool head_first = head_end != Clock::time_point{} && (idle == Clock::time_point{} || head_end <= idle);
    conn.set_read_deadline(head_first ? head_end : idle);
    const gort::IoResult r = conn.read(space);
    if (!r) {
      if (!head_first || r.ec != std::errc::timed_out) return;
      session.timeout(out);
      continue;  // to send the 408, if any, and close
    }
    in.commit(r.n);
  }
}

}  // namespace http
