#include "http/http.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "http/chars.hpp"

namespace http {

namespace {

// path_of() is the path of an origin-form ("/p?q") or absolute-form
// ("http://host/p?q") target; empty for any other form.
std::string_view path_of(std::string_view t) {
  if (t.starts_with('/')) return t.substr(0, t.find('?'));
  std::size_t skip = 0;
  if (t.size() > 7 && chars::iequals(t.substr(0, 7), "http://")) skip = 7;
  if (t.size() > 8 && chars::iequals(t.substr(0, 8), "https://")) skip = 8;
  if (skip == 0) return {};
  t.remove_prefix(skip);
  const std::size_t end = t.find_first_of("/?");
  if (end == 0) return {};  // no authority
  if (end == std::string_view::npos || t[end] == '?') return "/";
  return t.substr(end, t.find('?', end) - end);
}

// parse_length() parses a Content-Length value: 1*DIGIT, at most 2^63-1.
bool parse_length(std::string_view v, std::uint64_t* out) {
  if (v.empty()) return false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (kMax - d) / 10) return false;
    n = n * 10 + d;
  }
  *out = n;
  return true;
}

// has_token() is true when the comma-separated list holds token (lowercase).
bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    if (chars::iequals(chars::trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

Session::Method Session::method_of(std::string_view m) {
  if (m == "GET") return Method::get;
  if (m == "HEAD") return Method::head;
  for (std::string_view known : {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    if (m == known) return Method::other;
  }
  return Method::unknown;
}

Session::Session(std::size_t max_header_bytes) : max_header_bytes_(max_header_bytes), chunked_(max_header_bytes) {}

std::size_t Session::feed(std::string_view in, std::string& out) {
  responses_.refresh();
  std::size_t pos = 0;
  while (!closing_ && out.size() < kOutFlush) {
    const std::string_view rest = in.substr(pos);
    switch (phase_) {
      case Phase::request_line:
      case Phase::headers: {
        const void* lf = std::memchr(rest.data() + scanned_, '\n', rest.size() - scanned_);
        if (lf == nullptr) {
          // The line is not over, so the head will be longer than this still.
          if (req_.head_bytes + rest.size() >= max_header_bytes_) {
            fail(Status::header_too_large, out);
            break;
          }
          scanned_ = rest.size();
          return pos;
        }
        const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(lf) - rest.data()) + 1;
        pos += len;
        scanned_ = 0;
        req_.head_bytes += len;
        if (req_.head_bytes > max_header_bytes_) {
          fail(Status::header_too_large, out);
          break;
        }
        std::string_view line = rest.substr(0, len - 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (phase_ == Phase::request_line) {
          request_line(line, out);
        } else {
          header_line(line, out);
        }
        break;
      }
      case Phase::body_length: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, rest.size()));
        pos += n;
        body_left_ -= n;
        if (body_left_ > 0) return pos;
        answer(out);
        break;
      }
      case Phase::body_chunked: {
        const ChunkedDecoder::Result r = chunked_.consume(rest, &pos);
        if (r == ChunkedDecoder::Result::more) return pos;
        if (r == ChunkedDecoder::Result::error) {
          fail(chunked_.status(), out);
        } else {
          answer(out);
        }
        break;
      }
    }
  }
  return pos;
}

void Session::request_line(std::string_view line, std::string& out) {
  if (line.empty()) return;  // RFC 9112 section 2.2: skip empty lines before a request
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(Status::bad_request, out);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || !chars::all_of(method, chars::is_token)) return fail(Status::bad_request, out);
  req_.method = method_of(method);
  if (target.empty() || !chars::all_of(target, chars::is_target)) return fail(Status::bad_request, out);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return fail(Status::bad_request, out);
  }
  if (version[5] != '1') return fail(Status::version_not_supported, out);
  req_.minor = version[7] == '0' ? 0 : 1;
  const std::string_view path = path_of(target);
  req_.target = path.empty() ? Target::invalid : path == "/" ? Target::root : Target::other;
  phase_ = Phase::headers;
}

void Session::header_line(std::string_view line, std::string& out) {
  if (line.empty()) return end_of_head(out);
  // field-name ":" OWS field-value OWS. A name is a token: a byte other than
  // ':' after it (whitespace before the colon, a NUL, a line without colon,
  // a leading SP or HTAB, i.e. obs-fold) makes the line malformed.
  std::size_t colon = 0;
  while (colon < line.size() && chars::is_token(line[colon])) colon++;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return fail(Status::bad_request, out);
  const std::string_view value = chars::trim_ows(line.substr(colon + 1));
  if (!chars::all_of(value, chars::is_field_value) || !header(line.substr(0, colon), value)) {
    return fail(Status::bad_request, out);
  }
}

bool Session::header(std::string_view name, std::string_view value) {
  switch (name.size()) {
    case 4:
      if (chars::iequals(name, "host")) {
        req_.hosts++;
        req_.bad_host |= !chars::all_of(value, chars::is_host);
      }
      return true;
    case 6:
      if (chars::iequals(name, "expect")) req_.expect_continue = chars::iequals(value, "100-continue");
      return true;
    case 10:
      if (chars::iequals(name, "connection")) {
        req_.conn_close |= has_token(value, "close");
        req_.conn_keep_alive |= has_token(value, "keep-alive");
      }
      return true;
    case 14:
      if (chars::iequals(name, "content-length")) {
        std::uint64_t n = 0;
        if (!parse_length(value, &n) || (req_.has_content_length && n != req_.content_length)) return false;
        req_.has_content_length = true;
        req_.content_length = n;
      }
      return true;
    case 17:
      if (chars::iequals(name, "transfer-encoding")) {
        req_.transfer_encodings++;
        req_.chunked = chars::iequals(value, "chunked");
      }
      return true;
    default:
      return true;
  }
}

void Session::end_of_head(std::string& out) {
  const Request& r = req_;
  if (r.hosts > 1 || r.bad_host || (r.minor >= 1 && r.hosts == 0)) return fail(Status::bad_request, out);
  if (r.transfer_encodings > 0) {
    if (r.has_content_length || r.minor == 0) return fail(Status::bad_request, out);
    if (r.transfer_encodings > 1 || !r.chunked) return fail(Status::not_implemented, out);
  }
  switch (r.method) {
    case Method::unknown:
      status_ = Status::not_implemented;
      break;
    case Method::other:
      status_ = Status::method_not_allowed;
      break;
    case Method::get:
    case Method::head:
      if (r.target == Target::invalid) return fail(Status::bad_request, out);
      status_ = r.target == Target::root ? Status::ok : Status::not_found;
      break;
  }
  const bool body = r.chunked || r.content_length > 0;
  if (body && r.expect_continue && r.minor >= 1) Responses::append_continue(out);
  if (r.chunked) {
    chunked_.reset();
    phase_ = Phase::body_chunked;
  } else if (r.content_length > 0) {
    body_left_ = r.content_length;
    phase_ = Phase::body_length;
  } else {
    answer(out);
  }
}

void Session::answer(std::string& out) {
  const bool keep = !req_.conn_close && (req_.minor >= 1 || req_.conn_keep_alive);
  const ConnHeader conn = !keep ? ConnHeader::close : req_.minor == 0 ? ConnHeader::keep_alive : ConnHeader::none;
  responses_.append(out, status_, req_.method == Method::head, conn);
  closing_ = !keep;
  answered_++;
  req_ = Request{};
  phase_ = Phase::request_line;
}

void Session::timeout(std::string& out) {
  if (head_started()) return fail(Status::request_timeout, out);
  closing_ = true;
}

void Session::fail(Status status, std::string& out) {
  responses_.append(out, status, req_.method == Method::head, ConnHeader::close);
  closing_ = true;
}

}  // namespace http
