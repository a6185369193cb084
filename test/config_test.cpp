// Configuration: precedence, key names, and errors that name the key and line.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>

#include "base/config.hpp"
#include "base/log.hpp"
#include "gort/gort.hpp"
#include "stack/stack.hpp"
#include "child.hpp"
#include "init.hpp"
#include "temp_conf.hpp"

using namespace gort::rt;

namespace {

using gort::test::TempConf;

// error_of() loads and returns the ConfigError message ("" if none).
std::string error_of(const gort::Options& opts, const char* conf = nullptr, const char* debug = nullptr) {
  try {
    load_config(opts, conf, debug);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("built-in defaults") {
  Config c = load_config({}, nullptr, nullptr);
  CHECK(c.stack_size == 256 * 1024);
  CHECK(c.stack_guard_pages == 1);
  CHECK(c.stack_cache_keep == 16 * 1024);
  CHECK(c.stack_debug == StackDebug{});
  CHECK(c.log_level == "info");
}

TEST_CASE("conf/gort.conf and conf/debug.conf load, and gort.conf restates the defaults") {
  Config c = load_config({.conf_file = GORT_SOURCE_DIR "/conf/gort.conf"}, nullptr, nullptr);
  Config d;
  CHECK(c.stack_size == d.stack_size);
  CHECK(c.stack_guard_pages == d.stack_guard_pages);
  CHECK(c.stack_cache_keep == d.stack_cache_keep);
  CHECK(c.stack_debug == d.stack_debug);
  CHECK(c.log_level == d.log_level);
  CHECK(c.sched_procs == d.sched_procs);
  CHECK(c.sched_spin_us == d.sched_spin_us);
  CHECK(c.sched_hog_ms == d.sched_hog_ms);
  CHECK(c.io_backend == d.io_backend);
  CHECK(c.io_entries == d.io_entries);
  CHECK(c.io_sqpoll == d.io_sqpoll);
  CHECK(c.io_coop_taskrun == d.io_coop_taskrun);
  CHECK(c.io_recv_bufring == d.io_recv_bufring);
  CHECK(c.io_multishot_accept == d.io_multishot_accept);
  Config dbg = load_config({.conf_file = GORT_SOURCE_DIR "/conf/debug.conf"}, nullptr, nullptr);
  CHECK(dbg.stack_debug.fromsystem);
  CHECK(dbg.stack_debug.faultonfree);
  CHECK(dbg.stack_debug.poison);
  CHECK(dbg.stack_debug.nocache);
  CHECK(dbg.stack_debug.level > 0);
}

TEST_CASE("precedence: file < GORTDEBUG < Options") {
  TempConf f("[stack]\nsize = 131072\nguard_pages = 2\ncache_keep = 8192\n");
  Config c = load_config({}, f.path.c_str(), nullptr);
  CHECK(c.stack_size == 131072);
  CHECK(c.stack_guard_pages == 2);
  c = load_config({}, f.path.c_str(), "stack.guard_pages=3,stackpoison=1");
  CHECK(c.stack_guard_pages == 3);
  CHECK(c.stack_debug.poison);
  gort::Options o{.settings = {{"stack.guard_pages", "4"}, {"stack.poison", "false"}}};
  c = load_config(o, f.path.c_str(), "stack.guard_pages=3,stackpoison=1");
  CHECK(c.stack_guard_pages == 4);
  CHECK(!c.stack_debug.poison);
  CHECK(c.stack_size == 131072);
  // Options.conf_file wins over $GORT_CONF.
  TempConf g("[stack]\nsize = 65536\ncache_keep = 4096\n");
  c = load_config({.conf_file = g.path}, f.path.c_str(), nullptr);
  CHECK(c.stack_size == 65536);
}

TEST_CASE("stack.kind and the copying bounds: choices, powers of two, min <= max") {
  Config c = load_config({}, nullptr, "stackkind=copying,stack.copying_min=8KiB,stack.copying_max=16MiB");
  CHECK(c.stack_copying);
  CHECK(c.stack_copying_min == 8 * 1024);
  CHECK(c.stack_copying_max == 16 * 1024 * 1024);
  CHECK_FALSE(load_config({}, nullptr, nullptr).stack_copying);
  CHECK(error_of({}, nullptr, "stack.kind=moving").find("stack.kind") != std::string::npos);
  CHECK(error_of({}, nullptr, "stack.kind=moving").find("copying") != std::string::npos);
  CHECK(error_of({}, nullptr, "stack.copying_min=12KiB") ==
        "gort: config: stack.copying_min: 12288 is not a power of two");
  CHECK(error_of({}, nullptr, "stack.copying_min=1MiB,stack.copying_max=64KiB") ==
        "gort: config: stack.copying_min: 1048576 exceeds stack.copying_max 65536");
  CHECK(error_of({}, nullptr, "stack.copying_max=128GiB").find("out of range") != std::string::npos);
}

TEST_CASE("GORTDEBUG takes Go's names; efence is fromsystem + faultonfree; sizes take units") {
  Config c = load_config({}, nullptr, "efence=1,stackdebug=3,stacknocache=true,stack.size=512KiB");
  CHECK(c.stack_debug.fromsystem);
  CHECK(c.stack_debug.faultonfree);
  CHECK(c.stack_debug.nocache);
  CHECK(c.stack_debug.level == 3);
  CHECK(c.stack_size == 512 * 1024);
  c = load_config({}, nullptr, "stack.size=1M");
  CHECK(c.stack_size == 1024 * 1024);
  c = load_config({}, nullptr, "gomaxprocs=3");
  CHECK(c.sched_procs == 3);
  // $GORTMAXPROCS beats GORTDEBUG; a bad value names its source.
  c = load_config({}, nullptr, "gomaxprocs=3", "1");
  CHECK(c.sched_procs == 1);
  CHECK(error_of({}, nullptr, nullptr).empty());
  try {
    load_config({}, nullptr, nullptr, "two");
    FAIL("GORTMAXPROCS=two accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("GORTMAXPROCS: sched.procs") != std::string::npos);
  }
}

TEST_CASE("an unknown key in a file names the key and file:line") {
  TempConf f("[stack]\nsize = 262144\n\nsise = 4\n");
  std::string e = error_of({}, f.path.c_str());
  CHECK(e.find(f.path + ":4") != std::string::npos);
  CHECK(e.find("stack.sise") != std::string::npos);
  CHECK(e.find("unknown key") != std::string::npos);
}

TEST_CASE("tables that are not the runtime's are the program's, but the runtime's own stay strict") {
  // examples/http_server keeps its [http] table in the same file, and checks it.
  TempConf f("[http]\nidle_timeout = \"90s\"\nanything = [1, 2]\n[http.sub]\nx = 1\n[stack]\nsize = \"64KiB\"\n");
  CHECK(load_config({}, f.path.c_str(), nullptr).stack_size == 64 * 1024);
  TempConf g("[http]\nidle_timeout = 1\n[io]\nbackend = \"epoll\"\n[io.uring]\nsqpoll = true\n");
  std::string e = error_of({}, g.path.c_str());
  CHECK(e.find(g.path + ":6: io.uring.sqpoll: unknown key") != std::string::npos);
  TempConf h("top = 1\n");
  CHECK(error_of({}, h.path.c_str()).find(h.path + ":1: top: unknown key") != std::string::npos);
  // Nor do GORTDEBUG and gort::Options take keys outside the runtime's tables.
  CHECK(error_of({}, nullptr, "http.idle_timeout=2m").find("http.idle_timeout: unknown setting") != std::string::npos);
}

TEST_CASE("a value of the wrong type names the key and line") {
  TempConf f("[stack]\npoison = \"yes\"\n");
  std::string e = error_of({}, f.path.c_str());
  CHECK(e.find(f.path + ":2") != std::string::npos);
  CHECK(e.find("stack.poison") != std::string::npos);
  CHECK(e.find("expected a boolean") != std::string::npos);
  TempConf g("[stack]\nsize = 1.5\n");
  e = error_of({}, g.path.c_str());
  CHECK(e.find("stack.size") != std::string::npos);
  CHECK(e.find("floating-point") != std::string::npos);
}

TEST_CASE("out-of-range values name the key, the range and the line") {
  TempConf f("[stack]\nguard_pages = 0\n");
  std::string e = error_of({}, f.path.c_str());
  CHECK(e.find(f.path + ":2") != std::string::npos);
  CHECK(e.find("stack.guard_pages") != std::string::npos);
  CHECK(e.find("0 is out of range [1, 256]") != std::string::npos);
  CHECK(error_of({}, nullptr, "stackdebug=5").find("stack.debug: 5 is out of range [0, 4]") != std::string::npos);
  CHECK(error_of({}, nullptr, "stack.size=100000").find("not a multiple of the 4096-byte page") != std::string::npos);
  CHECK(error_of({}, nullptr, "stack.size=64KiB,stack.cache_keep=128KiB").find("exceeds stack.size") != std::string::npos);
}

TEST_CASE("bad GORTDEBUG and Options entries name their source") {
  std::string e = error_of({}, nullptr, "stackpoisson=1");
  CHECK(e.find("GORTDEBUG") != std::string::npos);
  CHECK(e.find("stackpoisson") != std::string::npos);
  CHECK(error_of({}, nullptr, "efence").find("expected key=value") != std::string::npos);
  CHECK(error_of({}, nullptr, "efence=maybe").find("expected a boolean") != std::string::npos);
  e = error_of({.settings = {{"log.level", "loud"}}});
  CHECK(e.find("gort::Options") != std::string::npos);
  CHECK(e.find("log.level") != std::string::npos);
}

TEST_CASE("a TOML syntax error names the file and line") {
  TempConf f("[stack]\nsize = = 3\n");
  std::string e = error_of({}, f.path.c_str());
  CHECK(e.find(f.path + ":2") != std::string::npos);
}

TEST_CASE("a missing file is an error naming it") {
  std::string e = error_of({.conf_file = "/nonexistent/gort.conf"});
  CHECK(e.find("/nonexistent/gort.conf") != std::string::npos);
}

TEST_CASE("at start-up a bad configuration stops the program with status 2") {
  auto r = gort::test::run_in_child([] {
    setenv("GORTDEBUG", "stackpoison=1,stack.guard_pages=999", 1);
    load_config_or_exit({});
  });
  INFO("child stderr:\n" << r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("gort: config: GORTDEBUG: stack.guard_pages: 999 is out of range [1, 256]") !=
        std::string::npos);
}

TEST_CASE("gort::set_debug switches debug modes at run time and rejects the rest") {
  const StackDebug saved = stack_debug();
  const std::string guard_mode = gort::stack_stats().guard_mode;  // whichever this kernel allows
  gort::set_debug("stackpoison=1,stacknocache=1");
  CHECK(stack_debug().poison);
  CHECK(stack_debug().nocache);
  gort::set_debug("efence=1,stackpoison=0,stacknocache=0");
  CHECK(stack_debug().fromsystem);
  CHECK(stack_debug().faultonfree);
  CHECK(!stack_debug().poison);
  CHECK_THROWS_WITH_AS(gort::set_debug("stackpoisson=1"),
                       doctest::Contains("gort::set_debug: stackpoisson: unknown setting"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gort::set_debug("stack.size=64KiB"), doctest::Contains("fixed at start-up"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(gort::set_debug("sched.spin_us=5"), doctest::Contains("fixed at start-up"),
                       std::invalid_argument);
  gort::set_debug("log.level=warn");
  CHECK(log()->level() == spdlog::level::warn);
  gort::set_debug("stackpoison=0");  // leaves the level as it is
  CHECK(log()->level() == spdlog::level::warn);
  gort::set_debug("log.level=info");
  CHECK(log()->level() == spdlog::level::info);
  gort::set_debug("efence=0");
  CHECK(stack_debug() == saved);
  CHECK(gort::stack_stats().guard_mode == guard_mode);
}

TEST_CASE("gort::set_debug switching modes races with no goroutine reading the configuration") {
  // A thread outside the runtime switches modes (each round ends on the
  // defaults) while goroutines spawn goroutines with stacks of other sizes,
  // sleep, listen and close (backends read runtime_config() there), and read
  // the configuration's strings. Under TSan a write to any of it is a race.
  static constexpr const char* kModes[] = {"stackpoison=1", "efence=1,stackpoison=0", "efence=0,stacknocache=1",
                                           "stacknocache=0,log.level=warn", "log.level=info"};
  constexpr int kRounds = 100, kWorkers = 4, kSpawns = 40, kListens = 100;
  const StackDebug saved = stack_debug();
  const std::string backend = runtime_config().io_backend, level = runtime_config().log_level;
  std::thread switcher([] {
    for (int i = 0; i < kRounds; i++) {
      for (const char* m : kModes) gort::set_debug(m);
    }
  });
  std::atomic<int> ran{0}, listened{0}, same{0};
  gort::main([&] {
    gort::WaitGroup wg;
    for (int w = 0; w < kWorkers; w++) {
      wg.add(1);
      gort::go([&, w] {
        for (int i = 0; i < kSpawns; i++) {
          wg.add(1);
          gort::go({.stack_size = std::size_t(16 + 8 * ((w + i) % 5)) * 1024}, [&] {
            volatile char touch[2048];  // writes to the stack, poisoned or not
            touch[0] = 1;
            gort::sleep(std::chrono::microseconds(100));
            ran += touch[0];
            wg.done();
          });
          gort::yield();
        }
        wg.done();
      });
    }
    wg.add(1);
    gort::go([&] {
      for (int i = 0; i < kListens; i++) {
        auto ln = gort::net::listen("127.0.0.1:0");
        if (ln && !ln->close()) listened++;
        const gort::rt::Config& c = runtime_config();
        if (c.io_backend == backend && c.log_level == level) same++;
      }
      wg.done();
    });
    wg.wait();
  });
  switcher.join();
  CHECK(ran == kWorkers * kSpawns);
  CHECK(listened == kListens);
  CHECK(same == kListens);  // the loaded configuration is what runtime_init loaded, for ever
  CHECK(stack_debug() == saved);
}

TEST_CASE("io keys: choices and their errors") {
  TempConf f("[io]\nbackend = \"epoll\"\nentries = 512\n");
  Config c = gort::rt::load_config({}, f.path.c_str(), nullptr);
  CHECK(c.io_backend == "epoll");
  CHECK(c.io_entries == 512);
  CHECK(error_of({}, nullptr, "io.backend=kqueue").find("io.backend: expected one of auto, uring, epoll, got \"kqueue\"") !=
        std::string::npos);
  CHECK(error_of({}, nullptr, "io.entries=4").find("io.entries: 4 is out of range [8, 32768]") != std::string::npos);
}
