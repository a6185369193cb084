// The Sys layer: reserve/map/fault/free, guards, residency.
#include <doctest/doctest.h>

#include <csignal>
#include <cstring>

#include "child.hpp"
#include "mem/sys.hpp"

using namespace gort::rt;

TEST_CASE("this kernel has MADV_GUARD_INSTALL") {
  // docs/kernel.md: Linux 6.18 here. If this fails the machine changed: guards fall
  // back to mprotect and the density limits of docs/design.md no longer hold.
  CHECK(SysGuardMode() == GuardMode::madv_guard);
}

TEST_CASE("reserve, map, touch, release, free") {
  const std::size_t n = 64 * kPageSize;
  void* r = SysReserve(n);
  REQUIRE(r != nullptr);
  CHECK(SysResident(r, n) == 0);
  REQUIRE(SysMap(r, n / 2));
  std::memset(r, 1, n / 2);
  CHECK(SysResident(r, n) == n / 2);
  SysUnused(r, n / 2);
  CHECK(SysResident(r, n) == 0);
  CHECK(static_cast<unsigned char*>(r)[0] == 0);  // released pages read back as zeros
  SysFree(r, n);
}

TEST_CASE("a reserved but unmapped range faults") {
  auto r = gort::test::run_in_child([] {
    void* v = SysReserve(kPageSize);
    static_cast<volatile char*>(v)[0] = 1;
  });
  CHECK((r.signal == SIGSEGV || r.status != 0));
}

TEST_CASE("a guard faults on touch and is ordinary memory once removed") {
  void* p = SysAlloc(2 * kPageSize);
  REQUIRE(p != nullptr);
  REQUIRE(SysGuardInstall(p, kPageSize));
  auto r = gort::test::run_in_child([&] { static_cast<volatile char*>(p)[10] = 1; });
  CHECK((r.signal == SIGSEGV || r.status != 0));
  REQUIRE(SysGuardRemove(p, kPageSize));
  static_cast<volatile char*>(p)[10] = 1;
  CHECK(static_cast<char*>(p)[10] == 1);
  // The page above the guard was usable all along.
  static_cast<volatile char*>(p)[kPageSize] = 2;
  SysFree(p, 2 * kPageSize);
}

TEST_CASE("a guard survives MADV_DONTNEED of its neighbourhood") {
  void* p = SysAlloc(4 * kPageSize);
  REQUIRE(p != nullptr);
  REQUIRE(SysGuardInstall(p, kPageSize));
  SysUnused(p, 4 * kPageSize);
  auto r = gort::test::run_in_child([&] { static_cast<volatile char*>(p)[0] = 1; });
  CHECK((r.signal == SIGSEGV || r.status != 0));
  SysGuardRemove(p, kPageSize);
  SysFree(p, 4 * kPageSize);
}

TEST_CASE("SysFault leaves no-access address space that is never handed out again") {
  const std::size_t n = 4 * kPageSize;
  void* p = SysAlloc(n);
  REQUIRE(p != nullptr);
  std::memset(p, 1, n);
  SysFault(p, n);
  CHECK(SysResident(p, n) == 0);
  // The range stays reserved: new mappings never land on it.
  for (int i = 0; i < 64; i++) {
    void* q = SysAlloc(n);
    REQUIRE(q != nullptr);
    CHECK((static_cast<char*>(q) + n <= p || static_cast<char*>(q) >= static_cast<char*>(p) + n));
    SysFree(q, n);
  }
  auto r = gort::test::run_in_child([&] { (void)static_cast<volatile char*>(p)[0]; });
  CHECK((r.signal == SIGSEGV || r.status != 0));
}
