// The Sys layer: reserve/map/fault/free, guards, residency.
#include <doctest/doctest.h>

#include <csignal>
#include <cstring>

#include "child.hpp"
#include "mem/sys.hpp"

using namespace gort::rt;

namespace {

// kernel_takes_guard_install() asks the kernel itself, not the runtime's probe,
// whether MADV_GUARD_INSTALL works in this process. Under
// GORT_TEST_NO_GUARD_INSTALL (test/main.cpp) a seccomp filter says no, as
// Linux before 6.13 does.
bool kernel_takes_guard_install() {
  void* p = SysAlloc(kPageSize);
  REQUIRE(p != nullptr);
  const bool ok = ::madvise(p, kPageSize, MADV_GUARD_INSTALL) == 0;
  SysFree(p, kPageSize);
  return ok;
}

}  // namespace

TEST_CASE("guards are MADV_GUARD_INSTALL where the kernel has it, else mprotect, with a warning at start-up") {
  // docs/kernel.md: Linux 6.18 here has it; Debian 12's 6.1 does not. Falling
  // back costs the density limits of docs/design.md (each mprotect guard
  // splits a mapping; vm.max_map_count caps a process near 32,000 stacks), so
  // the runtime warns; a fresh runtime's start-up (a child's) shows whether.
  const bool madv = kernel_takes_guard_install();
  CHECK(SysGuardMode() == (madv ? GuardMode::madv_guard : GuardMode::mprotect));
  auto r = gort::test::run_case_in_child([] {});
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 0);
  const bool warned = r.err.find("MADV_GUARD_INSTALL unavailable (") != std::string::npos &&
                      r.err.find("stack guards fall back to mprotect(PROT_NONE)") != std::string::npos;
  CHECK(warned == !madv);
}

TEST_CASE("madvise with older advice still works where MADV_GUARD_INSTALL is refused") {
  // The filter of GORT_TEST_NO_GUARD_INSTALL must refuse only the advice Linux
  // 6.1 lacks: stacks are released with MADV_DONTNEED in every mode.
  void* p = SysAlloc(kPageSize);
  REQUIRE(p != nullptr);
  static_cast<volatile char*>(p)[0] = 1;
  CHECK(::madvise(p, kPageSize, MADV_DONTNEED) == 0);
  CHECK(static_cast<char*>(p)[0] == 0);
  CHECK(::madvise(p, kPageSize, MADV_NOHUGEPAGE) == 0);
  SysFree(p, kPageSize);
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
