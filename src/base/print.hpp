// Async-signal-safe output for the runtime's fatal paths.
//
// Fault handlers and fatal errors must not call malloc, stdio or spdlog: the
// fault may have happened inside any of them with a lock held. Printer formats
// into a fixed buffer on its own stack and writes with write(2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace gort::rt {

// Printer accumulates text in a fixed buffer and flushes it to fd with write(2).
class Printer {
 public:
  explicit Printer(int fd = 2) : fd_(fd) {}
  ~Printer() { flush(); }
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  // str() appends a string.
  Printer& str(std::string_view s);
  // dec() appends an unsigned decimal.
  Printer& dec(std::uint64_t v);
  // sdec() appends a signed decimal.
  Printer& sdec(std::int64_t v);
  // hex() appends 0x followed by lower-case hex digits.
  Printer& hex(std::uintptr_t v);
  // flush() writes what is buffered, retrying on EINTR and short writes.
  void flush();

 private:
  int fd_;
  std::size_t len_ = 0;
  char buf_[512];
};

// fatal() prints "fatal error: <msg>" to stderr and exits with status 2, as Go's
// runtime.throw does. Async-signal-safe.
[[noreturn]] void fatal(std::string_view msg);

// exit_fatal() exits with status 2 without running destructors or atexit handlers:
// after a fatal error the process state cannot be trusted.
[[noreturn]] void exit_fatal();

}  // namespace gort::rt
