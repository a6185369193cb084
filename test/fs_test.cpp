// gort::fs::File on the backend CTest chose (see net_test.cpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gort/gort.hpp"

namespace {

// temp_path() is a fresh file name under $TMPDIR (or /tmp).
std::string temp_path(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/gort-fs-test-" + tag + "-" + std::to_string(getpid());
}

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

TEST_CASE("file write, fsync, read back, read_at / write_at, eof") {
  gort::main([] {
    const std::string path = temp_path("rw");
    {
      auto f = gort::fs::File::create(path);
      REQUIRE_MESSAGE(f, f.error().message());
      std::string big(200'000, 'z');
      CHECK(f->write(bytes("hello, ")).n == 7);
      CHECK(f->write(bytes(big)).n == big.size());
      CHECK(f->write_at(bytes("HELLO"), 0).n == 5);
      CHECK(!f->fsync());
      CHECK(!f->close());
      CHECK(f->close() == gort::Errc::closed);
      CHECK(f->read(std::as_writable_bytes(std::span<char>(big))).ec == gort::Errc::closed);
    }
    auto f = gort::fs::File::open(path);
    REQUIRE(f);
    std::string got(7, '\0');
    auto r = f->read(std::as_writable_bytes(std::span<char>(got)));
    CHECK(r.n == 7);
    CHECK(got == "HELLO, ");
    std::string at(3, '\0');
    CHECK(f->read_at(std::as_writable_bytes(std::span<char>(at)), 200'004).n == 3);
    CHECK(at == "zzz");
    CHECK(f->read_at(std::as_writable_bytes(std::span<char>(at)), 200'007).ec == gort::Errc::eof);
    std::string rest(300'000, '\0');
    std::size_t total = 0;
    for (;;) {
      auto rr = f->read(std::as_writable_bytes(std::span<char>(rest)).subspan(total));
      if (rr.ec) {
        CHECK(rr.ec == gort::Errc::eof);
        break;
      }
      total += rr.n;
    }
    CHECK(total == 200'000);
    unlink(path.c_str());
  });
}

TEST_CASE("opening a missing file is an error value naming the cause") {
  gort::main([] {
    auto f = gort::fs::File::open("/nonexistent/gort/file");
    REQUIRE_FALSE(f);
    CHECK(f.error() == std::errc::no_such_file_or_directory);
  });
}
