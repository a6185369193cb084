#include "http/response.hpp"

#include <cstring>
#include <string>

namespace http {

namespace {

// Canned is one status's response without Date and Connection: status line
// and fixed headers (up to the Date header), then the body.
struct Canned {
  std::string head;
  std::string body;
};

Canned make(std::string_view status_line, std::string_view extra_headers, std::string_view content_type,
            std::string_view body) {
  Canned c;
  c.head.append("HTTP/1.1 ").append(status_line).append("\r\n").append(extra_headers);
  c.head.append("Content-Type: ").append(content_type).append("\r\n");
  c.head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  c.body = body;
  return c;
}

// canned() is the response for s. Error bodies are Go's (http.Error and the
// server's own "400 Bad Request").
const Canned& canned(Status s) {
  static const Canned ok = make("200 OK", "", "text/plain", "Hello, World!");
  static const Canned bad = make("400 Bad Request", "", "text/plain; charset=utf-8", "400 Bad Request");
  static const Canned not_found = make("404 Not Found", "", "text/plain; charset=utf-8", "404 page not found\n");
  static const Canned not_allowed =
      make("405 Method Not Allowed", "Allow: GET, HEAD\r\n", "text/plain; charset=utf-8", "Method Not Allowed\n");
  static const Canned timeout =
      make("408 Request Timeout", "", "text/plain; charset=utf-8", "408 Request Timeout");
  static const Canned too_large = make("431 Request Header Fields Too Large", "", "text/plain; charset=utf-8",
                                       "431 Request Header Fields Too Large");
  static const Canned not_impl = make("501 Not Implemented", "", "text/plain; charset=utf-8", "Not Implemented\n");
  static const Canned bad_version = make("505 HTTP Version Not Supported", "", "text/plain; charset=utf-8",
                                         "505 HTTP Version Not Supported");
  switch (s) {
    case Status::ok: return ok;
    case Status::not_found: return not_found;
    case Status::method_not_allowed: return not_allowed;
    case Status::request_timeout: return timeout;
    case Status::header_too_large: return too_large;
    case Status::not_implemented: return not_impl;
    case Status::version_not_supported: return bad_version;
    case Status::continue_:
    case Status::bad_request: break;
  }
  return bad;
}

void two_digits(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

void format_date(std::time_t t, std::span<char, kDateSize> out) {
  static constexpr char kDays[] = "SunMonTueWedThuFriSat";
  static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  std::tm tm{};
  gmtime_r(&t, &tm);
  char* p = out.data();
  std::memcpy(p, kDays + 3 * tm.tm_wday, 3);
  std::memcpy(p + 3, ", ", 2);
  two_digits(p + 5, tm.tm_mday);
  p[7] = ' ';
  std::memcpy(p + 8, kMonths + 3 * tm.tm_mon, 3);
  p[11] = ' ';
  const int year = tm.tm_year + 1900;
  two_digits(p + 12, year / 100);
  two_digits(p + 14, year % 100);
  p[16] = ' ';
  two_digits(p + 17, tm.tm_hour);
  p[19] = ':';
  two_digits(p + 20, tm.tm_min);
  p[22] = ':';
  two_digits(p + 23, tm.tm_sec);
  std::memcpy(p + 25, " GMT", 4);
}

Responses::Responses() {
  char* p = hello_.data();
  std::memcpy(p, kHelloPrefix.data(), kHelloPrefix.size());
  std::memcpy(p + kHelloPrefix.size() + kDateSize, "\r\n\r\n", 4);
  std::memcpy(p + kHelloHead, kHelloBody.data(), kHelloBody.size());
  refresh();
}

void Responses::refresh() {
  // The coarse clock is read from the vDSO without a syscall; its tick (1-4 ms)
  // is far finer than the header's second.
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec == second_) return;
  second_ = ts.tv_sec;
  format_date(ts.tv_sec, std::span<char, kDateSize>(hello_.data() + kHelloPrefix.size(), kDateSize));
}

void Responses::append(std::string& out, Status status, bool head_only, ConnHeader conn) const {
  if (status == Status::ok && conn == ConnHeader::none) {
    out.append(hello_.data(), head_only ? kHelloHead : kHelloSize);
    return;
  }
  const Canned& c = canned(status);
  out.append(c.head);
  out.append("Date: ").append(hello_.data() + kHelloPrefix.size(), kDateSize).append("\r\n");
  if (conn == ConnHeader::close) out.append("Connection: close\r\n");
  if (conn == ConnHeader::keep_alive) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
  if (!head_only) out.append(c.body);
}

void Responses::append_continue(std::string& out) { out.append("HTTP/1.1 100 Continue\r\n\r\n"); }

}  // namespace http
