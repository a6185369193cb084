// Context switch: ping-pong between hand-made contexts, register and FP-mode
// preservation, argument passing.
#include <doctest/doctest.h>

#include <cfenv>
#include <cstdint>

#include "arch/context.hpp"
#include "stack/stack.hpp"

using namespace gort::rt;

namespace {

struct PingPong {
  Context main, co;
  int count = 0;
  int rounds = 0;
};

void pong(void* p) {
  auto* pp = static_cast<PingPong*>(p);
  for (int i = 0; i < pp->rounds; i++) {
    pp->count++;
    auto* got = static_cast<PingPong*>(switch_context(pp->co, pp->main, pp));
    CHECK(got == pp);
  }
  switch_context_final(pp->co, pp->main);
}

}  // namespace

TEST_CASE("ping-pong between two hand-made contexts") {
  StackOwner owner;
  Stack s = stackalloc(&owner);
  PingPong pp;
  pp.rounds = 1000;
  init_thread_context(pp.main);
  make_context(pp.co, s.lo, s.hi, pong, &pp);
  for (int i = 0; i < pp.rounds; i++) {
    void* r = switch_context(pp.main, pp.co, &pp);
    CHECK(r == &pp);
    CHECK(pp.count == i + 1);
  }
  switch_context(pp.main, pp.co, &pp);  // lets pong finish
  destroy_context(pp.co);
  stackfree(&owner, s);
  CHECK(owner.stacksize == 0);
}

namespace {

struct FpState {
  Context main, co;
  int inner_round = -1;
};

void fp_changer(void* p) {
  auto* st = static_cast<FpState*>(p);
  // Round toward zero in this context only.
  std::fesetround(FE_TOWARDZERO);
  st->inner_round = std::fegetround();
  switch_context(st->co, st->main);
  st->inner_round = std::fegetround();
  switch_context_final(st->co, st->main);
}

}  // namespace

TEST_CASE("each context keeps its own MXCSR / x87 rounding mode") {
  StackOwner owner;
  Stack s = stackalloc(&owner);
  FpState st;
  init_thread_context(st.main);
  REQUIRE(std::fegetround() == FE_TONEAREST);
  make_context(st.co, s.lo, s.hi, fp_changer, &st);
  switch_context(st.main, st.co);
  CHECK(st.inner_round == FE_TOWARDZERO);
  CHECK(std::fegetround() == FE_TONEAREST);
  switch_context(st.main, st.co);
  CHECK(st.inner_round == FE_TOWARDZERO);
  CHECK(std::fegetround() == FE_TONEAREST);
  destroy_context(st.co);
  stackfree(&owner, s);
}

namespace {

struct AlignState {
  Context main, co;
  std::uintptr_t sp_mod16 = 1;
};

__attribute__((noinline)) void record_alignment(AlignState* st) {
  alignas(16) volatile char probe[16];
  st->sp_mod16 = reinterpret_cast<std::uintptr_t>(&probe[0]) % 16;
}

void align_entry(void* p) {
  auto* st = static_cast<AlignState*>(p);
  record_alignment(st);
  switch_context_final(st->co, st->main);
}

}  // namespace

TEST_CASE("a fresh context starts with the ABI's stack alignment") {
  StackOwner owner;
  Stack s = stackalloc(&owner);
  AlignState st;
  init_thread_context(st.main);
  make_context(st.co, s.lo, s.hi, align_entry, &st);
  switch_context(st.main, st.co);
  CHECK(st.sp_mod16 == 0);
  destroy_context(st.co);
  stackfree(&owner, s);
}

TEST_CASE("a stack can host a new context after the previous one ended") {
  // The second run catches state left behind by the first (under ASan, its
  // poisoned redzones).
  StackOwner owner;
  for (int run = 0; run < 3; run++) {
    Stack s = stackalloc(&owner);
    PingPong pp;
    pp.rounds = 10;
    init_thread_context(pp.main);
    make_context(pp.co, s.lo, s.hi, pong, &pp);
    for (int i = 0; i <= pp.rounds; i++) switch_context(pp.main, pp.co, &pp);
    CHECK(pp.count == pp.rounds);
    destroy_context(pp.co);
    stackfree(&owner, s);
  }
}
