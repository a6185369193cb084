// Relocatable goroutines (copying stacks): moves keep pointers into the stack
// right, accounting stays exact in every debug mode, morestack, growth in libc
// and runtime code, the overflow limit, the "use of moved stack" report, and
// stack.kind. Through the public API, plus the G's stack fields for the
// invariants.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "child.hpp"
#include "gort/gort.hpp"
#include "sched/runtime.hpp"
#include "skip.hpp"
#include "stack/stack.hpp"

using namespace gort::rt;

namespace {

// A frame with a pointer to its caller's node, a string whose short buffer is
// inside the node (so points into the stack), and a reference down the chain.
struct Node {
  int depth;
  const Node* parent;
  std::string tag;
};

// Recursion check: walks every ancestor from the bottom and counts the ones
// whose fields are what their frames wrote. Each frame is ~0.3 KiB.
__attribute__((noinline)) int descend(int depth, int max, const Node* parent, const std::string& root) {
  volatile char pad[200];
  pad[0] = static_cast<char>(depth);
  Node n{depth, parent, std::to_string(depth % 1000)};
  if (depth == max) {
    int good = 0;
    for (const Node* p = &n; p != nullptr; p = p->parent) {
      good += p->tag == std::to_string(p->depth % 1000) && (p->parent == nullptr || p->parent->depth == p->depth - 1);
    }
    return good + (root == "root" ? 0 : -1'000'000);
  }
  return descend(depth + 1, max, &n, root) + pad[0] - static_cast<char>(depth);
}

// What a relocatable goroutine reports about itself.
struct Seen {
  int good = 0;
  bool kind_copying = false;
  bool stacksize_exact = false;  // invariant 1 of stack.hpp
  bool power_of_two = false;
  std::size_t size = 0;
};

Seen look_at_self() {
  Seen s;
  G* gp = getgp();
  s.kind_copying = gp->stack.kind == StackKind::copying;
  s.stacksize_exact = gp->stacksize == gp->stack.size();
  s.size = gp->stack.size();
  s.power_of_two = (s.size & (s.size - 1)) == 0;
  return s;
}

// run_relocatable() runs fn on a fresh relocatable goroutine and waits for it.
template <class F>
void run_relocatable(F&& fn) {
  gort::Chan<int> done(1);
  gort::GoOptions o;
  o.relocatable = true;
  gort::go(o, [&fn, done]() mutable {
    fn();
    done.send(1);
  });
  done.recv();
}

bool copying_supported() { return copying_geom.supported; }

constexpr const char* kNoCopying =
    "sanitizer build: relocatable goroutines run on stable stacks here (docs/stacks.md \"Sanitizer builds\")";

constexpr int kDeep = 40'000;  // ~12 MiB of frames: 12 moves from 4 KiB

}  // namespace

TEST_CASE("a relocatable goroutine starts at one page and recurses 12 MiB deep; pointers into its stack follow every move") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    const gort::StackStats before = gort::stack_stats();
    Seen first, last;
    std::uint64_t system_bytes_at_bottom = 0;
    run_relocatable([&] {
      first = look_at_self();
      std::string root = "root";  // referenced from every frame below
      last.good = descend(0, kDeep, nullptr, root);
      const Seen s = look_at_self();
      last.kind_copying = s.kind_copying;
      last.stacksize_exact = s.stacksize_exact;
      last.power_of_two = s.power_of_two;
      last.size = s.size;
      system_bytes_at_bottom = gort::stack_stats().system.bytes;
    });
    const gort::StackStats after = gort::stack_stats();
    CHECK(first.kind_copying);
    CHECK(first.size == 4096);
    CHECK(last.good == kDeep + 1);
    CHECK(last.kind_copying);
    CHECK(last.stacksize_exact);
    CHECK(last.power_of_two);
    CHECK(last.size >= 8u * 1024 * 1024);
    CHECK(system_bytes_at_bottom - before.system.bytes == last.size);
    CHECK(after.copies - before.copies >= 11);
    CHECK(after.copy_bytes > before.copy_bytes);
    CHECK(after.copy_words_adjusted - before.copy_words_adjusted >= 3u * kDeep);
  });
}

TEST_CASE("a second relocatable goroutine grows into cached regions: no new address space") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    // no_system_stacks_held() waits until no goroutine holds a system stack:
    // the relocatable ones of this and earlier cases have exited and given
    // theirs back (their done signal comes before that). A leak would fail
    // the checks after 10 s instead of hanging the suite.
    auto no_system_stacks_held = [] {
      for (int i = 0; i < 10'000 && gort::stack_stats().system.bytes != 0; i++) {
        gort::sleep(std::chrono::milliseconds(1));
      }
    };
    auto grow = [&] {
      run_relocatable([] {
        std::string root = "root";
        (void)descend(0, 3000, nullptr, root);
      });
      no_system_stacks_held();
    };
    no_system_stacks_held();
    grow();  // fills the cache of the M it ran on
    const gort::StackStats first = gort::stack_stats();
    for (int i = 0; i < 8; i++) grow();
    const gort::StackStats later = gort::stack_stats();
    CHECK(first.copying_cached > 0);
    // Each M keeps its own regions, so a run on the other M (two here) may
    // map one more set; after that, the runs reuse what is cached.
    CHECK(later.stacks_sys <= first.stacks_sys + first.copying_cached);
    CHECK(later.copying_cached <= 2 * first.copying_cached);
    CHECK(later.system.bytes == 0);
  });
}

TEST_CASE("moves keep accounting exact in every stack debug mode") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  struct Mode {
    const char* name;
    const char* settings;
  };
  const Mode modes[] = {{"none", "stackfromsystem=0,stackfaultonfree=0,stackpoison=0,stacknocache=0"},
                        {"poison", "stackpoison=1"},
                        {"fromsystem", "stackpoison=0,stackfromsystem=1"},
                        {"efence", "efence=1"},
                        {"nocache", "efence=0,stacknocache=1"}};
  Seen seen[std::size(modes)];
  gort::main([&] {
    for (std::size_t i = 0; i < std::size(modes); i++) {
      gort::set_debug(modes[i].settings);
      Seen& s = seen[i];
      run_relocatable([&] {
        std::string root = "root";
        s.good = descend(0, 3000, nullptr, root);
        const Seen now = look_at_self();
        s.stacksize_exact = now.stacksize_exact;
        s.size = now.size;
      });
    }
    gort::set_debug("stacknocache=0");
  });
  // doctest's INFO keeps thread-local state, which a goroutine moving
  // between Ms must not touch: the checks run here, on the test's thread.
  for (std::size_t i = 0; i < std::size(modes); i++) {
    INFO("mode " << modes[i].name);
    CHECK(seen[i].good == 3001);
    CHECK(seen[i].stacksize_exact);
    CHECK(seen[i].size >= 512u * 1024);
  }
}

TEST_CASE("morestack makes room with one move; on a stable goroutine it does nothing") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    std::uint64_t copies_first = 0, copies_second = 0;
    std::size_t room = 0;
    run_relocatable([&] {
      const std::uint64_t c0 = gort::stack_stats().copies;
      gort::morestack(1 << 20);
      copies_first = gort::stack_stats().copies - c0;
      G* gp = getgp();
      room = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) - gp->stack.lo;
      gort::morestack(1 << 20);
      copies_second = gort::stack_stats().copies - c0;
    });
    CHECK(copies_first == 1);
    CHECK(room >= std::size_t{1} << 20);
    CHECK(copies_second == 1);

    std::uint64_t stable_copies = 1;
    Stack before, after;
    gort::Chan<int> done(1);
    gort::go([&, done]() mutable {
      const std::uint64_t c0 = gort::stack_stats().copies;
      before = getgp()->stack;
      gort::morestack(1 << 20);
      after = getgp()->stack;
      stable_copies = gort::stack_stats().copies - c0;
      done.send(1);
    });
    done.recv();
    CHECK(stable_copies == 0);
    CHECK(before.lo == after.lo);
    CHECK(after.kind == StackKind::stable);
  });
}

namespace {

int compare_depth = 0;
// A comparator that recurses ~100 KiB deep on its first calls, so the stack
// moves while libc's qsort has frames (and pointers to the array) on it.
int deep_compare(const void* a, const void* b) {
  if (compare_depth < 200) {
    compare_depth++;
    volatile char pad[512];
    pad[0] = 1;
    const int r = deep_compare(a, b);
    compare_depth--;
    return r + pad[0] - 1;
  }
  return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

}  // namespace

TEST_CASE("the stack moves under libc: qsort of a stack array with a recursive comparator") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    bool sorted = false;
    std::uint64_t copies = 0;
    run_relocatable([&] {
      const std::uint64_t c0 = gort::stack_stats().copies;
      int v[256];
      for (int i = 0; i < 256; i++) v[i] = 256 - i;
      std::qsort(v, 256, sizeof(int), deep_compare);
      sorted = true;
      for (int i = 0; i < 256; i++) sorted = sorted && v[i] == i + 1;
      copies = gort::stack_stats().copies - c0;
    });
    CHECK(sorted);
    CHECK(copies >= 1);
  });
}

namespace {

// A channel element whose move recurses: a receive moves it out of the
// buffer on the receiver's stack.
struct Deep {
  int v = 0;
  Deep() = default;
  explicit Deep(int x) : v(x) {}
  Deep(Deep&& o) noexcept : v(o.v) {
    std::string root = "root";
    v += descend(0, 300, nullptr, root) - 301;
  }
  Deep& operator=(Deep&& o) noexcept {
    v = o.v;
    std::string root = "root";
    v += descend(0, 300, nullptr, root) - 301;
    return *this;
  }
};

}  // namespace

TEST_CASE("the stack moves in select case bodies, channel element moves and GORT_DEFER") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    gort::Chan<int> a(1), b(1);
    gort::Chan<Deep> elems(1);
    int from_select = 0, from_defer = 0, from_elem = 0, outer = 0;
    a.send(7);
    elems.send(Deep(5));
    run_relocatable([&] {
      int local = 11;  // captured by reference by the defer, across moves
      {
        GORT_DEFER({
          std::string root = "root";
          from_defer = descend(0, 2000, nullptr, root) + local;
        });
        gort::select(gort::recv_case(a,
                                     [&](std::optional<int> v) {
                                       std::string root = "root";
                                       from_select = descend(0, 2000, nullptr, root) + *v;
                                     }),
                     gort::recv_case(b, [](std::optional<int>) {}));
        local = 13;
      }
      const std::optional<Deep> d = elems.recv();
      from_elem = d->v;
      outer = local;
    });
    CHECK(from_select == 2001 + 7);
    CHECK(from_defer == 2001 + 13);
    CHECK(from_elem == 5);
    CHECK(outer == 13);
  });
}

TEST_CASE("a relocatable goroutine that passes stack.copying_max dies with Go's overflow report") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  auto r = gort::test::run_case_in_child([] {
    gort::main([] { run_relocatable([] { (void)descend(0, 1 << 30, nullptr, "root"); }); });
  }, "stack.copying_max=1MiB");
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("stack exceeds 1048576-byte limit") != std::string::npos);
  CHECK(r.err.find("fatal error: stack overflow") != std::string::npos);
  CHECK(r.err.find("descend(int, int") != std::string::npos);
}

namespace {

// The contract's standard break: a stack-local std::map, whose heap nodes
// point back at its header, used after the stack moved.
__attribute__((noinline)) int map_after_growth() {
  std::map<int, int> m;
  for (int i = 0; i < 10; i++) m[i] = i;
  std::string root = "root";
  (void)descend(0, 100, nullptr, root);
  int sum = 0;
  for (const auto& kv : m) sum += kv.second;
  return sum;
}

}  // namespace

TEST_CASE("efence reports a stack-local std::map used after a move as a use of the moved stack") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  auto r = gort::test::run_case_in_child([] {
    gort::main([] { run_relocatable([] { std::printf("%d\n", map_after_growth()); }); });
  }, "efence=1");
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("fatal error: use of moved stack") != std::string::npos);
  CHECK(r.err.find("moved by copystack to [0x") != std::string::npos);
  CHECK(r.err.find("docs/stacks.md \"The contract\"") != std::string::npos);
  CHECK(r.err.find("The stack moved at:") != std::string::npos);
  CHECK(r.err.find("descend(int, int") != std::string::npos);
}

TEST_CASE("the same std::map program is fine on a stable goroutine") {
  gort::main([] {
    int sum = 0;
    gort::Chan<int> done(1);
    gort::go([&, done]() mutable {
      sum = map_after_growth();
      done.send(1);
    });
    done.recv();
    CHECK(sum == 45);
  });
}

TEST_CASE("stack.kind = copying makes goroutines relocatable unless their options say otherwise") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  auto r = gort::test::run_case_in_child([] {
    int failures = 0;
    gort::main(
        [&] {
          failures += !look_at_self().kind_copying;  // goroutine 1 too
          for (int round = 0; round < 3; round++) {  // later rounds reuse freed Gs and kept stacks
            gort::Chan<Seen> seen(2);
            gort::go([seen]() mutable {
              Seen s = look_at_self();
              std::string root = "root";
              s.good = descend(0, 500, nullptr, root);
              seen.send(s);
            });
            gort::GoOptions stable;
            stable.relocatable = false;
            gort::go(stable, [seen]() mutable { seen.send(look_at_self()); });
            const Seen a = *seen.recv(), b = *seen.recv();
            // Either may finish first: the relocatable one grew to >= 128 KiB.
            const Seen& reloc = a.kind_copying ? a : b;
            const Seen& stab = a.kind_copying ? b : a;
            failures += !(reloc.kind_copying && reloc.size == 4096 && reloc.good == 501);
            failures += !(!stab.kind_copying && stab.size == 256 * 1024);
          }
        });
    std::fprintf(stderr, "failures=%d\n", failures);
  }, "stack.kind=copying");
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  CHECK(r.err.find("failures=0\n") != std::string::npos);
}

namespace {

// A destructor that grows the stack while an exception unwinds through its
// frame toward a handler in a caller's frame.
struct GrowsInDtor {
  int* out;
  ~GrowsInDtor() {
    std::string root = "root";
    *out = descend(0, 2000, nullptr, root);
  }
};

__attribute__((noinline)) void throw_through(int* out) {
  GrowsInDtor d{out};
  throw std::runtime_error("unwound");
}

}  // namespace

TEST_CASE("the stack moves in a destructor run by exception unwinding; the caller's handler catches") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    int from_dtor = 0;
    std::string caught;
    std::uint64_t copies = 0;
    run_relocatable([&] {
      const std::uint64_t c0 = gort::stack_stats().copies;
      try {
        throw_through(&from_dtor);
      } catch (const std::runtime_error& e) {
        caught = e.what();
      }
      copies = gort::stack_stats().copies - c0;
    });
    CHECK(from_dtor == 2001);
    CHECK(caught == "unwound");
    CHECK(copies >= 1);
  });
}

TEST_CASE("the stack moves in a GORT_DEFER run by goexit") {
  if (!copying_supported()) return gort::test::skip(kNoCopying);
  gort::main([] {
    int from_defer = 0;
    gort::Chan<int> done(1);
    gort::GoOptions o;
    o.relocatable = true;
    gort::go(o, [&, done]() mutable {
      GORT_DEFER(done.send(1));
      GORT_DEFER({
        std::string root = "root";
        from_defer = descend(0, 2000, nullptr, root);
      });
      gort::goexit();
    });
    done.recv();
    CHECK(from_defer == 2001);
  });
}
