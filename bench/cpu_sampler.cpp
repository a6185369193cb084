/* The CPU-wide perf cpu-clock sampler and the reading of its ring buffer
 * (see cpu_sampler.hpp). */
#include "cpu_sampler.hpp"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "sys.hpp"

namespace gort::bench {

CpuSampler::~CpuSampler() {
  if (ring_ != nullptr) munmap(ring_, (data_pages_ + 1) * page_);
  if (fd_ >= 0) close(fd_);
}

void CpuSampler::enable() {
  if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
}

void CpuSampler::disable() {
  if (fd_ >= 0) ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0);
}

std::string CpuSampler::open(int cpu, double seconds) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = kPeriodNs;
  attr.sample_type = PERF_SAMPLE_TID;
  attr.disabled = 1;
  attr.exclude_idle = 1;
  attr.watermark = 1;  // nobody waits on the ring: wake nobody until it is nearly full
  page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  // A sample is 16 bytes (header, pid, tid); room for all of them, and half again (at least 64 KiB).
  const double bytes = seconds * (1e9 / kPeriodNs) * 16 * 1.5;
  data_pages_ = 16;
  while (static_cast<double>(data_pages_ * page_) < bytes) data_pages_ *= 2;
  attr.wakeup_watermark = static_cast<std::uint32_t>(data_pages_ * page_ * 3 / 4);
  fd_ = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd_ < 0) return errno_text("perf_event_open(cpu-clock on CPU " + std::to_string(cpu) + ")");
  ring_ = mmap(nullptr, (data_pages_ + 1) * page_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (ring_ == MAP_FAILED) {
    ring_ = nullptr;
    const std::string err = errno_text("mmap of the perf ring");
    close(fd_);
    fd_ = -1;
    return err;
  }
  return "";
}

CpuSampler::Split CpuSampler::take(const std::vector<pid_t>& pids) {
  Split split;
  if (ring_ == nullptr) return split;
  auto* meta = static_cast<perf_event_mmap_page*>(ring_);
  const char* data = static_cast<const char*>(ring_) + page_;
  const std::uint64_t size = data_pages_ * page_;
  const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  // Records are 8-byte aligned and the ring's size a multiple of 8: no 8-byte field wraps.
  const auto word = [&](std::uint64_t at) {
    std::uint64_t w = 0;
    std::memcpy(&w, data + at % size, sizeof w);
    return w;
  };
  for (std::uint64_t at = meta->data_tail; at < head;) {
    perf_event_header h{};
    std::memcpy(&h, data + at % size, sizeof h);
    if (h.size == 0) break;
    if (h.type == PERF_RECORD_SAMPLE) {
      const auto pid = static_cast<pid_t>(word(at + 8) & 0xffffffffu);  // {u32 pid, u32 tid}
      if (std::find(pids.begin(), pids.end(), pid) != pids.end()) {
        const unsigned mode = h.misc & PERF_RECORD_MISC_CPUMODE_MASK;
        if (mode == PERF_RECORD_MISC_USER) ++split.user;
        if (mode == PERF_RECORD_MISC_KERNEL) ++split.kernel;
      }
    } else if (h.type == PERF_RECORD_LOST) {
      split.lost += word(at + 16);  // {u64 id, u64 lost}
    }
    at += h.size;
  }
  __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
  return split;
}

}  // namespace gort::bench
