// The Sys layer: every way the runtime gets address space from the kernel, named
// as in Go's runtime/mem.go. It knows nothing of goroutines or stacks.
//
// States of a range: reserved (PROT_NONE, no memory), mapped (read/write,
// committed page by page on first touch), faulted (PROT_NONE for ever, never
// handed out again). MAP_NORESERVE throughout: stacks are mostly untouched
// address space, and charging it all to overcommit would fail long before
// memory runs out.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

// Debian 12's headers predate these (Linux 6.13); docs/kernel.md has them working here.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

namespace gort::rt {

constexpr std::size_t kPageSize = 4096;

// How guard pages are made; chosen once by SysGuardProbe().
enum class GuardMode : std::uint8_t {
  madv_guard,  // MADV_GUARD_INSTALL: no VMA split, a million guarded stacks fit
  mprotect,    // PROT_NONE: each guard splits a VMA, ~32k stacks under vm.max_map_count
};

// SysReserve() reserves n bytes of address space, no access. Returns nullptr
// with errno set on failure.
void* SysReserve(std::size_t n);
// SysMap() makes [v, v+n) of a reservation readable and writable. False with errno set on failure.
bool SysMap(void* v, std::size_t n);
// SysAlloc() returns n fresh read/write bytes, or nullptr with errno set.
void* SysAlloc(std::size_t n);
// SysFree() returns [v, v+n) to the kernel.
void SysFree(void* v, std::size_t n);
// SysFault() turns [v, v+n) into no-access address space that stays reserved, so
// any later touch faults and the range is never handed out again.
void SysFault(void* v, std::size_t n);
// SysUnused() releases the pages of [v, v+n); they read back as zeros.
void SysUnused(void* v, std::size_t n);
// SysNoHugePage() keeps transparent huge pages out of [v, v+n).
void SysNoHugePage(void* v, std::size_t n);
// SysHugePagesAlways() is true when THP is in "always" mode, the only mode in which
// memory we did not madvise can get huge pages.
bool SysHugePagesAlways();
// SysResident() counts the resident bytes of [v, v+n) with mincore.
std::size_t SysResident(const void* v, std::size_t n);

// SysGuardProbe() picks the guard mechanism once (logs a warning on fallback).
void SysGuardProbe();
// SysGuardMode() is the mechanism picked by SysGuardProbe().
GuardMode SysGuardMode();
// SysGuardModeName() is "madv_guard" or "mprotect".
const char* SysGuardModeName();
// SysGuardInstall() makes [v, v+n) a guard: any touch faults. False with errno set on failure.
bool SysGuardInstall(void* v, std::size_t n);
// SysGuardRemove() makes a guard ordinary read/write memory again.
bool SysGuardRemove(void* v, std::size_t n);

}  // namespace gort::rt
