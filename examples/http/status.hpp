// The response status codes the example HTTP server sends.
#pragma once

#include <cstdint>

namespace http {

enum class Status : std::uint16_t {
  continue_ = 100,              // interim answer to "Expect: 100-continue"
  ok = 200,                     // GET / or HEAD /
  bad_request = 400,            // malformed request line, headers or body framing
  not_found = 404,              // any other path
  method_not_allowed = 405,     // a known method other than GET and HEAD
  request_timeout = 408,        // the head took longer than http.header_timeout
  header_too_large = 431,       // request line + headers over http.max_header_bytes
  not_implemented = 501,        // an unknown method or Transfer-Encoding
  version_not_supported = 505,  // HTTP/2.0 and the like on an HTTP/1 connection
};

}  // namespace http
