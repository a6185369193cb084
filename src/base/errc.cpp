// gort::error_category(): the category of gort's own errors (Errc). It lives in
// base, not in io/net.cpp, because every layer that returns a Result uses it
// (net, fs), and result.hpp, which declares it, is below them all.
#include "gort/result.hpp"

#include <string>

namespace gort {

namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "gort"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::eof: return "EOF";
      case Errc::closed: return "use of closed network connection or file";
      case Errc::unexpected_eof: return "unexpected EOF";
      case Errc::bad_address: return "bad address (expected host:port)";
    }
    return "unknown gort error";
  }
};

}  // namespace

const std::error_category& error_category() {
  static const Category c;
  return c;
}

}  // namespace gort
