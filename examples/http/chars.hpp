// Byte classes of HTTP/1.1 (RFC 9110 section 5.6, RFC 9112), as 256-entry
// tables: the parsers test every byte of a request, so a test is one load.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace http::chars {

namespace detail {

template <class Pred>
constexpr std::array<bool, 256> table(Pred pred) {
  std::array<bool, 256> t{};
  for (std::size_t c = 0; c < t.size(); c++) t[c] = pred(static_cast<unsigned char>(c));
  return t;
}

constexpr bool alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// tchar: the bytes of a token (method, field name).
inline constexpr std::array<bool, 256> kToken =
    table([](unsigned char c) { return alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos; });
// field-vchar, SP and HTAB: what a field value may hold (obs-text included, CTLs not).
inline constexpr std::array<bool, 256> kFieldValue =
    table([](unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });
// The bytes of a request-target: visible ASCII, no space, no control.
inline constexpr std::array<bool, 256> kTarget = table([](unsigned char c) { return c > 0x20 && c < 0x7f; });
// The bytes of a Host value: reg-name, IP literal and port (RFC 3986), as Go's
// httpguts.ValidHostHeader.
inline constexpr std::array<bool, 256> kHost =
    table([](unsigned char c) { return alnum(c) || std::string_view("!$%&'()*+,-.:;=[]_~@").find(static_cast<char>(c)) != std::string_view::npos; });

}  // namespace detail

// is_token() is true for a tchar.
constexpr bool is_token(char c) { return detail::kToken[static_cast<unsigned char>(c)]; }
// is_field_value() is true for a byte allowed in a field value.
constexpr bool is_field_value(char c) { return detail::kFieldValue[static_cast<unsigned char>(c)]; }
// is_target() is true for a byte allowed in a request-target.
constexpr bool is_target(char c) { return detail::kTarget[static_cast<unsigned char>(c)]; }
// is_host() is true for a byte allowed in a Host value.
constexpr bool is_host(char c) { return detail::kHost[static_cast<unsigned char>(c)]; }
// is_ows() is true for optional whitespace (SP, HTAB).
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

// all_of() is true when every byte of s is in the class.
template <class Pred>
constexpr bool all_of(std::string_view s, Pred in_class) {
  for (char c : s) {
    if (!in_class(c)) return false;
  }
  return true;
}

// trim_ows() strips leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// iequals() compares s with lower, an all-lowercase literal, ignoring ASCII case.
constexpr bool iequals(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); i++) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] + ('a' - 'A')) : s[i];
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace http::chars
