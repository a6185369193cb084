// Channels, select and timers, from goroutines and from plain threads.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/chan_impl.hpp"
#include "skip.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// TSan counts every live goroutine as a thread and dies beyond 8128 of them.
#if defined(__SANITIZE_THREAD__)
constexpr int kParked = 1'000;
#else
constexpr int kParked = 100'000;
#endif

// wait_until() yields (or, on a plain thread, sleeps briefly) until pred() holds.
template <class F>
void wait_until(F pred) {
  while (!pred()) {
    if (gort::goid() != 0) {
      gort::yield();
    } else {
      std::this_thread::sleep_for(100us);
    }
  }
}

// queued() counts the receivers, or the senders, waiting on ch (white box:
// are they parked yet?).
template <class T>
std::size_t queued(const gort::Chan<T>& ch, bool senders = false) {
  gort::detail::hchan* c = gort::detail::chanaccess::get(ch);
  c->lock.lock();
  std::size_t n = 0;
  for (gort::rt::Sudog* s = (senders ? c->sendq : c->recvq).first; s != nullptr; s = s->next) n++;
  c->lock.unlock();
  return n;
}

// Counted tracks how many instances are alive, to check that channels destroy
// what they hold.
struct Counted {
  static inline std::atomic<int> live{0};
  int v;
  explicit Counted(int x) : v(x) { live++; }
  Counted(Counted&& o) noexcept : v(o.v) { live++; }
  Counted(const Counted&) = delete;
  ~Counted() { live--; }
};

// NoDefault has no default constructor.
struct NoDefault {
  explicit NoDefault(int x) : v(x) {}
  int v;
};

}  // namespace

// ---- Chan ----

TEST_CASE("a goroutine's send on a closed channel panics: the program exits 2") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      gort::Chan<int> ch(1);  // buffered: were it not to panic, the send would not block
      gort::Chan<int> done;
      ch.close();
      gort::go([ch, done] {
        ch.send(1);
        done.send(0);  // not reached: the send panics
      });
      done.recv();
    });
  });
  CHECK(r.status == 2);
  CHECK(r.err.find("panic: send on closed channel") != std::string::npos);
}

TEST_CASE("a goroutine's close of a closed channel panics: the program exits 2") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      gort::Chan<int> ch;
      ch.close();
      ch.close();
    });
  });
  CHECK(r.status == 2);
  CHECK(r.err.find("panic: close of closed channel") != std::string::npos);
}

TEST_CASE("buffered channel: FIFO order, len and cap, from a plain thread") {
  gort::Chan<int> ch(3);
  CHECK(ch.cap() == 3);
  CHECK(ch.len() == 0);
  ch.send(1);
  ch.send(2);
  ch.send(3);
  CHECK(ch.len() == 3);
  CHECK_FALSE(ch.try_send(4));  // full
  CHECK(ch.recv() == 1);
  CHECK(ch.try_send(4));
  CHECK(ch.recv() == 2);
  CHECK(ch.recv() == 3);
  CHECK(ch.recv() == 4);
  CHECK(ch.len() == 0);
}

TEST_CASE("unbuffered channel: values arrive in order and the sender waits for the receiver") {
  std::vector<int> got;
  std::atomic<int> sent{0};
  gort::main([&] {
    gort::Chan<int> ch;
    CHECK(ch.cap() == 0);
    gort::Chan<int> done;
    gort::go([ch, done, &sent] {
      for (int i = 0; i < 1000; i++) {
        ch.send(i);
        sent++;
      }
      done.send(0);
    });
    for (int i = 0; i < 1000; i++) {
      // Unbuffered: a send completes only with a receive, so at most i sends are done.
      CHECK(sent.load() <= i);
      got.push_back(*ch.recv());
    }
    done.recv();
  });
  REQUIRE(got.size() == 1000);
  for (int i = 0; i < 1000; i++) CHECK(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("a buffered channel under a blocked sender keeps FIFO order") {
  std::vector<int> got;
  gort::main([&] {
    gort::Chan<int> ch(2);
    gort::Chan<int> done;
    gort::go([ch, done] {
      for (int i = 0; i < 100; i++) ch.send(i);  // blocks whenever the buffer is full
      done.send(0);
    });
    for (int i = 0; i < 100; i++) {
      if (i % 10 == 0) wait_until([&] { return ch.len() == 2 || i >= 98; });  // let the sender block
      got.push_back(*ch.recv());
    }
    done.recv();
  });
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; i++) CHECK(got[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("Chan is a shared handle: copies refer to one channel") {
  gort::Chan<int> ch(1);
  gort::Chan<int> ch2 = ch;
  gort::Chan<int> other(1);
  CHECK(ch == ch2);
  CHECK_FALSE(ch == other);
  ch2.send(7);
  CHECK(ch.len() == 1);
  CHECK(ch.recv() == 7);
  other = ch;
  CHECK(other == ch);
}

TEST_CASE("close drains buffered values first, then every receiver gets nullopt") {
  gort::Chan<int> ch(2);
  ch.send(1);
  ch.send(2);
  ch.close();
  CHECK(ch.recv() == 1);
  CHECK(ch.recv() == 2);
  CHECK(ch.recv() == std::nullopt);
  CHECK(ch.recv() == std::nullopt);
}

TEST_CASE("close wakes all waiting receivers, goroutines and threads, with nullopt") {
  gort::Chan<int> ch;
  std::atomic<int> nullopts{0};
  std::thread t([&] {
    if (!ch.recv()) nullopts++;
  });
  gort::main([&] {
    for (int i = 0; i < 10; i++) {
      gort::go([ch, &nullopts] {
        if (!ch.recv()) nullopts++;
      });
    }
    wait_until([&] { return queued(ch) == 11; });
    ch.close();
    wait_until([&] { return nullopts.load() == 11; });
  });
  t.join();
  CHECK(nullopts.load() == 11);
}

TEST_CASE("send on a closed channel and close of a closed channel throw panic_error") {
  gort::Chan<int> ch(1);
  ch.close();
  CHECK_THROWS_WITH_AS(ch.send(1), "send on closed channel", gort::panic_error);
  CHECK_THROWS_WITH_AS(ch.try_send(1), "send on closed channel", gort::panic_error);
  CHECK_THROWS_WITH_AS(ch.close(), "close of closed channel", gort::panic_error);
  // A panic_error is a std::logic_error.
  CHECK_THROWS_AS(ch.close(), std::logic_error);
}

// panic_of_closing_under() runs send(ch) in a goroutine, closes ch once that
// goroutine waits on it, and returns what the goroutine caught.
template <class Send>
std::string panic_of_closing_under(Send send) {
  std::string what;
  gort::main([&] {
    gort::Chan<int> ch;
    gort::Chan<int> done;
    gort::go([ch, done, &what, send] {
      try {
        send(ch);
      } catch (const gort::panic_error& e) {
        what = e.what();
      }
      done.send(0);
    });
    wait_until([&] { return queued(ch, true) == 1; });
    ch.close();
    done.recv();
  });
  return what;
}

TEST_CASE("a sender blocked when the channel is closed panics") {
  CHECK(panic_of_closing_under([](const gort::Chan<int>& ch) { ch.send(1); }) == "send on closed channel");
}

TEST_CASE("try_recv tells empty from closed; try_send needs room or a receiver") {
  gort::Chan<int> ch(1);
  auto r = ch.try_recv();
  CHECK_FALSE(r.value.has_value());
  CHECK_FALSE(r.closed);
  CHECK(ch.try_send(5));
  auto [v, closed] = ch.try_recv();
  CHECK(v == 5);
  CHECK_FALSE(closed);
  ch.try_send(6);
  ch.close();
  r = ch.try_recv();
  CHECK(r.value == 6);  // buffered values still come first
  CHECK_FALSE(r.closed);
  r = ch.try_recv();
  CHECK_FALSE(r.value.has_value());
  CHECK(r.closed);

  gort::Chan<int> unbuf;
  CHECK_FALSE(unbuf.try_send(1));  // nobody receives
  CHECK_FALSE(unbuf.try_recv().value.has_value());
}

TEST_CASE("try_send hands a value to a waiting receiver") {
  std::optional<int> got;
  gort::main([&] {
    gort::Chan<int> ch;
    gort::Chan<int> done;
    gort::go([ch, done, &got] {
      got = ch.recv();
      done.send(0);
    });
    wait_until([&] { return queued(ch) == 1; });
    CHECK(ch.try_send(42));
    done.recv();
  });
  CHECK(got == 42);
}

TEST_CASE("move-only and non-default-constructible elements; nothing leaks") {
  {
    gort::Chan<std::unique_ptr<int>> ch(2);
    ch.send(std::make_unique<int>(1));
    auto p = std::make_unique<int>(2);
    ch.send(std::move(p));
    CHECK(p == nullptr);  // moved in
    auto q = std::make_unique<int>(3);
    CHECK_FALSE(ch.try_send(std::move(q)));
    CHECK(q != nullptr);  // not sent, so not moved from
    CHECK(**ch.recv() == 1);
    CHECK(**ch.recv() == 2);
  }
  {
    gort::Chan<NoDefault> ch(1);
    ch.send(NoDefault(9));
    CHECK(ch.recv()->v == 9);
  }
  {
    gort::Chan<Counted> ch(3);
    ch.send(Counted(1));
    ch.send(Counted(2));
    ch.send(Counted(3));
    CHECK(Counted::live.load() == 3);
    CHECK(ch.recv()->v == 1);
    CHECK(Counted::live.load() == 2);
  }  // the last handle goes: the two buffered values are destroyed
  CHECK(Counted::live.load() == 0);

  std::unique_ptr<int> got;
  gort::main([&] {
    gort::Chan<std::unique_ptr<int>> ch;
    gort::Chan<int> done;
    gort::go([ch, done, &got] {
      got = *ch.recv();
      done.send(0);
    });
    ch.send(std::make_unique<int>(77));
    done.recv();
  });
  REQUIRE(got != nullptr);
  CHECK(*got == 77);
}

TEST_CASE("ping-pong: 100,000 unbuffered round trips between two goroutines") {
  long sum = 0;
  bool ok = true;
  gort::main([&] {
    gort::Chan<int> ping, pong;
    gort::go([ping, pong] {
      while (auto v = ping.recv()) pong.send(*v + 1);
    });
    for (int i = 0; i < 100'000; i++) {
      ping.send(i);
      const int r = *pong.recv();
      ok = ok && r == i + 1;
      sum += r;
    }
    ping.close();
  });
  CHECK(ok);
  CHECK(sum == 100'000L * 100'001 / 2);
}

TEST_CASE("a channel biased to its pair's P loses no value when a plain thread and a goroutine in gort::syscall join in") {
  // On one P a ping-pong pair biases both channels' locks to it (lock.hpp):
  // the pair then takes them without a locked instruction. A plain thread, and
  // a goroutine inside gort::syscall (no P), take them with the CAS and revoke
  // the bias while the pair keeps going; every value must still arrive once.
  gort::test::ScopedEnv procs("GORTMAXPROCS", "1");
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      if (gort::rt::sched.procs != 1) _exit(6);
      constexpr int kRounds = 2'000;
      gort::Chan<int> ping, pong;
      gort::go([ping, pong] {
        while (auto v = ping.recv()) pong.send(*v + 1);
      });
      long sum = 0;
      for (int i = 0; i < kRounds; i++) {
        ping.send(i);
        sum += *pong.recv();
      }
      auto* lk = &gort::detail::chanaccess::get(ping)->lock;
      if (gort::rt::lock_init() && !lk->biased()) _exit(3);
      // Three parties now send and receive kRounds each; replies go to
      // whoever waits, so only the total is known: sent + 3 * kRounds.
      std::atomic<long> got{0};
      gort::WaitGroup wg;  // not t.join(): that would block the only P's thread
      wg.add(2);
      std::thread t([&] {
        for (int i = 0; i < kRounds; i++) {
          ping.send(i);
          got += *pong.recv();
        }
        wg.done();
      });
      gort::go([&] {
        gort::syscall([&] {
          for (int i = 0; i < kRounds; i++) {
            ping.send(i);
            got += *pong.recv();
          }
        });
        wg.done();
      });
      for (int i = 0; i < kRounds; i++) {
        ping.send(i);
        got += *pong.recv();
      }
      wg.wait();
      t.join();
      if (gort::rt::lock_init() && lk->revocations() == 0) _exit(4);
      const long sent = 3L * kRounds * (kRounds - 1) / 2;
      if (sum != long{kRounds} * (kRounds + 1) / 2 || got != sent + 3L * kRounds) _exit(5);
      ping.close();
    });
  });
  CAPTURE(r.err);
  CHECK(r.status == 0);
}

// Yielder's move constructor yields when yield_in_move is set: it breaks the
// rule that element constructors run under the channel's lock without a switch.
struct Yielder {
  static inline bool yield_in_move = false;
  int v = 0;
  explicit Yielder(int x) : v(x) {}
  Yielder(const Yielder&) = default;
  Yielder(Yielder&& o) noexcept : v(o.v) {
    if (yield_in_move) gort::yield();
  }
};

TEST_CASE("an element constructor that switches while its channel's lock is held is a fatal error naming the rule") {
  // Without the check another goroutine of the P would wait for that lock
  // forever (its M asleep on it, the holder never resumed).
  if (!gort::rt::lock_init()) {
    return gort::test::skip("membarrier(2) is refused here: channel locks are never biased, so the check never runs");
  }
  gort::test::ScopedEnv procs("GORTMAXPROCS", "1");
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      gort::Chan<Yielder> ping, pong;
      gort::go([ping, pong] {
        while (auto v = ping.recv()) pong.send(Yielder(v->v + 1));
      });
      for (int i = 0; i < 200; i++) {
        ping.send(Yielder(i));
        (void)pong.recv();
      }
      gort::go([ping] { (void)ping.len(); });  // runs when the sender yields
      Yielder::yield_in_move = true;
      ping.send(Yielder(0));  // moved into the waiting receiver's slot, under the lock
      _exit(4);
    });
  });
  CAPTURE(r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: a goroutine took a channel's lock while another goroutine of its P held it") != std::string::npos);
}

TEST_CASE("100,000 goroutines parked on a channel are released by close") {
  std::atomic<int> started{0}, nullopts{0};
  gort::main([&] {
    gort::Chan<int> ch;
    for (int i = 0; i < kParked; i++) {
      gort::go([ch, &started, &nullopts] {
        started.fetch_add(1);
        if (!ch.recv()) nullopts.fetch_add(1);
      });
    }
    wait_until([&] { return started.load() == kParked; });
    wait_until([&] { return queued(ch) == kParked; });  // walks the queue: only once they all started
    CHECK(nullopts.load() == 0);
    ch.close();
    wait_until([&] { return nullopts.load() == kParked; });
  });
  CHECK(nullopts.load() == kParked);
}

TEST_CASE("plain threads and goroutines talk both ways") {
  gort::Chan<int> to_g, to_t;
  long from_g = 0;
  std::thread t([&] {
    for (int i = 1; i <= 10'000; i++) {
      to_g.send(i);             // the thread waits for the goroutine ...
      from_g += *to_t.recv();   // ... and the goroutine for the thread
    }
    to_g.close();
  });
  long from_t = 0;
  gort::main([&] {
    while (auto v = to_g.recv()) {
      from_t += *v;
      to_t.send(*v * 2);
    }
  });
  t.join();
  CHECK(from_t == 10'000L * 10'001 / 2);
  CHECK(from_g == 2 * from_t);
}

TEST_CASE("plain threads alone, no goroutine involved") {
  gort::Chan<int> ch;
  long sum = 0;
  std::thread a([&] {
    for (int i = 1; i <= 1000; i++) ch.send(i);
    ch.close();
  });
  std::thread b([&] {
    while (auto v = ch.recv()) sum += *v;
  });
  a.join();
  b.join();
  CHECK(sum == 1000L * 1001 / 2);
}

// ---- select ----

TEST_CASE("select: a ready receive runs its case and returns its index") {
  gort::Chan<int> a(1), b(1);
  b.send(5);
  std::optional<int> got;
  const std::size_t i = gort::select(gort::recv_case(a, [](std::optional<int>) { FAIL("a is empty"); }),
                                     gort::recv_case(b, [&](std::optional<int> v) { got = v; }));
  CHECK(i == 1);
  CHECK(got == 5);
}

TEST_CASE("select: a closed channel's receive case is ready and gets nullopt") {
  gort::Chan<int> open, closed;
  closed.close();
  bool ran = false;
  std::optional<int> got = 1;
  const std::size_t i = gort::select(gort::recv_case(open, [] { FAIL("open is empty"); }),
                                     gort::recv_case(closed, [&](std::optional<int> v) {
                                       ran = true;
                                       got = v;
                                     }));
  CHECK(i == 1);
  CHECK(ran);
  CHECK(got == std::nullopt);
}

TEST_CASE("select: default runs when nothing is ready, and only then") {
  gort::Chan<int> a, b(1);
  bool dflt = false;
  std::size_t i = gort::select(gort::recv_case(a, [] {}), gort::send_case(a, 1, [] {}),
                               gort::default_case([&] { dflt = true; }));
  CHECK(i == 2);
  CHECK(dflt);
  b.send(1);
  dflt = false;
  i = gort::select(gort::default_case([&] { dflt = true; }), gort::recv_case(b, [] {}));
  CHECK(i == 1);
  CHECK_FALSE(dflt);
  // A moved-from Chan is Go's nil channel: never ready.
  gort::Chan<int> nil = std::move(b);
  i = gort::select(gort::recv_case(b, [] {}), gort::default_case([] {}));  // NOLINT(bugprone-use-after-move)
  CHECK(i == 1);
}

TEST_CASE("select: a send case delivers its value, blocking until a receiver comes") {
  std::optional<int> got;
  std::size_t idx = 99;
  bool ran = false;
  gort::main([&] {
    gort::Chan<int> ch, never;
    gort::Chan<int> done;
    gort::go([ch, done, &got] {
      got = ch.recv();
      done.send(0);
    });
    idx = gort::select(gort::recv_case(never, [] {}), gort::send_case(ch, 11, [&] { ran = true; }));
    done.recv();
  });
  CHECK(idx == 1);
  CHECK(ran);
  CHECK(got == 11);
}

TEST_CASE("select: a send case on a closed channel throws, at once or while waiting") {
  gort::Chan<int> closed(1);  // buffered: were it not to throw, the send would not block
  closed.close();
  CHECK_THROWS_WITH_AS(gort::select(gort::send_case(closed, 1, [] {})), "send on closed channel",
                       gort::panic_error);
  gort::Chan<int> never;
  CHECK(panic_of_closing_under([never](const gort::Chan<int>& ch) {
          gort::select(gort::send_case(ch, 1, [] {}), gort::recv_case(never, [] {}));
        }) == "send on closed channel");
}

TEST_CASE("select: the timeout case runs after at least its duration, on goroutines and threads") {
  for (bool thread : {false, true}) {
    CAPTURE(thread);
    gort::Chan<int> a, b;
    std::size_t idx = 99;
    bool ran = false;
    Clock::duration took{};
    auto body = [&] {
      const auto start = Clock::now();
      idx = gort::select(gort::recv_case(a, [] {}), gort::recv_case(b, [] {}),
                         gort::timeout_case(30ms, [&] { ran = true; }));
      took = Clock::now() - start;
    };
    if (thread) {
      std::thread(body).join();
    } else {
      gort::main(body);
    }
    CHECK(idx == 2);
    CHECK(ran);
    CHECK(took >= 30ms);
    // The timed-out select left no record behind on either channel.
    CHECK(queued(a) == 0);
    CHECK(queued(b) == 0);
  }
}

TEST_CASE("select: a value arriving before the timeout wins; a zero timeout polls") {
  std::optional<int> got;
  std::size_t idx = 99;
  gort::main([&] {
    gort::Chan<int> ch;
    gort::go([ch] { ch.send(3); });
    idx = gort::select(gort::recv_case(ch, [&](std::optional<int> v) { got = v; }),
                       gort::timeout_case(1h, [] {}));
  });
  CHECK(idx == 0);
  CHECK(got == 3);
  gort::Chan<int> empty;
  CHECK(gort::select(gort::recv_case(empty, [] {}), gort::timeout_case(0s, [] {})) == 1);
  // A timeout alone is a sleep.
  const auto start = Clock::now();
  CHECK(gort::select(gort::timeout_case(5ms, [] {})) == 0);
  CHECK(Clock::now() - start >= 5ms);
}

TEST_CASE("select: a plain thread's select is woken by a goroutine, and the reverse") {
  gort::Chan<int> to_t, to_g;
  std::optional<int> thread_got, g_got;
  std::thread t([&] {
    gort::select(gort::recv_case(to_t, [&](std::optional<int> v) { thread_got = v; }),
                 gort::timeout_case(1h, [] {}));
    to_g.send(2);
  });
  gort::main([&] {
    wait_until([&] { return queued(to_t) == 1; });
    to_t.send(1);
    gort::select(gort::recv_case(to_g, [&](std::optional<int> v) { g_got = v; }));
  });
  t.join();
  CHECK(thread_got == 1);
  CHECK(g_got == 2);
}

TEST_CASE("select: two blocked selects meet on an unbuffered channel") {
  std::optional<int> got;
  int sender_idx = -1;
  gort::main([&] {
    gort::Chan<int> ch, never1, never2;
    gort::Chan<int> done;
    gort::go([=, &sender_idx] {
      sender_idx = static_cast<int>(
          gort::select(gort::recv_case(never1, [] {}), gort::send_case(ch, 8, [] {})));
      done.send(0);
    });
    wait_until([&] { return queued(ch, true) == 1; });
    gort::select(gort::recv_case(ch, [&](std::optional<int> v) { got = v; }), gort::recv_case(never2, [] {}));
    done.recv();
  });
  CHECK(got == 8);
  CHECK(sender_idx == 1);
}

TEST_CASE("select: one channel in several cases, under many racing selects") {
  // Four goroutines select on the same channels (some twice) while four others
  // feed them: every value is received exactly once, whichever case takes it.
  constexpr int kPerFeeder = 5000;
  std::atomic<long> sum{0};
  std::atomic<int> received{0};
  gort::main([&] {
    gort::Chan<int> a, b(3);
    for (int f = 0; f < 4; f++) {
      gort::go([=] {
        for (int i = 1; i <= kPerFeeder; i++) (f % 2 == 0 ? a : b).send(i);
      });
    }
    gort::Chan<int> done;
    for (int r = 0; r < 4; r++) {
      gort::go([=, &sum, &received] {
        auto take = [&](std::optional<int> v) {
          sum += *v;
          received++;
        };
        while (received.load() < 4 * kPerFeeder) {
          gort::select(gort::recv_case(a, take), gort::recv_case(b, take), gort::recv_case(a, take),
                       gort::timeout_case(1ms, [] {}));
        }
        done.send(0);
      });
    }
    for (int r = 0; r < 4; r++) done.recv();
  });
  CHECK(received.load() == 4 * kPerFeeder);
  CHECK(sum.load() == 4L * kPerFeeder * (kPerFeeder + 1) / 2);
}

TEST_CASE("select: ten blocked channel cases, more than a select keeps in its frame") {
  std::size_t idx = 99;
  std::optional<int> got;
  std::size_t left = 99;
  gort::main([&] {
    std::vector<gort::Chan<int>> chs(10);
    gort::go([&chs] {
      wait_until([&] { return queued(chs[8]) == 1; });  // the select is parked
      chs[8].send(80);
    });
    auto take = [&](std::optional<int> v) { got = v; };
    idx = gort::select(gort::recv_case(chs[0], take), gort::recv_case(chs[1], take), gort::recv_case(chs[2], take),
                       gort::recv_case(chs[3], take), gort::recv_case(chs[4], take), gort::recv_case(chs[5], take),
                       gort::recv_case(chs[6], take), gort::recv_case(chs[7], take), gort::recv_case(chs[8], take),
                       gort::recv_case(chs[9], take));
    left = 0;
    for (const auto& ch : chs) left += queued(ch);
  });
  CHECK(idx == 8);
  CHECK(got == 80);
  CHECK(left == 0);  // its records are off every other channel
}

TEST_CASE("select: fairness between two always-ready channels") {
  int na = 0, nb = 0;
  gort::main([&] {
    gort::Chan<int> a(1), b(1);
    a.send(0);
    b.send(0);
    for (int i = 0; i < 10'000; i++) {
      gort::select(gort::recv_case(a, [&] {
                     na++;
                     a.send(0);
                   }),
                   gort::recv_case(b, [&] {
                     nb++;
                     b.send(0);
                   }));
    }
  });
  CHECK(na + nb == 10'000);
  CHECK(na > 3000);
  CHECK(nb > 3000);
}

TEST_CASE("select: move-only values in send and receive cases") {
  std::unique_ptr<int> got;
  gort::main([&] {
    gort::Chan<std::unique_ptr<int>> ch;
    gort::Chan<int> done;
    gort::go([ch, done] {
      gort::select(gort::send_case(ch, std::make_unique<int>(5), [] {}));
      done.send(0);
    });
    gort::select(gort::recv_case(ch, [&](std::optional<std::unique_ptr<int>> v) { got = std::move(*v); }));
    done.recv();
  });
  REQUIRE(got != nullptr);
  CHECK(*got == 5);
}

TEST_CASE("select with no cases blocks forever") {
  std::atomic<bool> returned{false};
  std::atomic<bool> started{false};
  gort::main([&] {
    gort::go([&] {
      started = true;
      gort::select();
      returned = true;
    });
    wait_until([&] { return started.load(); });
    gort::sleep(10ms);
  });
  CHECK(started.load());
  CHECK_FALSE(returned.load());
}

// ---- Timer and after ----

TEST_CASE("Timer delivers once, at least its duration after the start") {
  std::optional<Clock::time_point> fired;
  Clock::time_point start;
  std::size_t cap = 0;
  gort::main([&] {
    start = Clock::now();
    gort::Timer t(20ms);
    cap = t.chan().cap();
    fired = t.chan().recv();
    CHECK_FALSE(t.stop());  // expired and received
    CHECK(t.chan().len() == 0);
  });
  CHECK(cap == 1);
  REQUIRE(fired.has_value());
  CHECK(*fired - start >= 20ms);
  CHECK(Clock::now() - start >= 20ms);
}

TEST_CASE("Timer.stop: true while pending, and nothing is delivered afterwards") {
  bool first = false, second = true;
  std::size_t idx = 99;
  gort::main([&] {
    gort::Timer t(10ms);
    first = t.stop();
    second = t.stop();
    idx = gort::select(gort::recv_case(t.chan(), [] {}), gort::timeout_case(50ms, [] {}));
  });
  CHECK(first);
  CHECK_FALSE(second);
  CHECK(idx == 1);  // the stopped timer never delivered
}

TEST_CASE("Timer.stop after expiry discards the unreceived value (Go 1.23)") {
  bool stopped = false;
  std::size_t len_before = 0, len_after = 1;
  gort::main([&] {
    gort::Timer t(1ms);
    wait_until([&] { return t.chan().len() == 1; });
    len_before = t.chan().len();
    stopped = t.stop();
    len_after = t.chan().len();
  });
  CHECK(len_before == 1);
  CHECK(stopped);
  CHECK(len_after == 0);
}

TEST_CASE("Timer.reset restarts it: true if it was active, false once expired") {
  bool reset_active = false, reset_expired = true;
  Clock::duration since_reset{};
  int deliveries = 0;
  gort::main([&] {
    gort::Timer t(1h);
    const auto start = Clock::now();
    reset_active = t.reset(20ms);
    auto v = t.chan().recv();
    since_reset = *v - start;
    deliveries++;
    reset_expired = t.reset(1ms);
    t.chan().recv();
    deliveries++;
  });
  CHECK(reset_active);
  CHECK(since_reset >= 20ms);
  CHECK_FALSE(reset_expired);
  CHECK(deliveries == 2);
}

TEST_CASE("Timer works from a plain thread, and a moved Timer keeps running") {
  gort::main([] {});  // Timers need the runtime started
  std::optional<Clock::time_point> fired;
  std::thread([&] {
    gort::Timer t(5ms);
    gort::Timer moved = std::move(t);
    fired = moved.chan().recv();
  }).join();
  CHECK(fired.has_value());
}

TEST_CASE("after() delivers the time once, on a channel of capacity 1") {
  std::optional<Clock::time_point> fired;
  Clock::time_point start;
  std::size_t cap = 0;
  std::size_t second = 99;
  gort::main([&] {
    start = Clock::now();
    auto ch = gort::after(15ms);
    cap = ch.cap();
    fired = ch.recv();
    second = gort::select(gort::recv_case(ch, [] {}), gort::timeout_case(30ms, [] {}));
  });
  CHECK(cap == 1);
  REQUIRE(fired.has_value());
  CHECK(*fired - start >= 15ms);
  CHECK(second == 1);  // only once
}

TEST_CASE("after() in a select, as in Go") {
  std::size_t idx = 99;
  gort::main([&] {
    gort::Chan<int> never;
    idx = gort::select(gort::recv_case(never, [] {}), gort::recv_case(gort::after(5ms), [] {}));
  });
  CHECK(idx == 1);
}
