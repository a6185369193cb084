/* Small POSIX helpers that the gort-bench subcommands share: the monotonic
 * clock, errno text, reading a file whole, finding and quoting programs, and
 * pinning to a CPU. Nothing here keeps state. */
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace gort::bench {

// now_ns() is CLOCK_MONOTONIC in nanoseconds (vDSO: no system call). No preconditions.
std::uint64_t now_ns();
// now_s() is CLOCK_MONOTONIC in seconds. No preconditions.
double now_s();
// sleep_s() sleeps for s seconds. Pre: s >= 0 (a negative s returns at once).
void sleep_s(double s);

// errno_text() is "what: strerror(errno)". Pre: errno still holds the failure being reported.
std::string errno_text(const std::string& what);
// read_text() is the whole content of the file at path, "" when it cannot be read. No preconditions.
std::string read_text(const std::string& path);
// last_line() is the last non-empty line of text (for quoting a log in an error), "" for empty text. No preconditions.
std::string last_line(const std::string& text);

// executable() is true when path names a file (not a directory) we may execute. No preconditions.
bool executable(const std::string& path);
// find_program() is the path of name from $PATH or the sbin directories ("" when absent); a name with a '/' is
// taken as a path and checked. No preconditions.
std::string find_program(const std::string& name);
// shell_quoted() is s single-quoted for /bin/sh, any quote in it escaped. No preconditions.
std::string shell_quoted(const std::string& s);
// first_output_line() is the first line (at most 255 bytes) that the shell command cmd prints on stdout or stderr,
// "" on failure. Pre: cmd is a complete shell command, its arguments quoted (shell_quoted).
std::string first_output_line(const std::string& cmd);

// loopback() is the IPv4 address 127.0.0.1:port (port 0: any free port, for bind). No preconditions.
sockaddr_in loopback(std::uint16_t port);

// pin_to_cpu() pins the calling thread (and the threads and children it creates later) to cpu: 0, or the errno of
// the failure. Async-signal-safe, so a forked child may call it before exec. Pre: 0 <= cpu < CPU_SETSIZE.
int pin_to_cpu(int cpu);

}  // namespace gort::bench
