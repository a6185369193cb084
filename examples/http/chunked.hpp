// ChunkedDecoder: reads and discards a request body sent with
// "Transfer-Encoding: chunked" (RFC 9112 section 7.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/status.hpp"

namespace http {

/*
 * The server never looks at a body, so the decoder keeps no data: it walks the
 * framing one byte at a time (sizes, extensions, CRLFs, trailers) and skips
 * chunk data in bulk. Being a state machine, it can stop at any byte and go on
 * with the next read, so a body never has to fit in the connection's buffer.
 *
 * Framing is strict where leniency lets a front end and this server disagree
 * about where the body ends (request smuggling): every line ends in CRLF (a
 * bare LF is an error), sizes are hex without sign or leading whitespace and
 * below 2^60, only whitespace may come between a size and its ';' or CR, and
 * a size line (with its extensions) is at most kMaxSizeLine bytes.
 */
class ChunkedDecoder {
 public:
  enum class Result : std::uint8_t { more, done, error };

  // max_trailer_bytes bounds the trailer section, as max_header_bytes the head.
  explicit ChunkedDecoder(std::size_t max_trailer_bytes) : max_trailer_(max_trailer_bytes) {}

  // reset() prepares for a new body.
  void reset();
  // consume() eats bytes of in and adds how many to *used: more when all of in
  // was body, done when the body ended (*used then stops right after it), error
  // when the framing is bad (status() says which answer that deserves).
  Result consume(std::string_view in, std::size_t* used);
  // status() is the response an error deserves: 400, or 431 for huge trailers.
  Status status() const { return status_; }

  static constexpr std::size_t kMaxSizeLine = 4096;

 private:
  enum class State : std::uint8_t {
    size_first,     // the first hex digit of a chunk size
    size,           // more hex digits
    size_ows,       // whitespace after the size, up to ';' or CR
    ext,            // a chunk extension (after its ';'), up to CR
    size_lf,        // LF ending the size line
    data,           // chunk data
    data_cr,        // CR after the data
    data_lf,        // LF after the data
    trailer_start,  // a trailer field, or CR ending the body
    trailer_name,   // a trailer field name, up to ':'
    trailer_value,  // its value, up to CR
    trailer_lf,     // LF ending a trailer field
    end_lf,         // the final LF
    done,           // the body is over
  };
  // step() moves the state on by one framing byte; false on a bad byte.
  bool step(char c);

  std::size_t max_trailer_;
  State state_ = State::size_first;
  Status status_ = Status::bad_request;
  std::uint64_t left_ = 0;     // chunk size being read, then data bytes still to skip
  std::size_t line_ = 0;       // bytes of the current size line
  std::size_t trailers_ = 0;   // bytes of trailer section so far
};

}  // namespace http
