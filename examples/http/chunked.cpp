#include "http/chunked.hpp"

#include <algorithm>

#include "http/chars.hpp"

namespace http {

namespace {

// hex() is the value of a hex digit, or -1.
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Sizes stop below 2^60: no client sends that much in one chunk, and the bound
// keeps left_ * 16 from overflowing.
constexpr std::uint64_t kMaxChunk = std::uint64_t{1} << 60;

}  // namespace

void ChunkedDecoder::reset() {
  state_ = State::size_first;
  status_ = Status::bad_request;
  left_ = 0;
  line_ = 0;
  trailers_ = 0;
}

ChunkedDecoder::Result ChunkedDecoder::consume(std::string_view in, std::size_t* used) {
  std::size_t i = 0;
  while (i < in.size()) {
    if (state_ == State::data) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size() - i));
      i += n;
      left_ -= n;
      if (left_ == 0) state_ = State::data_cr;
      continue;
    }
    if (!step(in[i++])) {
      *used += i;
      return Result::error;
    }
    if (state_ == State::done) {
      *used += i;
      return Result::done;
    }
  }
  *used += i;
  return Result::more;
}

bool ChunkedDecoder::step(char c) {
  if (state_ <= State::size_lf && ++line_ > kMaxSizeLine) return false;
  if (state_ >= State::trailer_start && ++trailers_ > max_trailer_) {
    status_ = Status::header_too_large;
    return false;
  }
  switch (state_) {
    case State::size_first:
    case State::size: {
      const int d = hex(c);
      if (d >= 0) {
        left_ = left_ * 16 + static_cast<std::uint64_t>(d);
        state_ = State::size;
        return left_ < kMaxChunk;
      }
      if (state_ == State::size_first) return false;
      [[fallthrough]];
    }
    case State::size_ows:
      // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): after
      // the size only whitespace, then ';' or CR. Reading "5 6" or "5 junk"
      // as a 5-byte chunk would frame the body differently from llhttp and
      // Go, which reject it, and such a disagreement is how smuggling starts.
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      if (c == ';') {
        state_ = State::ext;
        return true;
      }
      state_ = State::size_ows;
      return chars::is_ows(c);
    case State::ext:
      if (c == '\r') {
        state_ = State::size_lf;
        return true;
      }
      return chars::is_field_value(c);
    case State::size_lf:
      if (c != '\n') return false;
      line_ = 0;
      state_ = left_ == 0 ? State::trailer_start : State::data;
      return true;
    case State::data_cr:
      state_ = State::data_lf;
      return c == '\r';
    case State::data_lf:
      state_ = State::size_first;
      return c == '\n';
    case State::trailer_start:
      if (c == '\r') {
        state_ = State::end_lf;
        return true;
      }
      state_ = State::trailer_name;
      return chars::is_token(c);
    case State::trailer_name:
      if (c == ':') {
        state_ = State::trailer_value;
        return true;
      }
      return chars::is_token(c);
    case State::trailer_value:
      if (c == '\r') {
        state_ = State::trailer_lf;
        return true;
      }
      return chars::is_field_value(c);
    case State::trailer_lf:
      state_ = State::trailer_start;
      return c == '\n';
    case State::end_lf:
      state_ = State::done;
      return c == '\n';
    case State::data:
    case State::done:
      break;
  }
  return false;
}

}  // namespace http
