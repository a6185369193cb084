#include "base/print.hpp"

#include "base/dcheck.hpp"

#include <cerrno>
#include <unistd.h>

namespace gort::rt {

Printer& Printer::str(std::string_view s) {
  for (char c : s) {
    if (len_ == sizeof buf_) flush();
    buf_[len_++] = c;
  }
  return *this;
}

Printer& Printer::dec(std::uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) str(std::string_view(&tmp[--n], 1));
  return *this;
}

Printer& Printer::sdec(std::int64_t v) {
  if (v < 0) {
    str("-");
    return dec(static_cast<std::uint64_t>(-(v + 1)) + 1);
  }
  return dec(static_cast<std::uint64_t>(v));
}

Printer& Printer::hex(std::uintptr_t v) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  str("0x");
  while (n > 0) str(std::string_view(&tmp[--n], 1));
  return *this;
}

void Printer::flush() {
  std::size_t off = 0;
  while (off < len_) {
    ssize_t w = ::write(fd_, buf_ + off, len_ - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // nowhere left to report to
    off += static_cast<std::size_t>(w);
  }
  len_ = 0;
}

void fatal(std::string_view msg) {
  Printer(2).str("fatal error: ").str(msg).str("\n");
  exit_fatal();
}

void exit_fatal() { ::_exit(2); }

void dcheck_failed(const char* cond, std::string_view msg, const char* file, int line) {
  Printer(2).str("runtime: DCHECK(").str(cond).str(") failed at ").str(file).str(":")
      .dec(static_cast<std::uint64_t>(line)).str("\n");
  fatal(msg);
}

}  // namespace gort::rt
