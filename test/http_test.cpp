// The example servers (examples/): the HTTP parser through http::Session on a
// table of ordinary and hostile requests, fed whole and in pieces; the same
// table over real connections to http::serve_conn; pipelining, a byte-by-byte
// sender, the idle, header and write timeouts, the input buffer shrinking
// after a big head; the echo handler under 1,000 connections; the [http]
// table of the conf file (http::load_settings).
//
// Inside goroutines nothing that blocks runs inside a doctest macro: values
// are computed first, then checked. CHECK_MESSAGE (like INFO) pushes a context
// on a thread_local stack and pops it at the end of the statement, and a
// goroutine that blocked in between may have changed threads.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "echo/echo.hpp"
#include "gort/gort.hpp"
#include "gort/net.hpp"
#include "http/chunked.hpp"
#include "http/http.hpp"
#include "http/response.hpp"
#include "http/settings.hpp"
#include "base/config.hpp"
#include "temp_conf.hpp"

using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

constexpr std::size_t kMaxHeader = 4096;

// Want is one expected response: its status, and whether it answers HEAD (no body).
struct Want {
  int status;
  bool head = false;
};

// Case is one entry of the table: bytes a client sends, the responses it
// must get, and whether the server must then close the connection.
struct Case {
  std::string name;
  std::string input;
  std::vector<Want> want;
  bool closes;
};

const std::string kHost = "Host: a\r\n";

std::vector<Case> table() {
  const std::string get = "GET / HTTP/1.1\r\n" + kHost + "\r\n";
  const std::string chunked = "GET / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n";
  std::string many_fields = "GET / HTTP/1.1\r\n" + kHost;
  for (int i = 0; i < 600; i++) many_fields += "X-A: b\r\n";
  many_fields += "\r\n";
  std::string crlfs;
  for (int i = 0; i < 3000; i++) crlfs += "\r\n";
  return {
      // Well-formed.
      {"GET /", get, {{200}}, false},
      {"HEAD /", "HEAD / HTTP/1.1\r\n" + kHost + "\r\n", {{200, true}}, false},
      {"GET other path", "GET /nope HTTP/1.1\r\n" + kHost + "\r\n", {{404}}, false},
      {"HEAD other path", "HEAD /nope HTTP/1.1\r\n" + kHost + "\r\n", {{404, true}}, false},
      {"query ignored", "GET /?q=1 HTTP/1.1\r\n" + kHost + "\r\n", {{200}}, false},
      {"absolute-form", "GET http://a/ HTTP/1.1\r\n" + kHost + "\r\n", {{200}}, false},
      {"absolute-form without path", "GET HTTP://a HTTP/1.1\r\n" + kHost + "\r\n", {{200}}, false},
      {"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", {{200}}, true},
      {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", {{200}}, false},
      {"Connection: close", "GET / HTTP/1.1\r\n" + kHost + "Connection: close\r\n\r\n", {{200}}, true},
      {"Connection list with close", "GET / HTTP/1.1\r\n" + kHost + "Connection: keep-alive, CLOSE\r\n\r\n",
       {{200}}, true},
      {"HTTP/1.9 answered as 1.1", "GET / HTTP/1.9\r\n" + kHost + "\r\n", {{200}}, false},
      {"bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", {{200}}, false},
      {"empty lines before the request", "\r\n\r\n" + get, {{200}}, false},
      {"field name case and OWS", "GET / HTTP/1.1\r\nhOsT:\t a \t\r\nX-Empty:\r\n\r\n", {{200}}, false},
      {"obs-text in a value", "GET / HTTP/1.1\r\n" + kHost + "X-A: caf\xc3\xa9\r\n\r\n", {{200}}, false},
      {"pipelined", get + "HEAD / HTTP/1.1\r\n" + kHost + "\r\nGET /x HTTP/1.1\r\n" + kHost + "\r\n" + get,
       {{200}, {200, true}, {404}, {200}}, false},
      // Other methods.
      {"POST with body", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\n\r\nhello" + get, {{405}, {200}},
       false},
      {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n", {{405}}, false},
      {"unknown method", "BREW / HTTP/1.1\r\n" + kHost + "\r\n", {{501}}, false},
      {"lowercase method", "get / HTTP/1.1\r\n" + kHost + "\r\n", {{501}}, false},
      {"Expect: 100-continue", "PUT / HTTP/1.1\r\n" + kHost + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
       {{100}, {405}}, false},
      // Bodies.
      {"GET with Content-Length body", "GET / HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\n" +
       kHost + "\r\n", {{200}, {404}}, false},
      {"repeated equal Content-Length", "GET / HTTP/1.1\r\n" + kHost + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
       {{200}}, false},
      {"chunked body", chunked + "5\r\nhello\r\n0\r\n\r\n" + get, {{200}, {200}}, false},
      {"chunked with extensions and trailers", chunked + "5;a=b ; c\r\nhello\r\nA\r\n0123456789\r\n0;z\r\nX-T: v\r\n\r\n",
       {{200}}, false},
      {"whitespace before a chunk extension or CR", chunked + "5 \t;a\r\nhello\r\n3 \r\nabc\r\n0\t\r\n\r\n",
       {{200}}, false},
      {"chunked, then pipelined 404", chunked + "3\r\nabc\r\n0\r\n\r\nGET /x HTTP/1.1\r\n" + kHost + "\r\n",
       {{200}, {404}}, false},
      // Malformed request lines.
      {"no version (HTTP/0.9)", "GET /\r\n\r\n", {{400}}, true},
      {"two spaces", "GET  / HTTP/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"tab separator", "GET\t/ HTTP/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"trailing garbage", "GET / HTTP/1.1 x\r\n" + kHost + "\r\n", {{400}}, true},
      {"lowercase version", "GET / http/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"version without minor", "GET / HTTP/1\r\n" + kHost + "\r\n", {{400}}, true},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n" + kHost + "\r\n", {{505}}, true},
      {"NUL in method", "GE\0T / HTTP/1.1\r\n"s + kHost + "\r\n", {{400}}, true},
      {"NUL in target", "GET /\0 HTTP/1.1\r\n"s + kHost + "\r\n", {{400}}, true},
      {"non-ASCII target", "GET /\xff HTTP/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"target not origin-form", "GET foo HTTP/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"asterisk target on GET", "GET * HTTP/1.1\r\n" + kHost + "\r\n", {{400}}, true},
      {"bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n", {{400}}, true},
      {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"s, {{400}}, true},
      // Malformed header fields.
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", {{400}}, true},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {{400}}, true},
      {"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", {{400}}, true},
      {"field without colon", "GET / HTTP/1.1\r\n" + kHost + "NoColon\r\n\r\n", {{400}}, true},
      {"space before colon", "GET / HTTP/1.1\r\n" + kHost + "X-A : b\r\n\r\n", {{400}}, true},
      {"empty field name", "GET / HTTP/1.1\r\n" + kHost + ": b\r\n\r\n", {{400}}, true},
      {"bad byte in field name", "GET / HTTP/1.1\r\n" + kHost + "X(A: b\r\n\r\n", {{400}}, true},
      {"obs-fold", "GET / HTTP/1.1\r\n" + kHost + "X-A: b\r\n c\r\n\r\n", {{400}}, true},
      {"NUL in value", "GET / HTTP/1.1\r\n"s + kHost + "X-A: b\0c\r\n\r\n"s, {{400}}, true},
      {"DEL in value", "GET / HTTP/1.1\r\n" + kHost + "X-A: b\x7f\r\n\r\n", {{400}}, true},
      {"HEAD with a bad field", "HEAD / HTTP/1.1\r\n" + kHost + "X-A : b\r\n\r\n", {{400, true}}, true},
      // Malformed framing.
      {"Content-Length not a number", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: abc\r\n\r\n", {{400}}, true},
      {"negative Content-Length", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: -1\r\n\r\n", {{400}}, true},
      {"empty Content-Length", "POST / HTTP/1.1\r\n" + kHost + "Content-Length:\r\n\r\n", {{400}}, true},
      {"Content-Length list", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 3, 3\r\n\r\nabc", {{400}}, true},
      {"conflicting Content-Length", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n",
       {{400}}, true},
      {"overflowing Content-Length", "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 99999999999999999999\r\n\r\n",
       {{400}}, true},
      {"Content-Length and Transfer-Encoding",
       "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {{400}}, true},
      {"unsupported Transfer-Encoding", "POST / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: gzip\r\n\r\n", {{501}}, true},
      {"Transfer-Encoding list", "POST / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: gzip, chunked\r\n\r\n", {{501}},
       true},
      {"two Transfer-Encodings", "POST / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       {{501}}, true},
      {"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size not hex", chunked + "zz\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size empty", chunked + "\r\n\r\n", {{400}}, true},
      {"chunk size 0x prefix", chunked + "0x5\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size overflow", chunked + "1000000000000000\r\n", {{400}}, true},
      {"chunk data longer than its size", chunked + "5\r\nhelloXX\r\n0\r\n\r\n", {{400}}, true},
      {"chunked with bare LF", chunked + "5\nhello\n0\n\n", {{400}}, true},
      {"bad trailer", chunked + "0\r\nBad Trailer\r\n\r\n", {{400}}, true},
      {"control byte in a chunk extension", chunked + "5;\x01\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size, space, digit", chunked + "5 6\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size, space, word", chunked + "5 junk\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      {"chunk size, tab, word", chunked + "5\tjunk;a\r\nhello\r\n0\r\n\r\n", {{400}}, true},
      // Over http.max_header_bytes.
      {"huge field", "GET / HTTP/1.1\r\n" + kHost + "X-Big: " + std::string(5000, 'a') + "\r\n\r\n", {{431}}, true},
      {"many fields", many_fields, {{431}}, true},
      {"overlong URI", "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n" + kHost + "\r\n", {{431}}, true},
      {"endless empty lines", crlfs, {{431}}, true},
      {"huge trailers", chunked + "0\r\nX-T: " + std::string(5000, 'a') + "\r\n\r\n", {{431}}, true},
      // Nothing after a fatal error is answered.
      {"request after a 400", "GET / HTTP/1.1\r\n\r\n" + get, {{400}}, true},
  };
}

// Parsed is a response found at the front of a buffer: status, size in bytes,
// and whether it said "Connection: close".
struct Parsed {
  int status;
  std::size_t size;
  bool close;
};

// parse_response() finds the response at the front of buf; nullopt while it
// is incomplete. head: it answers HEAD, so it has no body.
std::optional<Parsed> parse_response(std::string_view buf, bool head) {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view h = buf.substr(0, end + 2);
  if (!h.starts_with("HTTP/1.1 ") || h.size() < 12) return Parsed{-1, buf.size(), true};
  const int status = std::stoi(std::string(h.substr(9, 3)));
  std::size_t length = 0;
  if (const std::size_t cl = h.find("\r\nContent-Length: "); cl != std::string_view::npos) {
    length = std::stoul(std::string(h.substr(cl + 18)));
  }
  const std::size_t size = end + 4 + (head || status < 200 ? 0 : length);
  if (buf.size() < size) return std::nullopt;
  return Parsed{status, size, h.find("\r\nConnection: close\r\n") != std::string_view::npos};
}

// statuses() splits a Session's output into responses, expecting HEAD answers where want says.
std::vector<int> statuses(std::string_view out, const std::vector<Want>& want) {
  std::vector<int> got;
  while (!out.empty()) {
    const bool head = got.size() < want.size() && want[got.size()].head;
    const std::optional<Parsed> p = parse_response(out, head);
    if (!p) {
      got.push_back(-2);  // a truncated response
      break;
    }
    got.push_back(p->status);
    out.remove_prefix(p->size);
  }
  return got;
}

std::vector<int> want_statuses(const Case& c) {
  std::vector<int> v;
  for (const Want& w : c.want) v.push_back(w.status);
  return v;
}

// Fed is what a Session made of an input.
struct Fed {
  std::string out;
  bool closing = false;
  std::size_t left = 0;  // bytes of input not consumed
};

// feed() runs a new Session over input delivered step bytes at a time, as
// serve_conn does: unconsumed bytes are offered again with the next piece.
Fed feed(std::string_view input, std::size_t step) {
  http::Session s(kMaxHeader);
  Fed f;
  std::string pending;
  std::string out;
  for (std::size_t i = 0; i < input.size() && !s.closing(); i += step) {
    pending.append(input.substr(i, step));
    for (;;) {
      const std::size_t n = s.feed(pending, out);
      pending.erase(0, n);
      f.out += out;
      out.clear();
      if (n == 0 || pending.empty() || s.closing()) break;
    }
  }
  f.closing = s.closing();
  f.left = pending.size();
  return f;
}

// ---- over TCP ----

// Limits far beyond any test's run, except the one a test is about.
const http::Settings kSettings{
    .max_header_bytes = kMaxHeader, .idle_timeout = 600s, .header_timeout = 600s, .write_timeout = 600s};
const http::Settings kIdleSettings{
    .max_header_bytes = kMaxHeader, .idle_timeout = 20ms, .header_timeout = 600s, .write_timeout = 600s};
const http::Settings kHeadSettings{
    .max_header_bytes = kMaxHeader, .idle_timeout = 600s, .header_timeout = 50ms, .write_timeout = 600s};
const http::Settings kWriteSettings{
    .max_header_bytes = kMaxHeader, .idle_timeout = 600s, .header_timeout = 600s, .write_timeout = 50ms};
const http::Settings kBigSettings{
    .max_header_bytes = 1 << 20, .idle_timeout = 600s, .header_timeout = 600s, .write_timeout = 600s};

// The handlers are functions: accept_loop's goroutines call them by
// reference, possibly after the loop has ended.
void serve_http(gort::net::Conn c) { http::serve_conn(std::move(c), kSettings); }
void serve_http_idle(gort::net::Conn c) { http::serve_conn(std::move(c), kIdleSettings); }
void serve_http_head(gort::net::Conn c) { http::serve_conn(std::move(c), kHeadSettings); }
void serve_http_write(gort::net::Conn c) { http::serve_conn(std::move(c), kWriteSettings); }
void serve_http_big(gort::net::Conn c) { http::serve_conn(std::move(c), kBigSettings); }

// Server accepts on 127.0.0.1:<any port> in a goroutine until destroyed.
// Construct and destroy it in a goroutine.
class Server {
 public:
  explicit Server(void (&handler)(gort::net::Conn)) {
    gort::Result<gort::net::Listener> ln = gort::net::listen("127.0.0.1:0");
    REQUIRE(ln);
    ln_ = std::move(*ln);
    addr_ = ln_.addr().to_string();
    gort::go([this, &handler] {
      gort::net::accept_loop(ln_, handler);
      done_.send(0);
    });
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() {
    ln_.close();
    done_.recv();
  }
  const std::string& addr() const { return addr_; }

 private:
  gort::net::Listener ln_;
  std::string addr_;
  gort::Chan<int> done_{1};
};

// Client is a test connection that reads whole responses.
class Client {
 public:
  explicit Client(const std::string& addr) {
    gort::Result<gort::net::Conn> c = gort::net::dial(addr);
    REQUIRE(c);
    conn_ = std::move(*c);
    // Only to turn a server that never answers into a failure instead of a hang.
    conn_.set_read_deadline(gort::net::Clock::now() + 60s);
  }
  // send() writes s; false if the write failed.
  bool send(std::string_view s) { return static_cast<bool>(conn_.write_all(s)); }
  // next() reads the next response and returns its status; 0 if the stream
  // ended (or failed) first.
  int next(bool head = false) {
    for (;;) {
      if (const std::optional<Parsed> p = parse_response(buf_, head)) {
        buf_.erase(0, p->size);
        return p->status;
      }
      char tmp[4096];
      const gort::IoResult r = conn_.read(std::span<char>(tmp));
      if (!r) return 0;
      buf_.append(tmp, r.n);
    }
  }
  // ask() sends request and returns the status of the next response (0 as
  // next()), -1 if the send failed.
  int ask(std::string_view request) { return send(request) ? next() : -1; }
  // closed() is true when the server closes the connection with nothing more to say.
  bool closed() {
    if (!buf_.empty()) return false;
    char tmp[256];
    const gort::IoResult r = conn_.read(std::span<char>(tmp));
    return !r && r.ec != std::errc::timed_out;
  }

 private:
  gort::net::Conn conn_;
  std::string buf_;
};

const std::string kGet = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

// silent_closed() is true when a connection to addr that sends nothing is
// closed by the server without an answer.
bool silent_closed(const std::string& addr) {
  Client silent(addr);
  return silent.closed();
}

}  // namespace

// ---- Session, without I/O ----

TEST_CASE("parser: the table, fed whole and in pieces") {
  const std::vector<Case> cases = table();
  CHECK(cases.size() >= 25);
  for (const Case& c : cases) {
    for (std::size_t step : {c.input.size(), std::size_t{1}, std::size_t{7}}) {
      const Fed f = feed(c.input, step);
      CHECK_MESSAGE(statuses(f.out, c.want) == want_statuses(c), c.name, " step ", step);
      CHECK_MESSAGE(f.closing == c.closes, c.name, " step ", step);
      if (!c.closes) CHECK_MESSAGE(f.left == 0, c.name, " step ", step);
    }
  }
}

// without_dates() blanks the Date values, which differ between runs a second apart.
std::string without_dates(std::string out) {
  for (std::size_t i = out.find("\r\nDate: "); i != std::string::npos; i = out.find("\r\nDate: ", i + 1)) {
    out.replace(i + 8, http::kDateSize, http::kDateSize, 'x');
  }
  return out;
}

TEST_CASE("parser: mutated requests get the same answers however they are split") {
  // Table inputs with bytes replaced, inserted, deleted or truncated, from a
  // fixed seed: the Session must not crash (the ASan build checks memory),
  // and its answers must not depend on how the input arrives.
  const std::vector<Case> cases = table();
  std::mt19937 rng(12345);
  constexpr char kBytes[] = {'\r', '\n', ' ', '\t', ':', ';', '\0', '0', 'a', 'F', '/', ',', '\x7f', '\xff'};
  for (int iter = 0; iter < 20'000; iter++) {
    std::string in = cases[rng() % cases.size()].input;
    for (int k = 1 + static_cast<int>(rng() % 3); k > 0 && !in.empty(); k--) {
      const std::size_t at = rng() % in.size();
      const char b = kBytes[rng() % sizeof kBytes];
      switch (rng() % 4) {
        case 0: in[at] = b; break;
        case 1: in.insert(at, 1, b); break;
        case 2: in.erase(at, 1); break;
        default: in.resize(at); break;
      }
    }
    const Fed whole = feed(in, in.size() + 1);
    const std::string want = without_dates(whole.out);
    for (std::size_t step : {std::size_t{1}, std::size_t{7}}) {
      const Fed f = feed(in, step);
      if (without_dates(f.out) != want || f.closing != whole.closing || (!f.closing && f.left != whole.left)) {
        FAIL_CHECK("split ", step, " changes the answer to ", doctest::toString(in));
      }
    }
  }
}

TEST_CASE("parser: the hello response, for GET and HEAD") {
  constexpr std::string_view prefix = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: ";
  constexpr std::size_t head = prefix.size() + http::kDateSize + 4;
  Fed f = feed(kGet, kGet.size());
  CHECK(f.out.size() == head + 13);
  CHECK(f.out.starts_with(prefix));
  CHECK(f.out.substr(head - 4) == "\r\n\r\nHello, World!");
  f = feed("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 100);
  CHECK(f.out.size() == head);
  CHECK(f.out.starts_with(prefix));
}

TEST_CASE("parser: Connection headers of the answers") {
  Fed f = feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 100);
  CHECK(f.out.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
  f = feed("GET / HTTP/1.0\r\n\r\n", 100);
  CHECK(f.out.find("\r\nConnection: close\r\n") != std::string::npos);
  f = feed("GET / HTTP/1.1\r\n\r\n", 100);
  CHECK(f.out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(f.out.find("\r\nConnection: close\r\n") != std::string::npos);
  f = feed("POST / HTTP/1.1\r\nHost: a\r\n\r\n", 100);
  CHECK(f.out.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
  CHECK(f.out.find("Connection:") == std::string::npos);
}

TEST_CASE("parser: max_header_bytes is exact") {
  // A head of exactly kMaxHeader bytes, then one byte more.
  const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  const std::string fit = start + std::string(kMaxHeader - start.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(fit.size() == kMaxHeader);
  CHECK(statuses(feed(fit, fit.size()).out, {}) == std::vector<int>{200});
  CHECK(statuses(feed(fit, 1).out, {}) == std::vector<int>{200});
  const std::string over = start + std::string(kMaxHeader - start.size() - 3, 'a') + "\r\n\r\n";
  CHECK(statuses(feed(over, over.size()).out, {}) == std::vector<int>{431});
  CHECK(statuses(feed(over, 1).out, {}) == std::vector<int>{431});
}

TEST_CASE("parser: pipelined answers stop at kOutFlush and resume in order") {
  std::string in;
  constexpr int kRequests = 3000;
  for (int i = 0; i < kRequests; i++) in += i % 2 == 0 ? kGet : "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  http::Session s(kMaxHeader);
  std::string out;
  std::string_view rest = in;
  std::vector<int> got;
  while (!rest.empty()) {
    const std::size_t n = s.feed(rest, out);
    REQUIRE(n > 0);
    CHECK(out.size() < http::Session::kOutFlush + 1024);
    rest.remove_prefix(n);
    for (int st : statuses(out, {})) got.push_back(st);
    out.clear();
  }
  REQUIRE(got.size() == kRequests);
  for (int i = 0; i < kRequests; i++) CHECK(got[static_cast<std::size_t>(i)] == (i % 2 == 0 ? 200 : 404));
}

TEST_CASE("parser: a long Content-Length body arrives in many pieces") {
  const std::string body(100'000, 'b');
  const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + body + kGet;
  for (std::size_t step : {std::size_t{1}, std::size_t{4096}, in.size()}) {
    CHECK(statuses(feed(in, step).out, {}) == std::vector<int>{405, 200});
  }
}

TEST_CASE("chunked decoder: a chunk split anywhere, trailers bounded") {
  const std::string body = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nA: b\r\n\r\n";
  for (std::size_t split = 0; split <= body.size(); split++) {
    http::ChunkedDecoder d(100);
    std::size_t used = 0;
    http::ChunkedDecoder::Result r = d.consume(std::string_view(body).substr(0, split), &used);
    if (r == http::ChunkedDecoder::Result::more) r = d.consume(std::string_view(body).substr(split), &used);
    CHECK(r == http::ChunkedDecoder::Result::done);
    CHECK(used == body.size());
  }
  http::ChunkedDecoder d(10);
  std::size_t used = 0;
  CHECK(d.consume("0\r\nX-Long: 0123456789\r\n\r\n", &used) == http::ChunkedDecoder::Result::error);
  CHECK(d.status() == http::Status::header_too_large);
}

TEST_CASE("format_date is an IMF-fixdate") {
  char buf[http::kDateSize];
  http::format_date(784111777, buf);
  CHECK(std::string_view(buf, sizeof buf) == "Sun, 06 Nov 1994 08:49:37 GMT");
  http::format_date(951782400, buf);  // a leap day
  CHECK(std::string_view(buf, sizeof buf) == "Tue, 29 Feb 2000 00:00:00 GMT");
}

// ---- serve_conn over TCP ----

TEST_CASE("server: the table over TCP, then the connection closes or still serves") {
  gort::main([] {
    Server server(serve_http);
    for (const Case& c : table()) {
      Client client(server.addr());
      const bool sent = client.send(c.input);
      CHECK_MESSAGE(sent, c.name);
      std::vector<int> got;
      for (const Want& w : c.want) got.push_back(client.next(w.head));
      CHECK_MESSAGE(got == want_statuses(c), c.name);
      if (c.closes) {
        const bool closed = client.closed();
        CHECK_MESSAGE(closed, c.name);
      } else {
        const int again = client.ask(kGet);
        CHECK_MESSAGE(again == 200, c.name);
      }
    }
  });
}

TEST_CASE("server: pipelined requests are answered in order") {
  gort::main([] {
    Server server(serve_http);
    // Requests of each kind, sent by another goroutine while this one reads, so
    // neither side's socket buffer has to hold everything.
    constexpr int kRequests = 5000;
    std::string in;
    std::vector<Want> want;
    for (int i = 0; i < kRequests; i++) {
      switch (i % 4) {
        case 0:
          in += kGet;
          want.push_back({200});
          break;
        case 1:
          in += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n";
          want.push_back({404});
          break;
        case 2:
          in += "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
          want.push_back({200, true});
          break;
        default:
          in += "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
          want.push_back({405});
          break;
      }
    }
    Client client(server.addr());
    gort::WaitGroup wg;
    wg.add(1);
    std::atomic<bool> sent{false};
    gort::go([&] {
      sent.store(client.send(in));
      wg.done();
    });
    int in_order = 0;
    for (const Want& w : want) {
      if (client.next(w.head) != w.status) break;
      in_order++;
    }
    wg.wait();
    CHECK(sent.load());
    CHECK(in_order == kRequests);
  });
}

TEST_CASE("server: a byte-by-byte sender gets its answers") {
  gort::main([] {
    Server server(serve_http);
    Client client(server.addr());
    const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
                           "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"s + kGet;
    bool sent = true;
    for (char c : in) {
      sent = sent && client.send(std::string_view(&c, 1));
      gort::sleep(100us);  // so that the server sees the bytes in separate reads
    }
    CHECK(sent);
    std::vector<int> got;
    for (int i = 0; i < 3; i++) got.push_back(client.next());
    got.push_back(client.ask(kGet));
    CHECK(got == std::vector<int>{405, 200, 200, 200});
  });
}

TEST_CASE("server: idle connections are closed") {
  gort::main([] {
    Server server(serve_http_idle);
    const bool silent = silent_closed(server.addr());
    CHECK(silent);
    Client after_request(server.addr());
    const int answer = after_request.ask(kGet);
    const bool after_closed = after_request.closed();
    CHECK(answer == 200);
    CHECK(after_closed);
    Client partial(server.addr());
    const int none = partial.ask("GET / HTTP/1.1\r\nHo");
    CHECK(none == 0);  // closed without an answer
  });
}

TEST_CASE("server: a head trickled in a byte at a time gets 408 after header_timeout, then the close") {
  // Slowloris: every byte comes well within the idle timeout (600 s), and the
  // head never ends; only the head's own deadline (50 ms) can stop it.
  gort::main([] {
    Server server(serve_http_head);
    Client client(server.addr());
    std::atomic<bool> stop{false};
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {
      bool sent = client.send("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ");
      while (sent && !stop.load()) {
        gort::sleep(1ms);
        sent = client.send("a");
      }
      wg.done();
    });
    const int status = client.next();
    const bool closed = client.closed();
    stop.store(true);
    wg.wait();
    CHECK(status == 408);
    CHECK(closed);
  });
}

TEST_CASE("server: header_timeout closes a silent new connection without an answer, spares the keep-alive wait") {
  gort::main([] {
    Server server(serve_http_head);
    // Nothing of a request came: closed, nothing said (as Go).
    const bool silent = silent_closed(server.addr());
    CHECK(silent);
    // Between requests the idle timeout rules, not the head's: a client that
    // waits four header timeouts before its next request is still served.
    Client kept(server.addr());
    const int first = kept.ask(kGet);
    gort::sleep(200ms);
    const int second = kept.ask(kGet);
    CHECK(first == 200);
    CHECK(second == 200);
    // A next request that starts and stalls is timed from its first byte.
    const int stalled = kept.ask("GET / HTTP/1.1\r\nHo");
    const bool stalled_closed = kept.closed();
    CHECK(stalled == 408);
    CHECK(stalled_closed);
  });
}

TEST_CASE("server: a client that pipelines and never reads is dropped after write_timeout") {
  // The server's answers fill the client's receive buffer and its own send
  // buffer; its write then waits, and after write_timeout (50 ms) it closes.
  // The client's writes, stuck once the server stops reading, then fail with
  // a reset. Its 60 s write deadline only turns a server that never lets go
  // into a failure instead of a hang.
  gort::main([] {
    Server server(serve_http_write);
    gort::Result<gort::net::Conn> c = gort::net::dial(server.addr());
    REQUIRE(c);
    c->set_write_deadline(gort::net::Clock::now() + 60s);
    std::string batch;
    while (batch.size() < 64 * 1024) batch += kGet;
    constexpr std::size_t kCap = std::size_t{1} << 30;  // a server that never stops reading
    gort::IoResult r;
    for (std::size_t sent = 0; sent < kCap; sent += r.n) {
      r = c->write_all(batch);
      if (!r) break;
    }
    const bool dropped = !r && r.ec != std::errc::timed_out;
    CHECK_MESSAGE(dropped, r.ec.message());
  });
}

TEST_CASE("server: after a big head, the connection's input buffer shrinks back") {
  // One 700 KiB header field grows the buffer to 1 MiB; once that request is
  // answered the buffer must not keep it. A GET first makes sure the server
  // holds this connection's buffer before counting; the pipelined GET /x after
  // the big request must survive the shrink.
  gort::main([] {
    Server server(serve_http_big);
    Client client(server.addr());
    const int warm = client.ask(kGet);
    const std::size_t before = http::input_buffer_bytes();
    const std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(700 * 1024, 'b') + "\r\n\r\n";
    const bool sent = client.send(big + "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    const int big_status = client.next();
    const int next_status = client.next();
    // Answers are sent after the buffer is shrunk, so it is done by now. Other
    // connections can only be closing (earlier tests'), which lowers the sum.
    const std::size_t after = http::input_buffer_bytes();
    CHECK(warm == 200);
    CHECK(sent);
    CHECK(big_status == 200);
    CHECK(next_status == 404);
    CHECK_MESSAGE(after <= before, "input buffers held ", before, " bytes before, ", after, " after");
  });
}

// ---- echo ----

// Echo handlers still running: the test waits for them, so that no goroutine
// is left holding its buffer when the process exits (LeakSanitizer does not
// scan parked goroutines' stacks).
std::atomic<int> echo_live{0};
void serve_echo_counted(gort::net::Conn c) {
  echo_live.fetch_add(1);
  echo::serve_conn(std::move(c));
  echo_live.fetch_sub(1);
}

TEST_CASE("echo: 1,000 concurrent connections each get their bytes back") {
  gort::main([] {
    Server server(serve_echo_counted);
    constexpr int kConns = 1000;
    constexpr std::size_t kBytes = 4096;
    constexpr int kRounds = 3;
    gort::WaitGroup wg;
    std::atomic<int> ok{0};
    wg.add(kConns);
    for (int i = 0; i < kConns; i++) {
      gort::go([&, i] {
        std::string out(kBytes, '\0');
        for (std::size_t j = 0; j < kBytes; j++) out[j] = static_cast<char>('a' + (i + j) % 26);
        std::string back(kBytes, '\0');
        gort::Result<gort::net::Conn> c = gort::net::dial(server.addr());
        bool good = static_cast<bool>(c);
        for (int r = 0; good && r < kRounds; r++) {
          good = c->write_all(out) && c->read_full(std::span<char>(back)) && back == out;
        }
        if (good) ok.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    CHECK(ok.load() == kConns);
    while (echo_live.load() != 0) gort::sleep(std::chrono::milliseconds(1));  // they see EOF and end
  });
}

// ---- settings ----

namespace {

// settings_error() loads the [http] table of a file holding text and returns
// the SettingsError's message ("" if none), with the file's path as "FILE".
std::string settings_error(const std::string& text) {
  const gort::test::TempConf f(text);
  try {
    http::load_settings(f.path);
  } catch (const http::SettingsError& e) {
    std::string m = e.what();
    if (const std::size_t at = m.find(f.path); at != std::string::npos) m.replace(at, f.path.size(), "FILE");
    return m;
  }
  return "";
}

}  // namespace

TEST_CASE("settings: conf/http_server.conf restates the defaults, and the runtime leaves it to the server") {
  const http::Settings d;
  const http::Settings s = http::load_settings(GORT_SOURCE_DIR "/conf/http_server.conf");
  CHECK(s.max_header_bytes == d.max_header_bytes);
  CHECK(s.idle_timeout == d.idle_timeout);
  CHECK(s.header_timeout == d.header_timeout);
  CHECK(s.write_timeout == d.write_timeout);
  CHECK_NOTHROW(gort::rt::load_config({.conf_file = GORT_SOURCE_DIR "/conf/http_server.conf"}, nullptr, nullptr));
  // No file, or one without [http] (the runtime's own): the defaults.
  CHECK(http::load_settings("").idle_timeout == d.idle_timeout);
  CHECK(http::load_settings(GORT_SOURCE_DIR "/conf/gort.conf").max_header_bytes == d.max_header_bytes);
}

TEST_CASE("settings: [http] next to the runtime's tables, with units") {
  const gort::test::TempConf f(
      "[stack]\nsize = \"64KiB\"\n[http]\nmax_header_bytes = \"64KiB\"\nidle_timeout = \"90s\"\n"
      "header_timeout = \"50ms\"\nwrite_timeout = \"2m\"\n");
  const http::Settings s = http::load_settings(f.path);
  CHECK(s.max_header_bytes == 64 * 1024);
  CHECK(s.idle_timeout == 90s);
  CHECK(s.header_timeout == 50ms);
  CHECK(s.write_timeout == 2min);
  CHECK(gort::rt::load_config({.conf_file = f.path}, nullptr, nullptr).stack_size == 64 * 1024);
  CHECK(http::load_settings(gort::test::TempConf("[http]\nidle_timeout = 250\n").path).idle_timeout == 250ms);
  CHECK(http::load_settings(gort::test::TempConf("[http]\nwrite_timeout = \"1h\"\n").path).write_timeout == 1h);
}

TEST_CASE("settings: errors name the key and file:line, as the runtime's") {
  CHECK(settings_error("[http]\n\nidle_timeout = \"soon\"\n") ==
        "gort: config: FILE:3: http.idle_timeout: expected a duration in milliseconds (an integer, or a string "
        "like \"500ms\", \"60s\", \"2m\"), got \"soon\"");
  CHECK(settings_error("[http]\nidle_timeout = 0\n") ==
        "gort: config: FILE:2: http.idle_timeout: 0 ms is out of range [1, 86400000]");
  CHECK(settings_error("[http]\nheader_timeout = 0\n").find("http.header_timeout: 0 ms is out of range") !=
        std::string::npos);
  CHECK(settings_error("[http]\nwrite_timeout = \"25h\"\n").find("http.write_timeout: 90000000 ms is out of range") !=
        std::string::npos);
  CHECK(settings_error("[http]\nwrite_timeout = \"-1s\"\n").find("http.write_timeout: expected a duration") !=
        std::string::npos);
  CHECK(settings_error("[http]\nwrite_timeout = 1.5\n").find("http.write_timeout: expected a duration") !=
        std::string::npos);
  CHECK(settings_error("[http]\nmax_header_bytes = 100000\n") ==
        "gort: config: FILE:2: http.max_header_bytes: 100000 is not a multiple of the 4096-byte page");
  CHECK(settings_error("[http]\nmax_header_bytes = \"1K\"\n") ==
        "gort: config: FILE:2: http.max_header_bytes: 1024 is out of range [4096, 67108864]");
  CHECK(settings_error("[http]\nmax_header_bytes = true\n") ==
        "gort: config: FILE:2: http.max_header_bytes: expected a size in bytes (an integer, or a string like "
        "\"64KiB\"), got true");
  CHECK(settings_error("[stack]\nsize = 1\n[http]\nidle_timout = 5\n") ==
        "gort: config: FILE:4: http.idle_timout: unknown key (conf/http_server.conf lists them all)");
  CHECK(settings_error("[http.tls]\ncert = \"x\"\n").find("FILE:1: http.tls: unknown key") != std::string::npos);
  CHECK(settings_error("http = 1\n") == "gort: config: FILE:1: http: expected a table");
  CHECK(settings_error("[http]\nidle_timeout = = 3\n").find("gort: config: FILE:2: ") == 0);
  try {
    http::load_settings("/nonexistent/http_server.conf");
    FAIL("a missing file was read");
  } catch (const http::SettingsError& e) {
    CHECK(std::string(e.what()).find("gort: config: /nonexistent/http_server.conf") == 0);
  }
}
