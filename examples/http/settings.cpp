#include "http/settings.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string_view>
#include <toml++/toml.h>

namespace http {

namespace {

constexpr std::int64_t KiB = 1024, MiB = 1024 * KiB, kDayMs = 24 * 3600 * 1000;

// A unit suffix of a string value and what it multiplies by.
struct Unit {
  std::string_view suffix;
  std::int64_t mul;
};
constexpr Unit kBytes[] = {{"", 1}, {"B", 1}, {"K", KiB}, {"KiB", KiB}, {"M", MiB}, {"MiB", MiB},
                            {"G", 1024 * MiB}, {"GiB", 1024 * MiB}};
constexpr Unit kMs[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};

// One key of [http]. Sizes are whole pages, as the runtime's sizes: the input
// buffer grows by pages.
struct Key {
  std::string_view name;
  bool bytes;  // a size in bytes, else a duration in milliseconds
  std::int64_t min, max;
  void (*set)(Settings&, std::int64_t);
};
constexpr Key kKeys[] = {
    {"max_header_bytes", true, 4 * KiB, 64 * MiB, [](Settings& s, std::int64_t v) { s.max_header_bytes = std::size_t(v); }},
    {"idle_timeout", false, 1, kDayMs, [](Settings& s, std::int64_t v) { s.idle_timeout = std::chrono::milliseconds(v); }},
    {"header_timeout", false, 1, kDayMs, [](Settings& s, std::int64_t v) { s.header_timeout = std::chrono::milliseconds(v); }},
    {"write_timeout", false, 1, kDayMs, [](Settings& s, std::int64_t v) { s.write_timeout = std::chrono::milliseconds(v); }},
};

[[noreturn]] void fail(std::string_view where, std::string_view what) {
  throw SettingsError(fmt::format("gort: config: {}: {}", where, what));
}

// value_of() is n's value in the key's unit: a TOML integer, or a string of
// digits with one of units' suffixes ("64KiB", "60s"); nullopt if it is neither
// or overflows.
template <std::size_t N>
std::optional<std::int64_t> value_of(const toml::node& n, const Unit (&units)[N]) {
  if (n.is_integer()) return n.as_integer()->get();
  const toml::value<std::string>* s = n.as_string();
  if (s == nullptr) return std::nullopt;
  const std::string& t = s->get();
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || v < 0) return std::nullopt;
  for (const Unit& u : units) {
    if (std::string_view(end, t.data() + t.size()) == u.suffix && v <= INT64_MAX / u.mul) return v * u.mul;
  }
  return std::nullopt;
}

// set() checks node against k and stores it in s; where is "file:line: http.key".
void set(Settings& s, const Key& k, const toml::node& node, const std::string& where) {
  const std::optional<std::int64_t> v = k.bytes ? value_of(node, kBytes) : value_of(node, kMs);
  if (!v) {
    // What the runtime's messages show: "soon" (TOML would print 'soon'), 1.5, true.
    std::ostringstream got;
    if (node.is_string()) got << '"' << node.as_string()->get() << '"';
    else node.visit([&](const auto& v) { got << v; });
    fail(where, fmt::format("expected {}, got {}",
                            k.bytes ? "a size in bytes (an integer, or a string like \"64KiB\")"
                                    : "a duration in milliseconds (an integer, or a string like \"500ms\", \"60s\", \"2m\")",
                            got.str()));
  }
  if (*v < k.min || *v > k.max) {
    fail(where, fmt::format("{}{} is out of range [{}, {}]", *v, k.bytes ? "" : " ms", k.min, k.max));
  }
  if (k.bytes && *v % 4096 != 0) fail(where, fmt::format("{} is not a multiple of the 4096-byte page", *v));
  k.set(s, *v);
}

}  // namespace

Settings load_settings(const std::string& path) {
  Settings s;
  if (path.empty()) return s;
  toml::table file;
  try {
    file = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    fail(fmt::format("{}:{}", path, e.source().begin.line), e.description());
  } catch (const std::exception& e) {
    fail(path, fmt::format("cannot read: {}", e.what()));
  }
  const toml::node* table = file.get("http");
  if (table == nullptr) return s;
  if (!table->is_table()) fail(fmt::format("{}:{}: http", path, table->source().begin.line), "expected a table");
  for (const auto& [name, node] : *table->as_table()) {
    const std::string where = fmt::format("{}:{}: http.{}", path, node.source().begin.line, name.str());
    const Key* k = nullptr;
    for (const Key& c : kKeys) k = c.name == name.str() ? &c : k;
    if (k == nullptr) fail(where, "unknown key (conf/http_server.conf lists them all)");
    set(s, *k, node, where);
  }
  return s;
}

}  // namespace http
