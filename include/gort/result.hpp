// gort::Result<T> and gort::IoResult: values for expected failures (EOF, timeout,
// connection reset), as Go's (value, error) pairs. Exceptions stay for
// programming errors and panics.
#pragma once

#include <cstddef>
#include <optional>
#include <system_error>
#include <utility>

namespace gort {

// Errors of gort's own (std::error_code values in gort::error_category()); the
// rest are system errors (std::errc: timed_out, connection_reset...).
enum class Errc {
  eof = 1,         // the peer closed its side: no more bytes will come (Go's io.EOF)
  closed,          // use of a closed connection, listener or file (Go's net.ErrClosed)
  unexpected_eof,  // read_full got EOF after some but not all bytes (io.ErrUnexpectedEOF)
  bad_address,     // an address that does not parse ("host:port" expected)
};
// error_category() is the category of Errc values; its name is "gort".
const std::error_category& error_category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), error_category()}; }

// IoResult is the outcome of a read or write: n bytes moved, then the error that
// stopped it (empty on success). A read returning n > 0 never carries an error;
// Go's "n and err" for write_all / read_full: n says how far it got.
struct IoResult {
  std::size_t n = 0;
  std::error_code ec{};
  // true when no error occurred.
  explicit operator bool() const { return !ec; }
};

// Result<T> is a T or the error that prevented it (a small std::expected).
template <class T>
class Result {
 public:
  Result(T v) : v_(std::move(v)) {}                      // NOLINT: implicit, as expected<T>
  Result(std::error_code ec) : ec_(ec) {}                 // NOLINT
  Result(Errc e) : ec_(make_error_code(e)) {}             // NOLINT
  // true when it holds a value.
  explicit operator bool() const { return v_.has_value(); }
  bool has_value() const { return v_.has_value(); }
  // error() is the failure (empty when there is a value).
  std::error_code error() const { return ec_; }
  // value() is the T; throws std::system_error carrying error() if there is none.
  T& value() & {
    if (!v_) throw std::system_error(ec_);
    return *v_;
  }
  T&& value() && {
    if (!v_) throw std::system_error(ec_);
    return std::move(*v_);
  }
  // value() of a const Result: the T, read-only; throws as above.
  const T& value() const& {
    if (!v_) throw std::system_error(ec_);
    return *v_;
  }
  // operator*() is value().
  T& operator*() & { return value(); }
  // operator*() of an rvalue moves the T out, as value() &&.
  T&& operator*() && { return std::move(*this).value(); }
  // operator*() of a const Result is value() const&.
  const T& operator*() const& { return value(); }
  // operator->() reaches the T's members; throws as value().
  T* operator->() { return &value(); }
  // operator->() of a const Result, read-only.
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> v_;
  std::error_code ec_{};
};

}  // namespace gort

template <>
struct std::is_error_code_enum<gort::Errc> : std::true_type {};
