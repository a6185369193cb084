#include "mem/sys.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "base/log.hpp"
#include "base/print.hpp"

namespace gort::rt {

namespace {

constexpr int kMapFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
std::atomic<GuardMode> guard_mode{GuardMode::madv_guard};

void* map_or_null(void* hint, std::size_t n, int prot, int extra) {
  void* p = ::mmap(hint, n, prot, kMapFlags | extra, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// sys_check() reports a failed call that should not fail on a valid range: the
// runtime's bookkeeping is wrong, and carrying on would corrupt memory.
void sys_check(int rc, const char* what, void* v, std::size_t n) {
  if (rc == 0) return;
  int e = errno;
  Printer(2).str("runtime: ").str(what).str("(").hex(reinterpret_cast<std::uintptr_t>(v))
      .str(", ").dec(n).str(") failed: ").str(strerrorname_np(e) ? strerrorname_np(e) : "?")
      .str("\n");
  fatal("memory system call failed");
}

}  // namespace

void* SysReserve(std::size_t n) { return map_or_null(nullptr, n, PROT_NONE, 0); }

bool SysMap(void* v, std::size_t n) {
  return map_or_null(v, n, PROT_READ | PROT_WRITE, MAP_FIXED) != nullptr;
}

void* SysAlloc(std::size_t n) { return map_or_null(nullptr, n, PROT_READ | PROT_WRITE, 0); }

void SysFree(void* v, std::size_t n) { sys_check(::munmap(v, n), "munmap", v, n); }

void SysFault(void* v, std::size_t n) {
  if (map_or_null(v, n, PROT_NONE, MAP_FIXED) == nullptr) sys_check(-1, "SysFault mmap", v, n);
}

void SysUnused(void* v, std::size_t n) { sys_check(::madvise(v, n, MADV_DONTNEED), "madvise(DONTNEED)", v, n); }

void SysNoHugePage(void* v, std::size_t n) {
  // Failure only costs memory (a 2 MiB page where 4 KiB would do), so no fatal.
  (void)::madvise(v, n, MADV_NOHUGEPAGE);
}

bool SysHugePagesAlways() {
  static const bool always = [] {
    char buf[64] = {};
    FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == nullptr) return false;
    std::size_t r = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[r] = 0;
    return std::strstr(buf, "[always]") != nullptr;
  }();
  return always;
}

std::size_t SysResident(const void* v, std::size_t n) {
  std::size_t pages = (n + kPageSize - 1) / kPageSize;
  std::vector<unsigned char> vec(pages);
  if (::mincore(const_cast<void*>(v), n, vec.data()) != 0) return 0;
  std::size_t res = 0;
  for (unsigned char c : vec) res += (c & 1);
  return res * kPageSize;
}

void SysGuardProbe() {
  static std::once_flag once;
  std::call_once(once, [] {
    void* p = SysAlloc(2 * kPageSize);
    bool ok = p != nullptr && ::madvise(p, kPageSize, MADV_GUARD_INSTALL) == 0;
    int e = errno;
    if (p != nullptr) SysFree(p, 2 * kPageSize);
    if (ok) {
      guard_mode.store(GuardMode::madv_guard, std::memory_order_relaxed);
      return;
    }
    guard_mode.store(GuardMode::mprotect, std::memory_order_relaxed);
    log()->warn(
        "MADV_GUARD_INSTALL unavailable ({}): stack guards fall back to mprotect(PROT_NONE), "
        "which splits a memory mapping per stack; vm.max_map_count (default 65530) then caps "
        "a process near 32,000 live stacks",
        std::strerror(e));
  });
}

GuardMode SysGuardMode() { return guard_mode.load(std::memory_order_relaxed); }

const char* SysGuardModeName() {
  return SysGuardMode() == GuardMode::madv_guard ? "madv_guard" : "mprotect";
}

bool SysGuardInstall(void* v, std::size_t n) {
  if (SysGuardMode() == GuardMode::madv_guard) return ::madvise(v, n, MADV_GUARD_INSTALL) == 0;
  return ::mprotect(v, n, PROT_NONE) == 0;
}

bool SysGuardRemove(void* v, std::size_t n) {
  if (SysGuardMode() == GuardMode::madv_guard) return ::madvise(v, n, MADV_GUARD_REMOVE) == 0;
  return ::mprotect(v, n, PROT_READ | PROT_WRITE) == 0;
}

}  // namespace gort::rt
