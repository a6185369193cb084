// The scheduler: spawning, yielding, sleeping, syscalls, stealing, stacks.
#include <doctest/doctest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/chan_impl.hpp"
#include "sched/proc.hpp"
#include "sched/runtime.hpp"
#include "skip.hpp"

using namespace std::chrono_literals;

namespace {

// Sanitizer builds run 10x slower: they get a tenth of the big counts.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

// wait_until() yields until pred() holds; tests use it where a WaitGroup is
// not the thing under test.
template <class F>
void wait_until(F pred) {
  while (!pred()) gort::yield();
}

// procs() is the number of Ps, starting the scheduler first: CTest runs each
// case in a process of its own, where no gort::main has set it yet.
int procs() {
  gort::rt::schedinit();
  return gort::rt::sched.procs;
}

// The test suite of the cases that need a second P, which the GORTMAXPROCS=1
// run (sched_test_procs1, test/CMakeLists.txt) leaves out.
constexpr const char* kTwoPs = "two-Ps";
constexpr const char* kNeedsTwoPs = "needs a second P (GORTMAXPROCS=1, or one CPU)";
// Stealing runnext and biased locks need membarrier (rule 1 of runtime.hpp).
constexpr const char* kNeedsMembarrier =
    "membarrier(2) is refused here (Linux < 4.14 or a seccomp filter): no P steals runnext, no lock is biased";

}  // namespace

TEST_CASE("gort::main runs fn as a goroutine and returns 0") {
  std::uint64_t id = 0;
  int rc = gort::main([&] { id = gort::goid(); });
  CHECK(rc == 0);
  CHECK(id > 0);
  CHECK(gort::goid() == 0);  // the caller is not a goroutine
}

TEST_CASE("gort::main takes a move-only callable, as gort::go does") {
  auto owned = std::make_unique<int>(7);
  int seen = 0;
  auto fn = [p = std::move(owned), &seen] { seen = *p; };  // not copyable: no std::function holds it
  static_assert(!std::is_copy_constructible_v<decltype(fn)>);
  CHECK(gort::main(std::move(fn)) == 0);
  CHECK(seen == 7);
  CHECK(gort::main([p = std::make_unique<int>(8), &seen] { seen = *p; }) == 0);
  CHECK(seen == 8);
}

TEST_CASE("spawned goroutines all run") {
  std::atomic<int> ran{0};
  gort::main([&] {
    for (int i = 0; i < 1000; i++) gort::go([&] { ran.fetch_add(1); });  // the last touch
    wait_until([&] { return ran.load() == 1000; });
  });
  CHECK(ran.load() == 1000);
}

TEST_CASE("a spawner that overflows its run queue lets what it spawned run before it goes on") {
  // 300 spawns overflow the 256-slot ring: the spawner yields there, so on one
  // P (sched_test_procs1) some goroutines have run before the loop ends; with
  // more Ps they may run elsewhere even sooner.
  std::atomic<int> ran{0};
  int ran_during_loop = 0;
  gort::main([&] {
    for (int i = 0; i < 300; i++) gort::go([&] { ran.fetch_add(1); });
    ran_during_loop = ran.load();
    wait_until([&] { return ran.load() == 300; });
  });
  CHECK(ran_during_loop > 0);
  CHECK(ran.load() == 300);
}

TEST_CASE("goroutines spawned from a plain thread (the global run queue, many chunks) all run") {
  // A plain thread has no P: each spawn goes to the global queue, which holds
  // G pointers in chunks of 129; 5,000 at once span ~39 chunks, more than the
  // 16 kept for reuse, so chunks are made, reused and freed. (Under TSan, whose
  // fibers count against its 8,128-thread limit, a tenth.)
  constexpr int n = 5000 / kScale;
  std::atomic<int> ran{0};
  gort::main([&] {
    std::thread t([&] {
      for (int i = 0; i < n; i++) gort::go([&] { ran.fetch_add(1); });
    });
    t.join();
    wait_until([&] { return ran.load() == n; });
  });
  CHECK(ran.load() == n);
}

TEST_CASE("an idle P takes the goroutine waiting in runnext behind one that runs on" * doctest::test_suite(kTwoPs)) {
  // B waits in runnext of A's P (a spawn into an empty runnext) while A loops
  // without a runtime call until B has run: only another P stealing runnext
  // (after Go's 3 us grace, announced with membarrier: rule 1 of runtime.hpp)
  // can run it. Without a second P or membarrier there is nothing to test.
  if (procs() < 2) return gort::test::skip(kNeedsTwoPs);
  if (!gort::rt::lock_init()) return gort::test::skip(kNeedsMembarrier);
  std::atomic<bool> ran{false};
  gort::main([&] {
    gort::Chan<int> done(1);
    gort::go([&] {
      gort::go([&] { ran.store(true); });
      while (!ran.load()) {
      }
      done.send(1);
    });
    (void)done.recv();  // parks goroutine 1, so its P goes looking for work
  });
  CHECK(ran.load());
}

TEST_CASE("runnext is stolen only from a P that neither scheduled nor queued more while the stealer watched") {
  // A P built here, not running: nothing schedules on it or fills its ring
  // unless the test does. Stealing needs membarrier (rule 1 of runtime.hpp).
  if (!gort::rt::lock_init()) return gort::test::skip(kNeedsMembarrier);
  auto p = std::make_unique<gort::rt::P>();
  gort::rt::G first, second;
  p->runnext.store(&first);
  // A spawner's burst: the first goroutine in runnext, the next in the ring.
  p->runq[0].store(&second);
  p->runqtail.store(1);
  CHECK(gort::rt::runnext_steal(p.get()) == nullptr);
  CHECK(p->runnext.load() == &first);
  // The ring stolen (empty again) and still no scheduling: runnext goes.
  p->runqhead.store(1);
  CHECK(gort::rt::runnext_steal(p.get()) == &first);
  CHECK(p->runnext.load() == nullptr);
  CHECK(!p->nextnowake.load());  // nothing scheduled: no mark (ready.hpp)
}

TEST_CASE("goroutines run on threads named gort-m<N>, beside gort-sysmon") {
  std::string name;
  gort::main([&] {
    char buf[16] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    name = buf;
  });
  CHECK(name.rfind("gort-m", 0) == 0);
  bool sysmon = false;
  for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(t.path() / "comm");
    std::string c;
    std::getline(comm, c);
    sysmon = sysmon || c == "gort-sysmon";
  }
  CHECK(sysmon);
}

TEST_CASE("a stealer that watched a P schedule marks it (P::nextnowake)") {
  // The mark comes before the stealer's membarrier, so this holds without one.
  auto p = std::make_unique<gort::rt::P>();
  gort::rt::G first;
  p->runnext.store(&first);
  // The owner schedules all the time. A watch during which it did not run (the
  // two threads sharing a CPU, ctest -j) steals instead, and the test puts
  // the goroutine back and watches again.
  std::atomic<bool> stop{false};
  std::thread owner([&] {
    while (!stop.load()) p->schedtick.fetch_add(1);
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!p->nextnowake.load() && std::chrono::steady_clock::now() < deadline) {
    if (gort::rt::G* got = gort::rt::runnext_steal(p.get())) p->runnext.store(got);
  }
  stop.store(true);
  owner.join();
  CHECK(p->nextnowake.load());
  CHECK(p->runnext.load() == &first);
}

TEST_CASE("a goroutine readied into a marked P's runnext runs on another P while its readier computes" *
          doctest::test_suite(kTwoPs)) {
  // The send below readies B into this P's runnext, marked (P::nextnowake), so
  // it wakes nobody, and this goroutine then loops without a runtime call
  // until B has run: only sysmon's next look (it clears the mark and wakes an
  // idle P, which steals B) can run it before the loop gives up.
  if (procs() < 2) return gort::test::skip(kNeedsTwoPs);
  if (!gort::rt::lock_init()) return gort::test::skip(kNeedsMembarrier);
  std::atomic<bool> ran{false};
  bool ran_meanwhile = false;
  gort::main([&] {
    gort::Chan<int> c(0);
    gort::go([&ran, c]() mutable {
      (void)c.recv();
      ran.store(true);
    });
    // B parked, and the other Ps asleep rather than spinning (a spinner would
    // take B after 3 us, whatever the mark).
    wait_until([&] {
      const gort::Stats st = gort::stats();
      return st.waiting == 1 && st.idle_ps == st.ps - 1;
    });
    gort::rt::getm()->p->nextnowake.store(true);
    c.send(1);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ran.load() && std::chrono::steady_clock::now() < deadline) {
    }
    ran_meanwhile = ran.load();  // (B runs here anyway once this goroutine ends)
  });
  CHECK(ran_meanwhile);
}

TEST_CASE("a ping-pong pair whose sender stalls its P while the receiver waits in runnext: every value arrives once") {
  // Each send publishes the receiver in this P's runnext; spinning 20 us without
  // a runtime call then lets the idle P steal it (rule 1 of runtime.hpp: ~3 in
  // 4 stalls here), while this P's owner may be swapping runnext itself. A
  // goroutine taken twice, or lost, breaks the sum or hangs.
  constexpr int kRounds = 2000 / kScale;
  long sum = 0;
  gort::main([&] {
    gort::Chan<int> ping(0), pong(0);
    gort::go([=] {
      for (int i = 0; i < kRounds; i++) pong.send(*ping.recv() + 1);
    });
    for (int i = 0; i < kRounds; i++) {
      // Unmarked (P::nextnowake), so the send wakes the idle P, which comes to
      // watch the stall below instead of sleeping until sysmon's next look.
      if (i % 4 == 0) gort::rt::getm()->p->nextnowake.store(false);
      ping.send(i);
      if (i % 4 == 0) {
        const auto until = std::chrono::steady_clock::now() + 20us;
        while (std::chrono::steady_clock::now() < until) {
        }
      }
      sum += *pong.recv();
    }
  });
  CHECK(sum == long{kRounds} * (kRounds + 1) / 2);
}

TEST_CASE("a runtime Lock wakes the lockers that went to sleep on it") {
  // Holders that sleep while holding it send the other lockers past their spin
  // into the futex, where only an unlock's wake (its unfenced read of the
  // sleeper count, lock.hpp) brings them back: a lost wake-up hangs this test.
  gort::rt::Lock l;
  long counter = 0;
  constexpr int kThreads = 4, kRounds = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&] {
      for (int i = 0; i < kRounds; i++) {
        l.lock();
        counter++;
        if (i % 50 == 0) std::this_thread::sleep_for(20us);
        l.unlock();
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(counter == long{kThreads} * kRounds);
}

TEST_CASE("a Lock biased to one P excludes the takers that revoke the bias") {
  // Each round biases a fresh lock to "P" a (one thread stands for the P's
  // goroutines), then a keeps taking it while a plain thread (no P: self
  // nullptr, as chanlock passes it) and "P" b take it too: the first of them revokes the bias while a is
  // most likely inside its plain-store critical section. Two holders at once
  // show as overlaps; a revocation that did not wait for a lets that happen.
  constexpr int kRounds = 500 / kScale, kTakes = 300;
  int pa = 0, pb = 0;  // stand-ins for two Ps: only their addresses matter
  int overlaps = 0, unbiased = 0, unrevoked = 0;
  for (int r = 0; r < kRounds; r++) {
    gort::rt::Lock l;
    l.allow_bias();
    std::atomic<int> inside{0};
    long counter = 0;
    auto take1 = [&](auto&& lockit) {
      lockit();
      if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps++;
      // A critical section long enough for a second holder to land in it.
      for (int k = 0; k < 20; k++) {
        asm volatile("" ::: "memory");
        counter++;
      }
      inside.fetch_sub(1, std::memory_order_relaxed);
      l.unlock();
    };
    long ataken = 0;
    for (; ataken < kTakes; ataken++) take1([&] { l.lock_biased(&pa); });
    if (!l.biased()) unbiased++;
    std::atomic<int> others{2};
    std::thread a([&] {
      while (others.load() != 0) {
        take1([&] { l.lock_biased(&pa); });
        ataken++;
      }
    });
    std::thread t([&] {
      for (int i = 0; i < kTakes; i++) take1([&] { l.lock_biased(nullptr); });
      others--;
    });
    std::thread b([&] {
      for (int i = 0; i < kTakes; i++) take1([&] { l.lock_biased(&pb); });
      others--;
    });
    a.join();
    t.join();
    b.join();
    if (l.revocations() == 0) unrevoked++;
    if (counter != (ataken + 2L * kTakes) * 20) overlaps++;
  }
  CHECK(unbiased == (gort::rt::lock_init() ? 0 : kRounds));  // kTakes in a row by one P bias it
  CHECK(overlaps == 0);                                       // never two holders
  CHECK(unrevoked == (gort::rt::lock_init() ? 0 : kRounds));  // the other takers revoked it
}

TEST_CASE("a Lock whose bias was revoked is biased again after a run 8 times longer each time") {
  if (!gort::rt::lock_init()) return gort::test::skip(kNeedsMembarrier);
  int pa = 0, pb = 0;  // stand-ins for two Ps
  gort::rt::Lock l;
  l.allow_bias();
  auto takes = [&](int* self, int n) {
    for (int i = 0; i < n; i++) {
      l.lock_biased(self);
      l.unlock();
    }
  };
  takes(&pa, 64);
  CHECK(l.biased());
  int run = 64;
  for (int r = 1; r <= gort::rt::Lock::kMaxRevocations + 1; r++) {
    takes(&pb, 1);  // revokes a's bias
    CHECK(!l.biased());
    CHECK(l.revocations() == std::min(r, gort::rt::Lock::kMaxRevocations));
    if (r <= gort::rt::Lock::kMaxRevocations) run *= 8;
    takes(&pa, run - 1);
    CHECK(!l.biased());  // one take short
    takes(&pa, 1);
    CHECK(l.biased());
  }
}

TEST_CASE("without membarrier as under a seccomp profile refusing it locks and runnext still work and the log says so") {
  auto r = gort::test::run_case_in_child([] {
    if (!gort::test::refuse_syscall(__NR_membarrier)) _exit(3);
    // Sleeping lockers: with no membarrier they re-check every 1 ms.
    gort::rt::Lock l;
    long counter = 0;
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++) {
      ts.emplace_back([&] {
        for (int i = 0; i < 200; i++) {
          l.lock();
          counter++;
          if (i % 20 == 0) std::this_thread::sleep_for(200us);
          l.unlock();
        }
      });
    }
    for (auto& t : ts) t.join();
    if (counter != 600) _exit(4);
    // Goroutines ping-pong and spawn through runnext, which is then never stolen.
    gort::main([] {
      gort::Chan<int> ping(0), pong(0);
      gort::go([=] {
        for (int i = 0; i < 1000; i++) pong.send(*ping.recv());
      });
      for (int i = 0; i < 1000; i++) {
        ping.send(i);
        if (*pong.recv() != i) _exit(5);
      }
      // Without membarrier no bias could be revoked, so none is taken.
      if (gort::detail::chanaccess::get(ping)->lock.biased()) _exit(6);
      gort::WaitGroup wg;
      wg.add(1000);
      for (int i = 0; i < 1000; i++) gort::go([&] { wg.done(); });
      wg.wait();
    });
  });
  CAPTURE(r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is unavailable") != std::string::npos);
}

TEST_CASE("goroutine ids are unique across Ps (per-P id batches)") {
  constexpr int n = 20'000 / kScale;
  std::set<std::uint64_t> ids;
  gort::main([&] {
    gort::Mutex mu;
    gort::WaitGroup wg;
    // Spawners on every P, each taking ids from its own P's batch.
    for (int s = 0; s < 4; s++) {
      wg.add(1);
      gort::go([&] {
        gort::WaitGroup inner;
        for (int i = 0; i < n / 4; i++) {
          inner.add(1);
          gort::go([&] {
            const std::uint64_t id = gort::goid();
            {
              std::lock_guard lk(mu);
              ids.insert(id);
            }
            inner.done();
          });
        }
        inner.wait();
        wg.done();
      });
    }
    wg.wait();
  });
  CHECK(ids.size() == static_cast<std::size_t>(n / 4 * 4));
  CHECK(ids.count(0) == 0);
}

TEST_CASE("1,000,000 goroutines spawned and joined") {
  constexpr int n = 1'000'000 / kScale;
  std::atomic<int> ran{0};
  gort::main([&] {
    for (int i = 0; i < n; i++) gort::go([&] { ran.fetch_add(1); });
    wait_until([&] { return ran.load() == n; });
  });
  CHECK(ran.load() == n);
}

TEST_CASE("goroutines looping on yield all make progress") {
  std::atomic<int> counts[4] = {};
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  gort::main([&] {
    for (auto& c : counts) {
      gort::go([&] {
        while (!stop.load()) {
          c++;
          gort::yield();
        }
        done++;
      });
    }
    wait_until([&] {
      for (auto& c : counts) {
        if (c.load() < 100) return false;
      }
      return true;
    });
    stop = true;
    wait_until([&] { return done.load() == 4; });
  });
  for (auto& c : counts) CHECK(c.load() >= 100);
}

TEST_CASE("on one P yielding goroutines take turns in the order they queued") {
  // One P has no stealers, so its owner takes from the ring without a CAS
  // (proc.cpp, runqget): the ring must still hand out each goroutine once per
  // round, oldest first. The gate keeps them from starting before all three
  // exist (sysmon may make the spawner yield between spawns on a slow
  // sanitizer build). The child exits 6 if it got more than one P, 7 if a
  // turn came out of order.
  gort::test::ScopedEnv procs("GORTMAXPROCS", "1");
  auto r = gort::test::run_case_in_child([] {
    constexpr int kG = 3, kRounds = 1000;
    std::vector<int> order;
    gort::main([&] {
      if (gort::rt::sched.procs != 1) _exit(6);
      gort::WaitGroup wg;
      gort::Chan<int> gate;
      wg.add(kG);
      for (int id = 0; id < kG; id++) {
        gort::go([&, gate, id] {
          (void)gate.recv();
          for (int r = 0; r < kRounds; r++) {
            order.push_back(id);
            gort::yield();
          }
          wg.done();
        });
      }
      gate.close();
      wg.wait();
    });
    if (order.size() != std::size_t{kG * kRounds} || order[0] == order[1]) _exit(7);
    for (std::size_t i = kG; i < order.size(); i++) {
      if (order[i] != order[i - kG]) _exit(7);
    }
  });
  CHECK(r.status == 0);
}

TEST_CASE("sleep blocks for at least the duration") {
  gort::main([] {
    auto t0 = std::chrono::steady_clock::now();
    gort::sleep(20ms);
    CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  });
}

TEST_CASE("many sleepers each sleep at least their own duration") {
  // Deadlines are spread over one timer heap per P; each sleeper must be woken,
  // and never early. (Wake order is not asserted: a loaded machine may delay a
  // sleeper's P past a later deadline.)
  constexpr int kSleepers = 50;
  std::atomic<int> early{0}, n{0};
  gort::main([&] {
    for (int i = 0; i < kSleepers; i++) {
      gort::go([&, i] {
        const auto d = std::chrono::milliseconds(1 + i % 10);
        const auto t0 = std::chrono::steady_clock::now();
        gort::sleep(d);
        if (std::chrono::steady_clock::now() - t0 < d) early++;
        n++;  // last: main may return as soon as it sees them all
      });
    }
    wait_until([&] { return n.load() == kSleepers; });
  });
  CHECK(n.load() == kSleepers);
  CHECK(early.load() == 0);
}

TEST_CASE("goroutines with stack-local node containers and deep recursion survive yields and migration") {
  std::atomic<int> ok{0};
  constexpr int kG = 64;
  gort::main([&] {
    for (int g = 0; g < kG; g++) {
      gort::go([&, g] {
        std::map<int, int> m;
        std::unordered_map<int, int> um;
        std::list<int> l;
        std::set<int> s;
        for (int i = 0; i < 200; i++) {
          m[i] = i * g;
          um[i] = i + g;
          l.push_back(i);
          s.insert(i);
          if (i % 10 == 0) gort::yield();
        }
        // 100 KiB of recursion, yielding at the bottom.
        struct R {
          static long rec(int depth, int g) {
            volatile char pad[1000];
            pad[0] = static_cast<char>(depth);
            if (depth == 0) {
              gort::yield();
              return g;
            }
            return rec(depth - 1, g) + pad[0] - static_cast<char>(depth) + 1;
          }
        };
        long r = R::rec(100, g);
        bool good = r == g + 100 && m.size() == 200 && um.size() == 200 && l.size() == 200 && s.size() == 200;
        for (int i = 0; i < 200; i++) good = good && m[i] == i * g && um[i] == i + g;
        if (good) ok++;
      });
    }
    wait_until([&] { return ok.load() == kG; });
  });
  CHECK(ok.load() == kG);
}

TEST_CASE("stealing spreads work over both Ps" * doctest::test_suite(kTwoPs)) {
  if (procs() < 2) return gort::test::skip(kNeedsTwoPs);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::atomic<int> done{0};
  gort::main([&] {
    for (int i = 0; i < 64; i++) {
      gort::go([&] {
        // Stay busy (no yield) until goroutines have run on two threads, so the
        // idle P must steal from the spawner's queue; the 10 s cap only bounds a
        // failure, however slow the machine.
        const auto cap = std::chrono::steady_clock::now() + 10s;
        for (;;) {
          {
            std::lock_guard lk(mu);
            threads.insert(std::this_thread::get_id());
            if (threads.size() >= 2) break;
          }
          if (std::chrono::steady_clock::now() > cap) break;
        }
        done++;
      });
    }
    wait_until([&] { return done.load() == 64; });
  });
  CHECK(threads.size() >= 2);
}

TEST_CASE("a goroutine in a 200 ms gort::syscall does not stop others, even with one P") {
  // Meant for one P (ctest's sched_test_procs1 run); with more it must hold too.
  std::atomic<bool> in_syscall{false}, syscall_done{false};
  std::atomic<int> progress{0}, finished{0};
  int progress_during = 0;
  gort::main([&] {
    gort::go([&] {
      gort::syscall([&] {
        in_syscall = true;
        std::this_thread::sleep_for(200ms);
      });
      syscall_done = true;
    });
    for (int i = 0; i < 4; i++) {
      gort::go([&] {
        while (!syscall_done.load()) {
          if (in_syscall.load()) progress++;
          gort::yield();
        }
        finished++;
      });
    }
    wait_until([&] { return syscall_done.load(); });
    progress_during = progress.load();
    wait_until([&] { return finished.load() == 4; });
  });
  CHECK(progress_during > 0);
}

TEST_CASE("goroutine-local storage follows the goroutine across migrations") {
  static gort::GoroutineLocal<std::vector<int>> local;
  std::atomic<int> ok{0}, done{0};
  gort::main([&] {
    for (int g = 0; g < 32; g++) {
      gort::go([&, g] {
        for (int i = 0; i < 50; i++) {
          local->push_back(g);
          gort::yield();  // may resume on another M
        }
        bool mine = local->size() == 50;
        for (int v : *local) mine = mine && v == g;
        if (mine) ok++;
        done++;
      });
    }
    wait_until([&] { return done.load() == 32; });
  });
  CHECK(ok.load() == 32);
  // Off goroutines, each thread has its own.
  local->assign(3, 7);
  std::size_t other = 99;
  std::thread([&] { other = local->size(); }).join();
  CHECK(other == 0);
  CHECK(local->size() == 3);
}

TEST_CASE("timers on an idle P fire while another P is kept busy") {
  // The Ms of idle Ps sleep until the earliest timer; a deadline already past
  // when one goes to sleep used to mean "sleep for ever".
  std::atomic<int> done{0};
  gort::main([&] {
    for (int i = 0; i < 4; i++) {
      gort::go([&] {
        for (int k = 0; k < 150; k++) gort::sleep(std::chrono::microseconds(1));
        done++;
      });
    }
    wait_until([&] { return done.load() == 4; });
  });
  CHECK(done.load() == 4);
}

TEST_CASE("blocking gort calls inside gort::syscall block the thread instead of parking") {
  // Inside a syscall the goroutine has no P to park on: it waits like a thread.
  bool ok = false;
  gort::main([&] {
    gort::WaitGroup wg;
    wg.add(1);
    gort::go([&] {
      gort::sleep(std::chrono::milliseconds(5));
      wg.done();
    });
    gort::syscall([&] {
      gort::sleep(std::chrono::milliseconds(1));
      gort::yield();
      wg.wait();
    });
    ok = true;
  });
  CHECK(ok);
}

TEST_CASE("a goroutine that makes no runtime call for hog_ms is reported") {
  auto r = gort::test::run_case_in_child([] {
    gort::main([] {
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
      while (std::chrono::steady_clock::now() < until) {
      }
    });
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("has run for") != std::string::npos);
  CHECK(r.err.find("without a runtime call") != std::string::npos);
}

// ---- Stacks of recycled goroutines (gfput / gfget) ----

namespace {

// The defects issue's reproduction: a custom-size goroutine exits, then a plain
// spawn takes its G from the free list. Its stack went back in gfput, so gfget's
// taker must allocate one (Go's "Stack was deallocated in gfput").
void custom_then_default() {
  gort::main([] {
    gort::Chan<int> done;
    gort::GoOptions o;
    o.stack_size = 64 * 1024;
    gort::go(o, [&] { done.send(1); });
    done.recv();
    gort::sleep(1ms);
    gort::go([&] { done.send(2); });
    done.recv();
  });
}

// A goroutine that fills `depth` KiB of its stack with a pattern and checks it,
// so a G handed a stack smaller than it asked for (or none) is caught.
bool use_stack(int depth_kib, std::uint8_t tag) {
  volatile std::uint8_t buf[1024];
  for (auto& b : buf) b = tag;
  bool ok = true;
  if (depth_kib > 1) ok = use_stack(depth_kib - 1, static_cast<std::uint8_t>(tag + 1));
  for (auto& b : buf) ok = ok && b == tag;
  return ok;
}

// Spawns n goroutines with sizes drawn from a seeded mix of the default and
// custom sizes; each uses part of its stack, some yield or sleep, some spawn a
// child of another size. Returns how many checked their stack without error.
int spawn_size_mix(std::uint64_t seed, int n) {
  static constexpr std::size_t kSizes[] = {0, 16 * 1024, 64 * 1024, 256 * 1024, 4097, 1 << 20, 32 * 1024};
  std::atomic<int> good{0};
  gort::WaitGroup wg;
  std::uint64_t x = seed;
  auto next = [&x] {  // xorshift64
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < n; i++) {
    const std::uint64_t r = next();
    gort::GoOptions o;
    o.stack_size = kSizes[r % std::size(kSizes)];
    const std::size_t child = kSizes[(r >> 8) % std::size(kSizes)];
    const int what = static_cast<int>((r >> 16) % 8);
    wg.add(what == 0 ? 2 : 1);
    gort::go(o, [&good, &wg, child, what, depth = o.stack_size == 0 || o.stack_size >= 32 * 1024 ? 8 : 2] {
      if (use_stack(depth, static_cast<std::uint8_t>(what))) good++;
      if (what == 1) gort::yield();
      if (what == 2) gort::sleep(100us);
      if (what == 0) {
        gort::GoOptions co;
        co.stack_size = child;
        gort::go(co, [&good, &wg] {
          if (use_stack(2, 7)) good++;
          wg.done();
        });
      }
      wg.done();
    });
    if (i % 64 == 63) gort::sleep(100us);  // let exits reach the free lists between bursts
  }
  wg.wait();
  return good.load();
}

// check_recycled_stacks() waits until only the calling goroutine is left, then
// checks invariant 1 on every G, that a G on a free list holds a default-size
// stack or none, and that the stack statistics add up to the Gs' stacksize.
// On one P only: every G was last touched by this thread (the walk reads their
// fields without the owners' synchronisation).
void check_recycled_stacks(bool keeps_stacks) {
  using namespace gort::rt;
  while (gort::stats().goroutines != 1) gort::yield();
  std::uint64_t sum = 0, kept = 0;
  int bad = 0;
  sched.allglock.lock();
  for (G* gp = sched.allgs; gp != nullptr; gp = gp->alllink) {
    const std::size_t held = gp->stack.empty() ? 0 : gp->stack.size();
    if (gp->stacksize != held) bad++;
    if (gp->status.load() == Gstatus::dead && held != 0) {
      kept++;
      if (held != stack_default_size()) bad++;
    }
    sum += gp->stacksize;
  }
  sched.allglock.unlock();
  CHECK(bad == 0);
  CHECK(gort::stats().stacks.stacks_inuse == sum);
  CHECK(gort::stats().stacks.malloced.count == 0);
  if (!keeps_stacks) CHECK(kept == 0);
}

}  // namespace

TEST_CASE("a plain spawn after a custom-size goroutine exited runs") {
  for (const char* procs : {"1", "2"}) {
    gort::test::ScopedEnv env("GORTMAXPROCS", procs);
    auto r = gort::test::run_case_in_child(custom_then_default);
    INFO("GORTMAXPROCS=" << std::string(procs) << ", child stderr:\n" << r.err);
    CHECK(r.status == 0);
    CHECK(r.err.find("fatal error") == std::string::npos);
  }
}

TEST_CASE("random mixes of stack sizes spawn and run on any number of Ps and keep exact accounting") {
  constexpr int kN = 3000 / kScale;
  const std::uint64_t seed = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(gort::rt::sched.procs);
  INFO("seed " << seed);
  int good = 0;
  gort::main([&] {
    good = spawn_size_mix(seed, kN);
    if (gort::rt::sched.procs == 1) check_recycled_stacks(true);
  });
  CHECK(good >= kN);
  if (gort::rt::sched.procs != 1) {
    MESSAGE("per-G accounting walk skipped on " << gort::rt::sched.procs << " Ps (it runs in the GORTMAXPROCS=1 pass)");
  }
}

namespace {

// mix_in_debug_mode() runs the size mix on one P in a child process with the
// debug modes switched on at run time, where exited stacks must all be freed.
void mix_in_debug_mode(const char* mode) {
  gort::test::ScopedEnv procs("GORTMAXPROCS", "1");
  auto r = gort::test::run_case_in_child([mode] {
    gort::set_debug(mode);
    int good = 0;
    gort::main([&] {
      good = spawn_size_mix(12345, 600 / kScale);
      check_recycled_stacks(false);
    });
    if (good < 600 / kScale) {
      std::fprintf(stderr, "only %d goroutines saw their stack intact\n", good);
      std::_Exit(1);
    }
  });
  INFO("debug mode " << mode << ", child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("fatal error") == std::string::npos);
}

}  // namespace

TEST_CASE("random mixes of stack sizes under efence free every stack at exit") { mix_in_debug_mode("efence=1"); }

TEST_CASE("random mixes of stack sizes under stackpoison free every stack at exit") {
  mix_in_debug_mode("stackpoison=1");
}

TEST_CASE("random mixes of stack sizes under efence and stackpoison free every stack at exit") {
  mix_in_debug_mode("efence=1,stackpoison=1");
}

namespace {

volatile int* leaked_local;

// The defects issue's efence reproduction: a pointer into an exited
// goroutine's stack, read after the goroutine is gone.
void read_exited_stack() {
  gort::main([] {
    gort::Chan<int> c;
    gort::go([&] {
      volatile int local[64];
      local[3] = 42;
      leaked_local = &local[3];
      c.send(1);
    });
    c.recv();
    for (int i = 0; i < 10; i++) gort::sleep(5ms);
    std::fprintf(stderr, "read %d\n", *leaked_local);
  });
}


// read_exited_stack_in() runs read_exited_stack in a child with mode on.
gort::test::ChildResult read_exited_stack_in(const char* mode) {
  return gort::test::run_case_in_child([mode] {
    gort::set_debug(mode);
    read_exited_stack();
  });
}

// expect_use_of_freed_stack() checks the report of read_exited_stack's read.
void expect_use_of_freed_stack(const gort::test::ChildResult& r) {
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("read 42") == std::string::npos);
  CHECK(r.err.find("fatal error: use of freed stack") != std::string::npos);
  CHECK(r.err.find("in the stack of goroutine 2, [0x") != std::string::npos);
  CHECK(r.err.find("freed at goroutine exit") != std::string::npos);
}

}  // namespace

TEST_CASE("efence catches a read of an exited goroutine's stack") {
  expect_use_of_freed_stack(read_exited_stack_in("efence=1"));
}

TEST_CASE("stackfromsystem with stackfaultonfree catches a read of an exited goroutine's stack") {
  expect_use_of_freed_stack(read_exited_stack_in("stackfromsystem=1,stackfaultonfree=1"));
}

TEST_CASE("under stackpoison an exited goroutine's stack reads as poison") {
  auto r = read_exited_stack_in("stackpoison=1");
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("read " + std::to_string(static_cast<int>(0xfcfcfcfcu))) != std::string::npos);
}
