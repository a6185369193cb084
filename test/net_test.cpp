// gort::net on the backend CTest chose (GORT_TEST_IO_BACKEND: io_uring by
// default, epoll in the *_epoll runs): echo at scale, errors as values
// (reset, timeout, closed peer, refused), close waking blocked calls, and an
// accept loop surviving descriptor exhaustion.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "child.hpp"
#include "gort/gort.hpp"
#include "skip.hpp"

using namespace std::chrono_literals;
namespace net = gort::net;

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr int kConns = 200;  // TSan counts goroutines as threads (limit 8128)
#else
constexpr int kConns = 1000;
#endif

// listen_local() listens on a free loopback port.
net::Listener listen_local() {
  auto ln = net::listen("127.0.0.1:0");
  REQUIRE_MESSAGE(ln, ln.error().message());
  return std::move(*ln);
}

// echo() copies everything c reads back to it until EOF or an error.
// echo_live counts the running ones (see EchoServer::stop).
std::atomic<int> echo_live{0};
void echo(net::Conn c) {
  echo_live.fetch_add(1);
  char buf[4096];
  for (;;) {
    auto r = c.read(std::span<char>(buf));
    if (!r || !c.write_all(std::string_view(buf, r.n))) break;
  }
  echo_live.fetch_sub(1);
}

// EchoServer runs accept_loop(ln, echo) on a goroutine; the destructor closes
// the listener and waits for the loop to end (it uses ln until then).
struct EchoServer {
  net::Listener& ln;
  gort::WaitGroup done;
  std::error_code ended;
  explicit EchoServer(net::Listener& l) : ln(l) {
    done.add(1);
    gort::go([this] {
      ended = net::accept_loop(ln, echo);
      done.done();
    });
  }
  // stop() closes the listener, waits for the loop and for the connections'
  // goroutines (their clients have closed), and returns what ended the loop.
  // No goroutine may outlive the test holding memory: LeakSanitizer does not
  // scan parked goroutines' stacks.
  std::error_code stop() {
    ln.close();
    done.wait();
    while (echo_live.load() != 0) gort::sleep(1ms);
    return ended;
  }
  ~EchoServer() { stop(); }
};

// Pair is a loopback connection: the client's end and the server's.
struct Pair {
  net::Listener ln;
  net::Conn client, server;
};
Pair connected_pair() {
  Pair p{listen_local(), {}, {}};
  auto c = net::dial(p.ln.addr().to_string());
  REQUIRE_MESSAGE(c, c.error().message());
  auto s = p.ln.accept();
  REQUIRE_MESSAGE(s, s.error().message());
  p.client = std::move(*c);
  p.server = std::move(*s);
  return p;
}

// expected_backend() is the backend this run was asked for.
std::string expected_backend() {
  const char* b = std::getenv("GORT_TEST_IO_BACKEND");
  return b != nullptr && std::string(b) == "epoll" ? "epoll" : "io_uring";
}

}  // namespace

TEST_CASE("the runtime runs the I/O backend the configuration asked for") {
  gort::main([] { CHECK(std::string(gort::stats().io_backend) == expected_backend()); });
}

TEST_CASE("parse_addr: IPv4, bracketed IPv6, :port, names; malformed ones are errors") {
  gort::main([] {
    CHECK(net::parse_addr("127.0.0.1:8080")->to_string() == "127.0.0.1:8080");
    CHECK(net::parse_addr("[::1]:80")->to_string() == "[::1]:80");
    CHECK(net::parse_addr(":8080")->port() == 8080);
    CHECK(net::parse_addr("localhost:1")->to_string() == "127.0.0.1:1");
    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                            "127.0.0.1:80x", "[::1:80"}) {
      auto a = net::parse_addr(bad);
      CHECK_MESSAGE(!a, bad);
      if (!a && std::string(bad) != "[::1:80") CHECK(a.error() == gort::Errc::bad_address);
    }
  });
}

TEST_CASE("a const Result<T> reads its value through operator*, operator-> and value(), and throws without one") {
  const gort::Result<std::string> ok(std::string("addr"));
  const gort::Result<std::string> bad(gort::Errc::bad_address);
  static_assert(std::is_same_v<decltype(*ok), const std::string&>);
  static_assert(std::is_same_v<decltype(ok.value()), const std::string&>);
  static_assert(std::is_same_v<decltype(ok.operator->()), const std::string*>);
  CHECK(*ok == "addr");
  CHECK(ok->size() == 4);
  CHECK(ok.value() == "addr");
  CHECK_THROWS_AS((void)bad.value(), std::system_error);
  CHECK_THROWS_AS((void)bad->size(), std::system_error);
  const gort::Result<net::Addr> a = net::parse_addr("127.0.0.1:8080");
  CHECK(a->port() == 8080);
}

TEST_CASE("echo round trips over many concurrent connections, each on its own goroutine") {
  gort::main([] {
    net::Listener ln = listen_local();
    const std::string addr = ln.addr().to_string();
    EchoServer server(ln);
    std::atomic<int> ok{0};
    gort::WaitGroup wg;
    for (int i = 0; i < kConns; i++) {
      wg.add(1);
      gort::go([&, i] {
        auto c = net::dial(addr, 10s);
        REQUIRE_MESSAGE(c, c.error().message());
        std::string msg(3000, static_cast<char>('a' + i % 26));
        std::snprintf(msg.data(), msg.size(), "conn %d", i);
        std::string back(msg.size(), '\0');
        bool good = true;
        for (int k = 0; k < 3 && good; k++) {
          good = c->write_all(msg) && c->read_full(std::span<char>(back)) && back == msg;
        }
        if (good) ok.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    CHECK(ok.load() == kConns);
    CHECK(server.stop() == gort::Errc::closed);
  });
}

TEST_CASE("a peer's reset interrupts a blocked read with connection_reset") {
  gort::main([] {
    net::Listener ln = listen_local();
    gort::Chan<std::error_code> got(1);
    gort::go([&] {
      auto c = ln.accept();
      REQUIRE(c);
      char buf[16];
      got.send(c->read(std::span<char>(buf)).ec);
    });
    auto c = net::dial(ln.addr().to_string());
    REQUIRE(c);
    gort::sleep(20ms);  // likely blocked by now; either way the read must see the reset
    linger lg{1, 0};    // close with RST instead of FIN
    REQUIRE(setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    c->close();
    CHECK(*got.recv() == std::errc::connection_reset);
  });
}

TEST_CASE("reads whose deadline expires while they park all return timed_out") {
  // A deadline just past (the read's check reads the coarse clock, up to a
  // tick behind) or a few microseconds away expires while the read parks: its
  // timer may fire on another M before the goroutine is off its stack. That
  // wake-up must not be lost (Go's pdWait): a lost one left the read parked
  // forever.
  gort::main([] {
    auto [ln, client, server] = connected_pair();
    auto* s = &server;
    char buf[8];
    int timed_out = 0;
    for (int i = 0; i < 2000; i++) {
      s->set_read_deadline(net::Clock::now() + std::chrono::microseconds(i % 40 - 30));
      if (s->read(std::span<char>(buf)).ec == std::errc::timed_out) timed_out++;
    }
    CHECK(timed_out == 2000);
  });
}

TEST_CASE("a read past its deadline returns timed_out, and the connection still closes cleanly") {
  gort::main([] {
    auto [ln, client, server] = connected_pair();
    auto* c = &client;
    auto* s = &server;
    s->set_read_deadline(net::Clock::now() + 30ms);
    char buf[8];
    auto r = s->read(std::span<char>(buf));
    CHECK(r.ec == std::errc::timed_out);
    CHECK(r.n == 0);
    // A deadline in the past fails at once; clearing it lets data through.
    auto r2 = s->read(std::span<char>(buf));
    CHECK(r2.ec == std::errc::timed_out);
    s->set_read_deadline({});
    REQUIRE(c->write_all("hi"));
    auto r3 = s->read(std::span<char>(buf));
    CHECK(r3.n == 2);
    CHECK(!s->close());
    CHECK(s->close() == gort::Errc::closed);  // idempotent, and says so
  });
}

TEST_CASE("a read returns eof when the peer shuts down its side, and read_full reports a short stream") {
  gort::main([] {
    auto [ln, client, server] = connected_pair();
    auto* c = &client;
    auto* s = &server;
    REQUIRE(c->write_all("abc"));
    CHECK(!c->shutdown());
    char buf[8];
    auto r = s->read_full(std::span<char>(buf));
    CHECK(r.n == 3);
    CHECK(r.ec == gort::Errc::unexpected_eof);
    CHECK(s->read(std::span<char>(buf)).ec == gort::Errc::eof);
  });
}

TEST_CASE("writing to a closed peer gives an error value, not a signal") {
  gort::main([] {
    net::Listener ln = listen_local();
    auto c = net::dial(ln.addr().to_string());
    REQUIRE(c);
    {
      auto s = ln.accept();
      REQUIRE(s);
      s->close();
    }
    // The first writes may still be accepted by the kernel; the peer's RST
    // then makes a later one fail (EPIPE or ECONNRESET), without SIGPIPE.
    std::string chunk(64 * 1024, 'x');
    std::error_code ec;
    for (int i = 0; i < 1000 && !ec; i++) {
      ec = c->write_all(chunk).ec;
      if (!ec) gort::sleep(1ms);
    }
    CHECK((ec == std::errc::broken_pipe || ec == std::errc::connection_reset));
  });
}

TEST_CASE("close wakes a blocked accept and a blocked read with Errc::closed") {
  gort::main([] {
    net::Listener ln = listen_local();
    gort::Chan<std::error_code> accepted(1);
    net::Conn server;  // kept open: the client's read below must block
    gort::go([&] {
      auto s = ln.accept();
      if (s) server = std::move(*s);
      accepted.send(s.error());
    });
    auto c = net::dial(ln.addr().to_string());
    REQUIRE(c);
    CHECK(*accepted.recv() == std::error_code{});
    gort::go([&] { accepted.send(ln.accept().error()); });
    gort::sleep(20ms);
    CHECK(!ln.close());
    CHECK(*accepted.recv() == gort::Errc::closed);
    CHECK(ln.accept().error() == gort::Errc::closed);

    gort::Chan<std::error_code> read(1);
    gort::go([&] {
      char buf[8];
      read.send(c->read(std::span<char>(buf)).ec);
    });
    gort::sleep(20ms);
    c->close();
    CHECK(*read.recv() == gort::Errc::closed);
  });
}

TEST_CASE("dialing a port nobody listens on is connection_refused") {
  gort::main([] {
    net::Listener ln = listen_local();
    const std::string addr = ln.addr().to_string();
    ln.close();
    auto c = net::dial(addr, 5s);
    REQUIRE_FALSE(c);
    CHECK(c.error() == std::errc::connection_refused);
  });
}

TEST_CASE("net calls from a plain thread block it and work the same") {
  gort::main([] {
    net::Listener ln = listen_local();
    const std::string addr = ln.addr().to_string();
    EchoServer server(ln);
    std::error_code ec;
    std::string back(5, '\0');
    std::thread t([&] {
      auto c = net::dial(addr, 5s);
      if (!c) {
        ec = c.error();
        return;
      }
      ec = c->write_all("hello").ec;
      if (!ec) ec = c->read_full(std::span<char>(back)).ec;
    });
    gort::syscall([&] { t.join(); });
    CHECK(!ec);
    CHECK(back == "hello");
  });
}

// UBSan's vptr check probes memory with a pipe(2); with every descriptor
// taken it fails and reports a bogus "invalid vptr", so the ASan+UBSan build
// skips this case.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSkipFdExhaustion = true;
#else
constexpr bool kSkipFdExhaustion = false;
#endif

TEST_CASE("accept_loop survives running out of descriptors and recovers once they are freed" *
          doctest::skip(kSkipFdExhaustion)) {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      net::Listener ln = listen_local();
      auto c = net::dial(ln.addr().to_string());  // waits in the backlog
      if (!c) _exit(3);
      rlimit rl{64, 64};
      setrlimit(RLIMIT_NOFILE, &rl);
      std::vector<int> hog;
      for (int fd; (fd = dup(0)) >= 0;) hog.push_back(fd);
      gort::Chan<int> handled(1);
      gort::WaitGroup served;
      served.add(1);
      gort::go([&] {
        net::accept_loop(ln, [&](net::Conn) { handled.send(1); });
        served.done();
      });
      gort::sleep(50ms);  // accept fails with EMFILE and backs off meanwhile
      for (int fd : hog) close(fd);
      if (handled.recv() != 1) _exit(4);
      std::fprintf(stderr, "recovered\n");
      ln.close();
      served.wait();
    });
  });
  CHECK(r.status == 0);
  CHECK(r.err.find("accept: Too many open files; retrying in") != std::string::npos);
  CHECK(r.err.find("recovered") != std::string::npos);
}

TEST_CASE("io.backend=auto falls back to epoll when io_uring is refused and says why once") {
  if (expected_backend() == "epoll") {
    return gort::test::skip("this run asks for epoll (GORT_TEST_IO_BACKEND), not auto: there is no fallback to see");
  }
  auto r = gort::test::run_case_in_child([] {
    if (!gort::test::refuse_syscall(__NR_io_uring_setup)) _exit(3);
    gort::main([] {
      std::fprintf(stderr, "backend=%s\n", gort::stats().io_backend);
      net::Listener ln = listen_local();
      gort::go([&] {
        auto s = ln.accept();
        if (s) echo(std::move(*s));
      });
      auto c = net::dial(ln.addr().to_string());
      std::string back(4, '\0');
      if (!c || !c->write_all("ping") || !c->read_full(std::span<char>(back)) || back != "ping") _exit(4);
    });
  });
  CAPTURE(r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("backend=epoll") != std::string::npos);
  CHECK(r.err.find("io_uring unavailable (io_uring_setup: Operation not permitted); using the epoll backend") !=
        std::string::npos);
}
