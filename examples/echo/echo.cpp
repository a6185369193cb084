#include "echo/echo.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <memory>

namespace echo {

void serve_conn(gort::net::Conn conn) {
  // Each chunk is written back at once; Nagle's algorithm would hold a small
  // one until the previous one is acknowledged.
  const int one = 1;
  setsockopt(conn.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // On the heap, not the stack: the stack cache keeps only the top 16 KiB of
  // an idle stack committed, so a large frame would fault pages in again on
  // every reuse of a stack.
  constexpr std::size_t kBuf = 16 * 1024;
  const auto buf = std::make_unique_for_overwrite<char[]>(kBuf);
  for (;;) {
    const gort::IoResult r = conn.read(std::span<char>(buf.get(), kBuf));
    if (!r) return;
    if (!conn.write_all(std::string_view(buf.get(), r.n))) return;
  }
}

}  // namespace echo
