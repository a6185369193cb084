// serve_conn(): one connection's read, parse, write loop.
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "http/http.hpp"

namespace http {

namespace {

using namespace std::chrono_literals;

/*
 * InBuf holds what was read and not yet consumed. The Session consumes every
 * complete line and all body bytes, so between reads it holds at most one
 * partial line: 8 KiB covers any ordinary request, and a longer line doubles
 * the buffer up to max_header_bytes, where the Session refuses it with 431.
 */
class InBuf {
 public:
  explicit InBuf(std::size_t max_header_bytes)
      : cap_(kInitial), limit_(std::max(kInitial, max_header_bytes)), buf_(std::make_unique_for_overwrite<char[]>(cap_)) {}

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
    if (end_ == cap_ && cap_ < limit_) {
      const std::size_t cap = std::min(cap_ * 2, limit_);
      auto grown = std::make_unique_for_overwrite<char[]>(cap);
      std::memcpy(grown.get(), buf_.get(), end_);
      buf_ = std::move(grown);
      cap_ = cap;
    }
    return {buf_.get() + end_, cap_ - end_};
  }
  // commit() appends the n bytes just read into space().
  void commit(std::size_t n) { end_ += n; }

 private:
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

}  // namespace

void serve_conn(gort::net::Conn conn, const gort::HttpSettings& settings) {
  // Answers are small and each is written once: Nagle's algorithm would only
  // hold one back waiting for an ACK of the previous one.
  const int one = 1;
  setsockopt(conn.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  Session session(settings.max_header_bytes);
  InBuf in(settings.max_header_bytes);
  std::string out;
  out.reserve(4096);
  for (;;) {
    const std::size_t n = session.feed(in.data(), out);
    in.consume(n);
    if (!out.empty()) {
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
    // nothing for that long, between requests or inside one, is dropped.
    if (settings.idle_timeout.count() > 0) conn.set_read_deadline(gort::net::Clock::now() + settings.idle_timeout);
    const gort::IoResult r = conn.read(space);
    if (!r) return;
    in.commit(r.n);
  }
}

}  // namespace http
