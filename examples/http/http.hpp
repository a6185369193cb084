// gort_http: the example server's HTTP/1.1 protocol. Session parses requests
// and produces responses without doing I/O; serve_conn() runs one Session per
// connection over gort::net.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gort/net.hpp"
#include "http/chunked.hpp"
#include "http/response.hpp"
#include "http/settings.hpp"
#include "http/status.hpp"

namespace http {

/*
 * A Session is the protocol state of one connection. The caller owns the
 * buffers: it hands feed() the bytes received and not yet consumed, and sends
 * what feed() appended to out. Keeping I/O out of the Session lets the tests
 * drive it with any split of the input, and lets serve_conn() batch the
 * answers to pipelined requests into one write.
 *
 * The head (request line and header fields) is parsed a line at a time, as
 * each line completes, into a few flags and numbers; no view into the buffer
 * outlives its line. So a consumed line can leave the buffer at once, the
 * buffer only ever holds one partial line, and a request is answered or
 * refused without copying anything. The answer comes after the whole body has
 * been read (and thrown away), so a malformed chunked body can still get its
 * 400, and answers leave in the order the requests came.
 *
 * What is accepted, and what is not:
 *   - Lines end in CRLF or a bare LF (as Go and nginx); a CR anywhere else is
 *     an error. Empty lines before a request line are skipped.
 *   - Exactly one SP between method, target and version. The version is
 *     HTTP/1.x (1.2 and up are answered as 1.1), another major version is 505.
 *   - Field names are tokens followed at once by ':'; a line starting with
 *     whitespace (obs-fold), a control byte in a value, a line without ':' are
 *     400. The head's bytes, empty lines before it included, are bounded by
 *     max_header_bytes: beyond it, 431.
 *   - HTTP/1.1 requires exactly one Host. Content-Length is digits only;
 *     repeated, its values must agree. Transfer-Encoding must be exactly one
 *     "chunked" (else 501), never with Content-Length and never in HTTP/1.0
 *     (400: RFC 9112 section 6.1 calls that framing faulty).
 *   - GET and HEAD serve "/" (absolute-form "http://host/" too; a query is
 *     ignored) and 404 elsewhere; other registered methods get 405 with Allow,
 *     unknown ones 501.
 * After a 400, 431, 505 or the 501 for Transfer-Encoding the request's framing
 * cannot be trusted, so the answer says "Connection: close" and the Session
 * takes no more input (as Go).
 */
class Session {
 public:
  // max_header_bytes bounds each request's line and header fields (and a chunked body's trailers).
  explicit Session(std::size_t max_header_bytes);

  // feed() parses the requests at the front of in, appends their responses to
  // out and returns how many bytes of in it consumed; the rest (a partial
  // line) must start the in of the next call, followed by more input. It stops early
  // once out holds kOutFlush bytes (the caller then sends them and feeds the
  // rest) or when the connection must close.
  std::size_t feed(std::string_view in, std::string& out);
  // closing() is true once the last response was appended: send it and close.
  bool closing() const { return closing_; }
  // answered() counts the requests answered so far, so the caller sees where one ends.
  std::uint64_t answered() const { return answered_; }
  // reading_head() is true while the next input belongs to a request's head.
  bool reading_head() const { return phase_ == Phase::request_line || phase_ == Phase::headers; }
  // head_started() is true once some byte of the head being read has come.
  bool head_started() const { return reading_head() && (req_.head_bytes > 0 || scanned_ > 0); }
  // timeout() ends a head that took too long: a 408 if any of it came (else
  // nothing: the client may have opened the connection ahead of need), then close.
  void timeout(std::string& out);

  // Output is sent once this much has accumulated, so that a pipelining client
  // cannot make the server buffer without bound.
  static constexpr std::size_t kOutFlush = 64 * 1024;

 private:
  enum class Phase : std::uint8_t { request_line, headers, body_length, body_chunked };
  enum class Method : std::uint8_t { unknown, get, head, other };
  enum class Target : std::uint8_t { root, other, invalid };

  // Request is what the head said, as far as the server cares.
  struct Request {
    std::size_t head_bytes = 0;
    std::uint64_t content_length = 0;
    Method method = Method::unknown;
    Target target = Target::invalid;
    std::uint8_t minor = 1;  // HTTP/1.minor
    std::uint8_t hosts = 0;
    std::uint8_t transfer_encodings = 0;
    bool has_content_length = false;
    bool chunked = false;  // the only Transfer-Encoding is "chunked"
    bool bad_host = false;
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool expect_continue = false;
  };

  // method_of() classifies a method token (methods are case-sensitive).
  static Method method_of(std::string_view m);
  // request_line() and header_line() handle one complete line (without its end).
  void request_line(std::string_view line, std::string& out);
  void header_line(std::string_view line, std::string& out);
  // header() records one field the server cares about; false if its value is bad.
  bool header(std::string_view name, std::string_view value);
  // end_of_head() checks the head as a whole and starts the body, or answers.
  void end_of_head(std::string& out);
  // answer() appends the response to the request just read and starts the next.
  void answer(std::string& out);
  // fail() appends an error response and closes the connection.
  void fail(Status status, std::string& out);

  std::size_t max_header_bytes_;
  std::size_t scanned_ = 0;  // bytes of the partial line known to hold no LF
  std::uint64_t body_left_ = 0;
  std::uint64_t answered_ = 0;
  Phase phase_ = Phase::request_line;
  Status status_ = Status::ok;  // the answer, once the head is read
  bool closing_ = false;
  Request req_{};
  ChunkedDecoder chunked_;
  Responses responses_;
};

// serve_conn() serves HTTP/1.1 on conn until the peer closes, errs, stays idle
// for settings.idle_timeout, takes longer than settings.header_timeout to send
// a head (408), does not take an answer within settings.write_timeout, or a
// response ends the connection. A zero timeout is no limit.
void serve_conn(gort::net::Conn conn, const Settings& settings);

// input_buffer_bytes() is what the input buffers of the connections being
// served hold, in bytes: what idle connections cost beyond their sockets.
std::size_t input_buffer_bytes();

}  // namespace http
