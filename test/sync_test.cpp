// gort's sync package: Mutex, RWMutex, WaitGroup, Once, Cond, Semaphore, from
// goroutines, from plain threads and from both. No test relies on timing to
// pass: waits for "X has happened" are on observable state, and where a broken
// primitive would make such a wait endless, the wait is bounded by a number of
// tries and then checked.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "gort/gort.hpp"
#include "gort/sync.hpp"

namespace {

// wait_until() yields until pred() holds (on a goroutine or a plain thread).
template <class F>
void wait_until(F pred) {
  while (!pred()) gort::yield();
}

// eventually() yields until pred() holds, giving up after a fixed number of
// tries (not a time), and returns whether it holds: for waits that a broken
// primitive would make endless.
template <class F>
bool eventually(F pred) {
  for (int i = 0; i < 2'000'000; i++) {
    if (pred()) return true;
    gort::yield();
  }
  return pred();
}

// join() starts n plain threads running fn(i) and joins them.
template <class F>
void join_threads(int n, F fn) {
  std::vector<std::thread> ts;
  for (int i = 0; i < n; i++) ts.emplace_back(fn, i);
  for (auto& t : ts) t.join();
}

// A critical section that a broken mutex would let two callers into at once:
// a non-atomic read-modify-write, made wide by yielding in the middle now and
// then (so lockers also park, not only spin).
void increment(long& counter, int i) {
  long v = counter;
  if (i % 64 == 0) gort::yield();
  counter = v + 1;
}

}  // namespace

// ---- Mutex ----

TEST_CASE("Mutex: 100 goroutines x 1000 increments") {
  gort::Mutex mu;
  long counter = 0;
  std::atomic<int> finished{0};
  gort::main([&] {
    for (int g = 0; g < 100; g++) {
      gort::go([&] {
        for (int i = 0; i < 1000; i++) {
          mu.lock();
          increment(counter, i);
          mu.unlock();
        }
        finished++;
      });
    }
    wait_until([&] { return finished.load() == 100; });
  });
  CHECK(counter == 100 * 1000);
}

TEST_CASE("Mutex: plain threads") {
  gort::Mutex mu;
  long counter = 0;
  join_threads(4, [&](int) {
    for (int i = 0; i < 20'000; i++) {
      std::lock_guard lk(mu);
      increment(counter, i);
    }
  });
  CHECK(counter == 4 * 20'000);
}

TEST_CASE("Mutex: goroutines and plain threads together") {
  gort::Mutex mu;
  long counter = 0;
  std::atomic<int> finished{0};
  gort::main([&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; t++) {
      ts.emplace_back([&] {
        for (int i = 0; i < 10'000; i++) {
          std::lock_guard lk(mu);
          increment(counter, i);
        }
      });
    }
    for (int g = 0; g < 50; g++) {
      gort::go([&] {
        for (int i = 0; i < 1000; i++) {
          std::lock_guard lk(mu);
          increment(counter, i);
        }
        finished++;
      });
    }
    wait_until([&] { return finished.load() == 50; });
    // Joining blocks the goroutine's thread: say so, so its P is handed off.
    gort::syscall([&] {
      for (auto& t : ts) t.join();
    });
  });
  CHECK(counter == 3 * 10'000 + 50 * 1000);
}

TEST_CASE("Mutex: try_lock") {
  gort::Mutex mu;
  CHECK(mu.try_lock());
  bool other = true;
  std::thread([&] { other = mu.try_lock(); }).join();
  CHECK_FALSE(other);
  gort::main([&] { other = mu.try_lock(); });
  CHECK_FALSE(other);
  mu.unlock();
  gort::main([&] { other = mu.try_lock(); });
  CHECK(other);
  mu.unlock();
}

TEST_CASE("Mutex: lock_guard, unique_lock and scoped_lock") {
  gort::Mutex a, b;
  {
    std::lock_guard lk(a);
    CHECK_FALSE(a.try_lock());
  }
  CHECK(a.try_lock());
  a.unlock();
  {
    std::unique_lock lk(a, std::try_to_lock);
    CHECK(lk.owns_lock());
    lk.unlock();
    CHECK(a.try_lock());
    a.unlock();
  }
  // std::scoped_lock takes both without deadlock whatever the order.
  long counter = 0;
  std::atomic<int> finished{0};
  gort::main([&] {
    for (int g = 0; g < 4; g++) {
      gort::go([&, g] {
        for (int i = 0; i < 500; i++) {
          if (g % 2 == 0) {
            std::scoped_lock lk(a, b);
            increment(counter, i);
          } else {
            std::scoped_lock lk(b, a);
            increment(counter, i);
          }
        }
        finished++;
      });
    }
    wait_until([&] { return finished.load() == 4; });
  });
  CHECK(counter == 4 * 500);
}

TEST_CASE("Mutex: a waiter is not starved by a goroutine relocking in a loop") {
  // The hog releases and at once retakes the mutex; without starvation mode the
  // woken waiter would nearly always lose the race. It holds the mutex across a
  // yield, so the waiter gets to run and park. The test ends only once the
  // waiter got the mutex.
  gort::Mutex mu;
  std::atomic<bool> got{false};
  std::atomic<bool> hogging{false};
  std::atomic<long> rounds{0};
  std::atomic<int> finished{0};
  gort::main([&] {
    gort::go([&] {
      while (!got.load()) {
        mu.lock();
        hogging = true;
        gort::yield();
        mu.unlock();
        rounds++;
      }
      finished++;
    });
    gort::go([&] {
      wait_until([&] { return hogging.load(); });
      mu.lock();
      got = true;
      mu.unlock();
      finished++;
    });
    wait_until([&] { return finished.load() == 2; });
  });
  CHECK(got.load());
  CHECK(rounds.load() > 0);
}

TEST_CASE("Mutex: unlock of an unlocked mutex is a fatal error") {
  auto r = gort::test::run_in_child([] {
    gort::Mutex mu;
    mu.unlock();
  });
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: sync: unlock of unlocked mutex") != std::string::npos);
}

// ---- RWMutex ----

TEST_CASE("RWMutex: readers share it, writers exclude") {
  gort::RWMutex rw;
  bool ok = false;
  rw.lock_shared();
  std::thread([&] {
    ok = rw.try_lock_shared();  // a second reader while the first holds it
    if (ok) rw.unlock_shared();
  }).join();
  CHECK(ok);
  std::thread([&] { ok = rw.try_lock(); }).join();
  CHECK_FALSE(ok);  // no writer while a reader holds it
  rw.unlock_shared();
  CHECK(rw.try_lock());
  std::thread([&] { ok = rw.try_lock_shared(); }).join();
  CHECK_FALSE(ok);  // no reader while a writer holds it
  std::thread([&] { ok = rw.try_lock(); }).join();
  CHECK_FALSE(ok);
  rw.unlock();
  {
    std::shared_lock lk(rw);
    CHECK(lk.owns_lock());
  }
  std::unique_lock lk(rw);
  CHECK(lk.owns_lock());
}

TEST_CASE("RWMutex: many readers hold it at once") {
  constexpr int kReaders = 8;
  gort::RWMutex rw;
  std::atomic<int> inside{0};
  std::atomic<int> finished{0};
  std::atomic<bool> all_inside{true};
  gort::main([&] {
    for (int g = 0; g < kReaders; g++) {
      gort::go([&] {
        {
          std::shared_lock lk(rw);
          inside++;
          // Every reader stays until all are in: only possible if they share it.
          if (!eventually([&] { return inside.load() == kReaders; })) all_inside = false;
        }
        finished++;  // after unlocking: the test's end destroys rw
      });
    }
    wait_until([&] { return finished.load() == kReaders; });
  });
  CHECK(all_inside.load());
  CHECK(inside.load() == kReaders);
}

TEST_CASE("RWMutex: writers exclude readers and each other under load") {
  gort::RWMutex rw;
  std::atomic<int> readers{0}, writers{0}, violations{0};
  long written = 0;
  std::atomic<int> finished{0};
  auto reader = [&](int i) {
    std::shared_lock lk(rw);
    readers++;
    if (writers.load() != 0) violations++;
    if (i % 8 == 0) gort::yield();
    readers--;
  };
  auto writer = [&](int i) {
    std::unique_lock lk(rw);
    if (writers.fetch_add(1) != 0 || readers.load() != 0) violations++;
    increment(written, i);
    writers--;
  };
  gort::main([&] {
    for (int g = 0; g < 20; g++) {
      gort::go([&, g] {
        for (int i = 0; i < 500; i++) {
          if (g % 4 == 0) writer(i);
          else reader(i);
        }
        finished++;
      });
    }
    std::thread t([&] {
      for (int i = 0; i < 500; i++) {
        writer(i);
        reader(i);
      }
    });
    wait_until([&] { return finished.load() == 20; });
    gort::syscall([&] { t.join(); });
  });
  CHECK(violations.load() == 0);
  CHECK(written == 5 * 500 + 500);
}

TEST_CASE("RWMutex: a waiting writer stops new readers") {
  gort::RWMutex rw;
  bool readers_stopped = false;
  std::atomic<bool> wrote{false}, finished{false};
  gort::main([&] {
    rw.lock_shared();
    gort::go([&] {
      rw.lock();
      wrote = true;
      rw.unlock();
      finished = true;
    });
    // Once the writer waits, a new reader is refused although only readers hold it.
    readers_stopped = eventually([&] {
      if (!rw.try_lock_shared()) return true;
      rw.unlock_shared();
      return false;
    });
    CHECK_FALSE(wrote.load());
    rw.unlock_shared();
    wait_until([&] { return finished.load(); });
  });
  CHECK(readers_stopped);
  CHECK(wrote.load());
}

TEST_CASE("RWMutex: a writer is not starved by a stream of overlapping readers") {
  gort::RWMutex rw;
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<long> reads{0};
  int writes = 0;
  gort::main([&] {
    for (int g = 0; g < 8; g++) {
      gort::go([&] {
        while (!stop.load()) {
          std::shared_lock lk(rw);
          reads++;
          gort::yield();  // readers overlap: the count of holders rarely drops to zero
        }
        finished++;
      });
    }
    wait_until([&] { return reads.load() > 100; });
    for (int i = 0; i < 20; i++) {
      std::unique_lock lk(rw);
      writes++;
    }
    stop = true;
    wait_until([&] { return finished.load() == 8; });
  });
  CHECK(writes == 20);
}

// ---- WaitGroup ----

TEST_CASE("WaitGroup: 10,000 goroutines") {
  gort::WaitGroup wg;
  std::atomic<int> ran{0};
  gort::main([&] {
    wg.add(10'000);
    for (int g = 0; g < 10'000; g++) {
      gort::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
    CHECK(ran.load() == 10'000);
  });
  CHECK(ran.load() == 10'000);
}

TEST_CASE("WaitGroup: several waiters, reused for several rounds") {
  gort::WaitGroup work, waiters;
  std::atomic<int> ran{0}, released{0};
  gort::main([&] {
    for (int round = 1; round <= 3; round++) {
      work.add(100);
      waiters.add(10);
      for (int w = 0; w < 10; w++) {
        gort::go([&, round] {
          work.wait();
          if (ran.load() == round * 100) released++;
          waiters.done();
        });
      }
      for (int g = 0; g < 100; g++) {
        gort::go([&] {
          gort::yield();
          ran++;
          work.done();
        });
      }
      waiters.wait();
    }
  });
  CHECK(ran.load() == 300);
  CHECK(released.load() == 30);
}

TEST_CASE("WaitGroup: a negative counter panics") {
  gort::WaitGroup a;
  CHECK_THROWS_WITH_AS(a.done(), "sync: negative WaitGroup counter", gort::panic_error);
  bool threw = false;
  gort::main([&] {
    gort::WaitGroup b;
    b.add(2);
    b.add(-2);
    try {
      b.add(-1);
    } catch (const gort::panic_error& e) {
      threw = std::string(e.what()) == "sync: negative WaitGroup counter";
    }
  });
  CHECK(threw);
}

TEST_CASE("WaitGroup: plain threads and goroutines wait on each other") {
  gort::WaitGroup wg;
  std::atomic<int> ran{0};
  // Threads finish, a goroutine waits.
  bool seen = false;
  gort::main([&] {
    wg.add(4);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++) {
      ts.emplace_back([&] {
        ran++;
        wg.done();
      });
    }
    wg.wait();
    seen = ran.load() == 4;
    gort::syscall([&] {
      for (auto& t : ts) t.join();
    });
  });
  CHECK(seen);
  // Goroutines finish, plain threads wait.
  gort::WaitGroup gs;
  gs.add(200);
  std::atomic<int> waited{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++) {
    ts.emplace_back([&] {
      gs.wait();
      if (ran.load() == 204) waited++;
    });
  }
  gort::main([&] {
    for (int g = 0; g < 200; g++) {
      gort::go([&] {
        gort::yield();
        ran++;
        gs.done();
      });
    }
    gs.wait();
  });
  for (auto& t : ts) t.join();
  CHECK(waited.load() == 3);
}

// ---- Once ----

TEST_CASE("Once: 100 concurrent callers, one call, all see its effect") {
  gort::Once once;
  std::atomic<int> calls{0}, saw{0}, finished{0};
  int value = 0;  // written by the call, read by every caller without a lock
  gort::main([&] {
    for (int g = 0; g < 100; g++) {
      gort::go([&] {
        once.call([&] {
          calls++;
          for (int i = 0; i < 10; i++) gort::yield();  // let the others pile up
          value = 42;
        });
        if (value == 42) saw++;
        finished++;
      });
    }
    wait_until([&] { return finished.load() == 100; });
  });
  CHECK(calls.load() == 1);
  CHECK(saw.load() == 100);
}

TEST_CASE("Once: plain threads; a throwing call counts as done") {
  gort::Once once;
  std::atomic<int> calls{0}, saw{0};
  int value = 0;
  join_threads(8, [&](int) {
    once.call([&] {
      calls++;
      std::this_thread::yield();
      value = 7;
    });
    if (value == 7) saw++;
  });
  CHECK(calls.load() == 1);
  CHECK(saw.load() == 8);

  gort::Once thrower;
  CHECK_THROWS_AS(thrower.call([] { throw std::runtime_error("boom"); }), std::runtime_error);
  bool again = false;
  thrower.call([&] { again = true; });
  CHECK_FALSE(again);
}

// ---- Cond ----

TEST_CASE("Cond: signal wakes one waiter, broadcast wakes the rest") {
  constexpr int kWaiters = 5;
  gort::Mutex mu;
  gort::Cond cond;
  int waiting = 0, tokens = 0, wakes = 0;
  std::atomic<int> finished{0};
  int wakes_after_signal = -1;
  gort::main([&] {
    for (int g = 0; g < kWaiters; g++) {
      gort::go([&] {
        std::unique_lock lk(mu);
        waiting++;
        while (tokens == 0) {
          cond.wait(lk);
          wakes++;
        }
        tokens--;
        lk.unlock();
        finished++;
      });
    }
    // All are in wait() (they counted themselves under the lock before it).
    wait_until([&] {
      std::lock_guard lk(mu);
      return waiting == kWaiters;
    });
    {
      std::lock_guard lk(mu);
      tokens = 1;
    }
    cond.signal();
    wait_until([&] { return finished.load() == 1; });
    {
      std::lock_guard lk(mu);
      wakes_after_signal = wakes;
      tokens = kWaiters - 1;
    }
    cond.broadcast();
    wait_until([&] { return finished.load() == kWaiters; });
  });
  CHECK(wakes_after_signal == 1);
  // One wake each: a waiter woken too early would have waited and woken again.
  CHECK(wakes == kWaiters);
  CHECK(tokens == 0);
}

TEST_CASE("Cond: a bounded queue between plain threads and goroutines") {
  // Producers on threads, consumers on goroutines, and the other way round.
  gort::Mutex mu;
  gort::Cond notempty, notfull;
  std::vector<int> q;
  constexpr std::size_t kCap = 4;
  constexpr int kItems = 2000;
  long sum = 0;
  int taken = 0;
  auto put = [&](int v) {
    std::unique_lock lk(mu);
    notfull.wait(lk, [&] { return q.size() < kCap; });
    q.push_back(v);
    notempty.signal();
  };
  auto take = [&] {
    std::unique_lock lk(mu);
    notempty.wait(lk, [&] { return !q.empty() || taken == 2 * kItems; });
    if (q.empty()) return false;
    sum += q.back();
    q.pop_back();
    if (++taken == 2 * kItems) notempty.broadcast();
    notfull.signal();
    return true;
  };
  std::atomic<int> finished{0};
  gort::main([&] {
    std::thread producer([&] {
      for (int i = 1; i <= kItems; i++) put(i);
    });
    std::thread consumer([&] {
      while (take()) {
      }
    });
    gort::go([&] {
      for (int i = 1; i <= kItems; i++) put(i);
      finished++;
    });
    for (int g = 0; g < 3; g++) {
      gort::go([&] {
        while (take()) {
        }
        finished++;
      });
    }
    wait_until([&] { return finished.load() == 4; });
    gort::syscall([&] {
      producer.join();
      consumer.join();
    });
  });
  CHECK(taken == 2 * kItems);
  CHECK(sum == 2L * kItems * (kItems + 1) / 2);
}

// ---- Semaphore ----

TEST_CASE("Semaphore: at most n holders, and n reached") {
  constexpr int kN = 3;
  gort::Semaphore sem(kN);
  std::atomic<int> inside{0}, maxinside{0}, holding{0}, released{0}, finished{0};
  std::atomic<bool> full{false};
  auto enter = [&] {
    int now = inside.fetch_add(1) + 1;
    int m = maxinside.load();
    while (now > m && !maxinside.compare_exchange_weak(m, now)) {
    }
  };
  gort::main([&] {
    // n holders at once: each waits for the others, possible only if n fit.
    for (int g = 0; g < kN; g++) {
      gort::go([&] {
        sem.acquire();
        enter();
        if (eventually([&] { return inside.load() == kN; })) full = true;
        holding++;
        wait_until([&] { return holding.load() == kN; });
        inside--;
        sem.release();
        released++;
      });
    }
    wait_until([&] { return released.load() == kN; });
    // Then many, from goroutines and a thread, never more than n.
    for (int g = 0; g < 100; g++) {
      gort::go([&] {
        for (int i = 0; i < 50; i++) {
          sem.acquire();
          enter();
          if (i % 4 == 0) gort::yield();
          inside--;
          sem.release();
        }
        finished++;
      });
    }
    std::thread t([&] {
      for (int i = 0; i < 2000; i++) {
        sem.acquire();
        enter();
        inside--;
        sem.release();
      }
    });
    wait_until([&] { return finished.load() == 100; });
    gort::syscall([&] { t.join(); });
  });
  CHECK(full.load());
  CHECK(maxinside.load() == kN);
  CHECK(sem.try_acquire(kN));  // every unit came back
}

TEST_CASE("Semaphore: a large request is served in FIFO order") {
  gort::Semaphore sem(10);
  std::string order;
  gort::Mutex ordermu;
  std::atomic<int> finished{0};
  auto record = [&](char c) {
    std::lock_guard lk(ordermu);
    order += c;
  };
  bool small_refused = false, small_refused_with_room = false;
  gort::main([&] {
    sem.acquire(10);
    gort::go([&] {  // L: wants everything
      sem.acquire(10);
      record('L');
      sem.release(10);
      finished++;
    });
    // try_acquire(0) fails exactly when someone waits: L is queued.
    wait_until([&] {
      if (!sem.try_acquire(0)) return true;
      return false;
    });
    small_refused = !sem.try_acquire(1);
    sem.release(5);
    // 5 units are free, but L came first: a small request must not pass it.
    small_refused_with_room = !sem.try_acquire(1);
    gort::go([&] {  // S: a small request queued behind L
      sem.acquire(1);
      record('S');
      sem.release(1);
      finished++;
    });
    sem.release(5);
    wait_until([&] { return finished.load() == 2; });
  });
  CHECK(small_refused);
  CHECK(small_refused_with_room);
  CHECK(order == "LS");
  CHECK(sem.try_acquire(10));
}

TEST_CASE("Semaphore: a large request is not starved by a stream of small ones") {
  gort::Semaphore sem(4);
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<long> smalls{0};
  int big = 0;
  gort::main([&] {
    for (int g = 0; g < 8; g++) {
      gort::go([&] {
        while (!stop.load()) {
          sem.acquire(1);
          smalls++;
          gort::yield();
          sem.release(1);
        }
        finished++;
      });
    }
    wait_until([&] { return smalls.load() > 100; });
    for (int i = 0; i < 10; i++) {
      sem.acquire(4);
      big++;
      sem.release(4);
    }
    stop = true;
    wait_until([&] { return finished.load() == 8; });
  });
  CHECK(big == 10);
}

TEST_CASE("Semaphore: misuse panics, try_acquire, plain threads") {
  gort::Semaphore sem(2);
  CHECK_THROWS_WITH_AS(sem.release(), "semaphore: released more than held", gort::panic_error);
  CHECK_THROWS_AS(sem.acquire(3), gort::panic_error);
  CHECK_THROWS_AS(sem.acquire(-1), gort::panic_error);
  CHECK_THROWS_AS(gort::Semaphore(-1), std::invalid_argument);
  CHECK(sem.try_acquire(2));
  CHECK_FALSE(sem.try_acquire(1));
  // A plain thread blocks in acquire until a goroutine releases.
  std::atomic<bool> got{false};
  std::thread t([&] {
    sem.acquire(2);
    got = true;
  });
  gort::main([&] {
    sem.release(1);
    gort::yield();
    sem.release(1);
  });
  t.join();
  CHECK(got.load());
  CHECK_FALSE(sem.try_acquire(1));
  sem.release(2);
  CHECK_THROWS_AS(sem.release(1), gort::panic_error);
  // Over-release is refused while a waiter is queued too, changing nothing.
  bool refused = false;
  std::atomic<bool> waiter_got{false};
  gort::main([&] {
    sem.acquire(2);
    gort::go([&] {
      sem.acquire(2);
      waiter_got = true;
    });
    wait_until([&] { return !sem.try_acquire(0); });  // the waiter is queued
    try {
      sem.release(3);
    } catch (const gort::panic_error&) {
      refused = true;
    }
    sem.release(2);
    wait_until([&] { return waiter_got.load(); });
  });
  CHECK(refused);
  CHECK_FALSE(sem.try_acquire(1));  // the waiter holds both units
  sem.release(2);
  CHECK(sem.try_acquire(2));
}
