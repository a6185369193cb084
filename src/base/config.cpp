#include "base/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <functional>
#include <map>
#include <toml++/toml.h>
#include <variant>
#include <vector>

namespace gort::rt {

namespace {

enum class Kind { bytes, integer, boolean, choice };

// One configuration key. alias is its GORTDEBUG short name, as in Go's GODEBUG.
struct Key {
  const char* name;
  const char* alias;
  Kind kind;
  std::int64_t min, max;  // inclusive range for bytes and integer
  std::function<void(Config&, std::int64_t, const std::string&)> set;
};

constexpr std::int64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

const std::vector<Key>& keys() {
  static const std::vector<Key> k = {
      {"stack.size", nullptr, Kind::bytes, 16 * KiB, 1 * GiB,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_size = std::size_t(v); }},
      {"stack.guard_pages", nullptr, Kind::integer, 1, 256,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_guard_pages = std::size_t(v); }},
      {"stack.cache_keep", nullptr, Kind::bytes, 0, 1 * GiB,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_cache_keep = std::size_t(v); }},
      {"stack.kind", "stackkind", Kind::choice, 0, 0,
       [](Config& c, std::int64_t, const std::string& s) { c.stack_copying = s == "copying"; }},
      {"stack.copying_min", nullptr, Kind::bytes, 4 * KiB, 1 * GiB,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_copying_min = std::size_t(v); }},
      {"stack.copying_max", nullptr, Kind::bytes, 4 * KiB, 64 * GiB,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_copying_max = std::size_t(v); }},
      {"stack.debug", "stackdebug", Kind::integer, 0, 4,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_debug.level = int(v); }},
      {"stack.fromsystem", "stackfromsystem", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_debug.fromsystem = v != 0; }},
      {"stack.faultonfree", "stackfaultonfree", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_debug.faultonfree = v != 0; }},
      {"stack.poison", "stackpoison", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_debug.poison = v != 0; }},
      {"stack.nocache", "stacknocache", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.stack_debug.nocache = v != 0; }},
      // efence = fromsystem + faultonfree, as in Go's GODEBUG=efence=1.
      {"stack.efence", "efence", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) {
         c.stack_debug.fromsystem = c.stack_debug.faultonfree = v != 0;
       }},
      {"sched.procs", "gomaxprocs", Kind::integer, 0, 1024,
       [](Config& c, std::int64_t v, const std::string&) { c.sched_procs = int(v); }},
      {"sched.spin_us", nullptr, Kind::integer, 0, 1'000'000,
       [](Config& c, std::int64_t v, const std::string&) { c.sched_spin_us = int(v); }},
      {"sched.hog_ms", nullptr, Kind::integer, 1, 3'600'000,
       [](Config& c, std::int64_t v, const std::string&) { c.sched_hog_ms = int(v); }},
      {"sched.backstop_fatal", "schedbackstopfatal", Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.sched_backstop_fatal = v != 0; }},
      {"log.level", nullptr, Kind::choice, 0, 0,
       [](Config& c, std::int64_t, const std::string& s) { c.log_level = s; }},
      {"io.backend", nullptr, Kind::choice, 0, 0,
       [](Config& c, std::int64_t, const std::string& s) { c.io_backend = s; }},
      {"io.entries", nullptr, Kind::integer, 8, 32768,
       [](Config& c, std::int64_t v, const std::string&) { c.io_entries = unsigned(v); }},
      {"io.sqpoll", nullptr, Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.io_sqpoll = v != 0; }},
      {"io.coop_taskrun", nullptr, Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.io_coop_taskrun = v != 0; }},
      {"io.recv_bufring", nullptr, Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.io_recv_bufring = v != 0; }},
      {"io.multishot_accept", nullptr, Kind::boolean, 0, 1,
       [](Config& c, std::int64_t v, const std::string&) { c.io_multishot_accept = v != 0; }},
  };
  return k;
}

// The values a Kind::choice key takes.
std::vector<std::string_view> choices(const Key& k) {
  if (std::string_view(k.name) == "io.backend") return {"auto", "uring", "epoll"};
  if (std::string_view(k.name) == "stack.kind") return {"stable", "copying"};
  return {"trace", "debug", "info", "warn", "error", "critical", "off"};
}

const Key* find_key(std::string_view name) {
  for (const Key& k : keys()) {
    if (name == k.name || (k.alias != nullptr && name == k.alias)) return &k;
  }
  return nullptr;
}

// owns_table() says whether a top-level table of a conf file is the runtime's:
// one its keys live in ([stack], [log], [sched], [io]). A program may keep its
// own tables in the same file (examples/http_server's [http]) and check them
// itself; the runtime cannot know their keys, so it leaves them alone, while
// every key of its own tables must still be one it knows.
bool owns_table(std::string_view name) {
  for (const Key& k : keys()) {
    const std::string_view key(k.name);
    if (key.size() > name.size() && key.starts_with(name) && key[name.size()] == '.') return true;
  }
  return false;
}

[[noreturn]] void fail(std::string_view where, std::string_view key, std::string_view what) {
  throw ConfigError(fmt::format("gort: config: {}: {}: {}", where, key, what));
}

std::string kind_name(const Key& k) {
  switch (k.kind) {
    case Kind::bytes: return "a size in bytes (an integer, or a string like \"64KiB\")";
    case Kind::integer: return "an integer";
    case Kind::boolean: return "a boolean (true/false, or 1/0 in GORTDEBUG)";
    case Kind::choice: return fmt::format("one of {}", fmt::join(choices(k), ", "));
  }
  return "?";
}

// A unit suffix and what it multiplies by.
struct Unit {
  std::string_view name;
  std::int64_t mul;
};
constexpr Unit kByteUnits[] = {{"", 1}, {"B", 1}, {"K", KiB}, {"KiB", KiB}, {"M", MiB}, {"MiB", MiB},
                               {"G", GiB}, {"GiB", GiB}};

// parse_units() parses a non-negative integer with one of units' suffixes
// ("64KiB"), without overflow.
template <std::size_t N>
bool parse_units(std::string_view s, const Unit (&units)[N], std::int64_t& out) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || v < 0) return false;
  const std::string_view suffix(p, static_cast<std::size_t>(s.data() + s.size() - p));
  for (const Unit& u : units) {
    if (suffix != u.name) continue;
    if (v > INT64_MAX / u.mul) return false;
    out = v * u.mul;
    return true;
  }
  return false;
}

// parse_bytes() accepts "65536", "64K", "64KiB", "1M", "1MiB", "1G", "1GiB".
bool parse_bytes(std::string_view s, std::int64_t& out) { return parse_units(s, kByteUnits, out); }

// A value as it came from a source, before checking against its key.
using Raw = std::variant<std::int64_t, bool, std::string>;

// set_key() checks raw against k and stores it in cfg.
void set_key(Config& cfg, const Key& k, const Raw& raw, bool from_text, std::string_view where) {
  std::int64_t v = 0;
  std::string s;
  auto bad = [&] {
    std::string got = std::visit(
        [](const auto& x) -> std::string {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) return fmt::format("\"{}\"", x);
          else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
          else return std::to_string(x);
        },
        raw);
    fail(where, k.name, fmt::format("expected {}, got {}", kind_name(k), got));
  };
  switch (k.kind) {
    case Kind::bytes:
    case Kind::integer:
      if (auto* i = std::get_if<std::int64_t>(&raw)) v = *i;
      else if (auto* t = std::get_if<std::string>(&raw); t && (k.kind == Kind::bytes || from_text)) {
        if (!parse_bytes(*t, v) || (k.kind == Kind::integer && t->find_first_not_of("0123456789") != std::string::npos)) bad();
      } else bad();
      if (v < k.min || v > k.max) {
        fail(where, k.name, fmt::format("{} is out of range [{}, {}]", v, k.min, k.max));
      }
      if (k.kind == Kind::bytes && v % 4096 != 0) {
        fail(where, k.name, fmt::format("{} is not a multiple of the 4096-byte page", v));
      }
      break;
    case Kind::boolean:
      if (auto* b = std::get_if<bool>(&raw)) v = *b;
      else if (auto* t = std::get_if<std::string>(&raw); t && from_text) {
        if (*t == "1" || *t == "true") v = 1;
        else if (*t == "0" || *t == "false") v = 0;
        else bad();
      } else bad();
      break;
    case Kind::choice: {
      auto* t = std::get_if<std::string>(&raw);
      if (t == nullptr) bad();
      bool ok = false;
      for (std::string_view c : choices(k)) ok = ok || *t == c;
      if (!ok) bad();
      s = *t;
      break;
    }
  }
  k.set(cfg, v, s);
}

void load_file(Config& cfg, const std::string& path) {
  toml::table tbl;
  try {
    tbl = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError(fmt::format("gort: config: {}:{}: {}", path, b.line, e.description()));
  } catch (const std::exception& e) {
    throw ConfigError(fmt::format("gort: config: {}: cannot read: {}", path, e.what()));
  }
  // Walk every leaf of the runtime's tables so that a misspelt key is reported,
  // not ignored.
  std::function<void(const toml::table&, const std::string&)> walk =
      [&](const toml::table& t, const std::string& prefix) {
        for (const auto& [name, node] : t) {
          std::string full = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
          std::string where = fmt::format("{}:{}", path, node.source().begin.line);
          if (const auto* sub = node.as_table()) {
            if (!prefix.empty() || owns_table(full)) walk(*sub, full);
            continue;
          }
          const Key* k = find_key(full);
          if (k == nullptr || full != k->name) fail(where, full, "unknown key (conf/gort.conf lists them all)");
          Raw raw;
          if (auto i = node.value<std::int64_t>(); i && node.is_integer()) raw = *i;
          else if (auto b = node.value<bool>()) raw = *b;
          else if (auto s = node.value<std::string>()) raw = *s;
          else fail(where, full, fmt::format("expected {}, got a TOML {}", kind_name(*k), toml::impl::node_type_friendly_names[static_cast<int>(node.type())]));
          set_key(cfg, *k, raw, false, where);
        }
      };
  walk(tbl, "");
}

void apply_setting(Config& cfg, std::string_view key, std::string_view value, std::string_view where) {
  const Key* k = find_key(key);
  if (k == nullptr) fail(where, key, "unknown setting (conf/gort.conf lists the keys; GORTDEBUG also takes stackdebug, stackfromsystem, stackfaultonfree, stackpoison, stacknocache, efence, stackkind, gomaxprocs, schedbackstopfatal)");
  set_key(cfg, *k, std::string(value), true, where);
}

// check() enforces rules that span keys.
void check(const Config& c) {
  if (c.stack_cache_keep > c.stack_size) {
    throw ConfigError(fmt::format(
        "gort: config: stack.cache_keep: {} exceeds stack.size {}", c.stack_cache_keep, c.stack_size));
  }
  // Copying stacks double on growth, so their sizes are the powers of two
  // between the two bounds (docs/stacks.md "Kinds").
  for (auto [name, v] : {std::pair{"stack.copying_min", c.stack_copying_min},
                         std::pair{"stack.copying_max", c.stack_copying_max}}) {
    if ((v & (v - 1)) != 0) {
      throw ConfigError(fmt::format("gort: config: {}: {} is not a power of two", name, v));
    }
  }
  if (c.stack_copying_min > c.stack_copying_max) {
    throw ConfigError(fmt::format("gort: config: stack.copying_min: {} exceeds stack.copying_max {}",
                                  c.stack_copying_min, c.stack_copying_max));
  }
}

}  // namespace

void apply_debug_settings(Config& cfg, std::string_view list, std::string_view where) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) fail(where, item, "expected key=value");
    apply_setting(cfg, item.substr(0, eq), item.substr(eq + 1), where);
  }
  check(cfg);
}

Config load_config(const Options& opts, const char* conf_env, const char* debug_env,
                   const char* maxprocs_env) {
  Config cfg;
  std::string file = !opts.conf_file.empty() ? opts.conf_file : (conf_env ? conf_env : "");
  if (!file.empty()) load_file(cfg, file);
  if (debug_env != nullptr) apply_debug_settings(cfg, debug_env, "GORTDEBUG");
  if (maxprocs_env != nullptr) apply_setting(cfg, "sched.procs", maxprocs_env, "GORTMAXPROCS");
  for (const auto& [k, v] : opts.settings) apply_setting(cfg, k, v, "gort::Options");
  check(cfg);
  return cfg;
}

}  // namespace gort::rt
