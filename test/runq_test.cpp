// The run queues (src/sched/runq.hpp, rule 1 of runtime.hpp) seen by their
// owner and by stealers, on Ps built here: no scheduler runs in this binary,
// so every case drives the queue operations itself, as tokio tests its queue.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sched/lock.hpp"
#include "sched/runq.hpp"

using namespace gort::rt;

namespace {

// Gs used only as queue entries: the queues never look inside them.
std::vector<std::unique_ptr<G>> make_gs(int n) {
  std::vector<std::unique_ptr<G>> gs;
  for (int i = 0; i < n; i++) gs.push_back(std::make_unique<G>());
  return gs;
}

// drain() takes everything the owner of p can take, in order.
std::vector<G*> drain(P* p) {
  std::vector<G*> out;
  while (G* gp = runqget(p)) out.push_back(gp);
  return out;
}

// The global queue is empty again after a case, for the next one.
void drain_global() {
  if (sched.procs == 0) sched.procs = 1;  // globrunqget shares among the Ps
  P sink;
  sched.lock.lock();
  while (sched.runqsize.load() > 0) {
    globrunqget(&sink, kRunqSize / 2);
    drain(&sink);
  }
  sched.lock.unlock();
}

}  // namespace

TEST_CASE("owner: runnext runs first, then the ring in order; a second runnext kicks the first to the tail") {
  P p;
  auto gs = make_gs(4);
  runqput(&p, gs[0].get(), false);
  runqput(&p, gs[1].get(), true);   // into the empty runnext
  runqput(&p, gs[2].get(), true);   // kicks gs[1] to the tail
  runqput(&p, gs[3].get(), false);
  CHECK(runqroom(&p) == kRunqSize - 3);
  CHECK_FALSE(runqempty(&p));
  const std::vector<G*> want{gs[2].get(), gs[0].get(), gs[1].get(), gs[3].get()};
  CHECK(drain(&p) == want);
  CHECK(runqempty(&p));
}

TEST_CASE("owner: a full ring spills its older half and the new G to the global queue") {
  P p;
  auto gs = make_gs(kRunqSize + 1);
  for (int i = 0; i < kRunqSize; i++) CHECK(runqputtail(&p, gs[static_cast<std::size_t>(i)].get()));
  CHECK_FALSE(runqputtail(&p, gs[kRunqSize].get()));
  CHECK(runqroom(&p) == 0);
  const int before = sched.runqsize.load();
  runqput(&p, gs[kRunqSize].get(), false);
  CHECK(sched.runqsize.load() == before + kRunqSize / 2 + 1);
  const std::vector<G*> left = drain(&p);
  REQUIRE(left.size() == static_cast<std::size_t>(kRunqSize / 2));
  for (int i = 0; i < kRunqSize / 2; i++) CHECK(left[static_cast<std::size_t>(i)] == gs[static_cast<std::size_t>(kRunqSize / 2 + i)].get());
  // The global queue hands them back oldest first.
  if (sched.procs == 0) sched.procs = 1;
  P q;
  sched.lock.lock();
  G* first = globrunqget(&q, 0);
  sched.lock.unlock();
  CHECK(first == gs[0].get());
  drain(&q);
  drain_global();
}

TEST_CASE("stealer: runqsteal takes the older half of the victim's ring, in order, and leaves the rest") {
  P owner, thief;
  auto gs = make_gs(9);
  for (auto& g : gs) runqput(&owner, g.get(), false);
  G* run = runqsteal(&thief, &owner, false);
  // Half of 9 rounded up: 5 taken, the last of them returned to run at once.
  CHECK(run == gs[4].get());
  const std::vector<G*> stolen = drain(&thief);
  const std::vector<G*> want_stolen{gs[0].get(), gs[1].get(), gs[2].get(), gs[3].get()};
  CHECK(stolen == want_stolen);
  const std::vector<G*> kept = drain(&owner);
  const std::vector<G*> want_kept{gs[5].get(), gs[6].get(), gs[7].get(), gs[8].get()};
  CHECK(kept == want_kept);
  CHECK(runqsteal(&thief, &owner, false) == nullptr);  // nothing left to steal
}

TEST_CASE("stealer: runnext is stolen only with stealnext, from an idle P, and only with membarrier") {
  P owner, thief;
  auto gs = make_gs(1);
  runqput(&owner, gs[0].get(), true);
  CHECK(runqsteal(&thief, &owner, false) == nullptr);  // runnext is not part of the ring
  G* got = runqsteal(&thief, &owner, true);
  if (lock_init()) {
    // The owner neither scheduled nor queued while the stealer watched.
    CHECK(got == gs[0].get());
    CHECK(runqempty(&owner));
  } else {
    MESSAGE("membarrier refused: runnext is never stolen, as documented");
    CHECK(got == nullptr);
    CHECK(runqget(&owner) == gs[0].get());
  }
}

TEST_CASE("owner and stealer at once: every G is taken exactly once") {
  constexpr int kN = 20'000;
  auto gs = make_gs(kN);
  P owner, thief;
  std::atomic<bool> done{false};
  std::unordered_map<G*, int> seen;
  std::vector<G*> stolen;
  // The thief steals and runs what it stole until the owner is done, then
  // makes one last pass; the owner drains its own queue at the end.
  std::thread t([&] {
    for (;;) {
      const bool last = done.load(std::memory_order_acquire);
      if (G* gp = runqsteal(&thief, &owner, false)) stolen.push_back(gp);
      while (G* gp = runqget(&thief)) stolen.push_back(gp);
      if (last) break;
    }
  });
  std::vector<G*> mine;
  for (int i = 0; i < kN; i++) {
    while (!runqputtail(&owner, gs[static_cast<std::size_t>(i)].get())) {
      if (G* gp = runqget(&owner)) mine.push_back(gp);
    }
    if (i % 3 == 0) {
      if (G* gp = runqget(&owner)) mine.push_back(gp);
    }
  }
  done.store(true, std::memory_order_release);
  while (G* gp = runqget(&owner)) mine.push_back(gp);
  t.join();
  for (G* gp : mine) seen[gp]++;
  for (G* gp : stolen) seen[gp]++;
  int once = 0;
  for (auto& g : gs) once += seen[g.get()] == 1;
  CHECK(once == kN);
  CHECK(mine.size() + stolen.size() == static_cast<std::size_t>(kN));
}
