// Responses: the bytes of every answer the example server gives, built once,
// with a Date header refreshed once per second.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <span>
#include <string>
#include <string_view>

#include "http/status.hpp"

namespace http {

// kDateSize is the length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t kDateSize = 29;

// format_date() writes t as an IMF-fixdate (RFC 9110 section 5.6.7) into out.
void format_date(std::time_t t, std::span<char, kDateSize> out);

// What a response says about the connection: nothing (HTTP/1.1 keeps it),
// "Connection: close", or "Connection: keep-alive" (needed by HTTP/1.0).
enum class ConnHeader : std::uint8_t { none, close, keep_alive };

/*
 * Go's net/http and nginx both send Date, so this server does too, to be
 * compared fairly. Formatting a date costs more than the rest of a response,
 * so each Responses (one per connection, no sharing, no locks) keeps the
 * formatted second and the whole "Hello, World!" response with it patched in:
 * the common answer, to a keep-alive GET /, is then one copy. Everything else
 * is assembled from pieces built once per process.
 */
class Responses {
 public:
  Responses();
  // refresh() updates the Date header if the wall clock moved to a new second.
  void refresh();
  // append() appends the response for status to out; head_only leaves out the
  // body (HEAD), and conn chooses the Connection header.
  void append(std::string& out, Status status, bool head_only, ConnHeader conn) const;
  // append_continue() appends the interim "100 Continue" response.
  static void append_continue(std::string& out);

 private:
  // hello_ is the 200 response to GET / with Date; its first kHelloHead bytes answer HEAD /.
  static constexpr std::string_view kHelloPrefix =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: ";
  static constexpr std::string_view kHelloBody = "Hello, World!";
  static constexpr std::size_t kHelloHead = kHelloPrefix.size() + kDateSize + 4;
  static constexpr std::size_t kHelloSize = kHelloHead + kHelloBody.size();

  std::int64_t second_ = -1;
  std::array<char, kHelloSize> hello_{};
};

}  // namespace http
