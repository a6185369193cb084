// run_server(): what echo_server and http_server share: flags, runtime
// options, the listener, and a clean exit on SIGINT/SIGTERM.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>
#include <thread>

#include "gort/gort.hpp"
#include "gort/net.hpp"

namespace examples {

/*
 * Shutdown. SIGINT and SIGTERM are blocked before the runtime starts, so every
 * thread it creates inherits the mask and no goroutine is ever interrupted by
 * them. A plain thread takes them with sigwait() and closes the listener,
 * which wakes the accept in goroutine 1 with Errc::closed: serve() returns,
 * goroutine 1 ends, gort::main returns.
 *
 * Connections still open are abandoned, as when a Go program's main returns.
 * The process then ends with _Exit, as Go's does: running static destructors
 * under goroutines that are still running on other threads could only crash.
 */

// run_server() parses the flags (what is the --help title), hands configure()
// the conf file (--conf, else $GORT_CONF, else "") to read the program's own
// tables of it before the runtime starts (an exception is a configuration
// error: its message and exit status 2), listens on --addr and runs
// serve(listener), which returns accept_loop's error, in goroutine 1; it then
// ends the process with the exit status.
template <class Configure, class Serve>
int run_server(const char* name, const char* what, int argc, char** argv, Configure configure, Serve serve) {
  CLI::App app{what, name};
  std::string addr;
  int procs = 0;
  std::string conf;
  app.add_option("--addr", addr, "HOST:PORT to listen on (port 0: any free port)")->required();
  app.add_option("--procs", procs, "processors running goroutines (sched.procs; default: one per CPU)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--conf", conf, "configuration file (TOML: the runtime's tables, as conf/gort.conf, and the server's)")
      ->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  }

  // The runtime falls back on $GORT_CONF by itself; the program's tables come
  // from the same file.
  const char* conf_env = std::getenv("GORT_CONF");
  try {
    configure(!conf.empty() ? conf : conf_env != nullptr ? std::string(conf_env) : std::string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  gort::Options opts;
  opts.conf_file = conf;
  if (procs > 0) opts.settings.emplace_back("sched.procs", std::to_string(procs));

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // A shell starts background commands with SIGINT ignored, and an ignored
  // signal is dropped even while blocked: restore the default (as Go's
  // signal.Notify does) so that sigwait() receives it.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);

  int status = 0;
  gort::main(
      [&] {
        gort::Result<gort::net::Listener> ln = gort::net::listen(addr);
        if (!ln) {
          std::fprintf(stderr, "%s: listen on %s: %s\n", name, addr.c_str(), ln.error().message().c_str());
          status = ln.error() == gort::Errc::bad_address ? 2 : 1;  // a malformed --addr is a bad flag
          return;
        }
        std::printf("%s: listening on %s\n", name, ln->addr().to_string().c_str());
        std::fflush(stdout);
        std::thread waiter([&ln, stop] {
          int sig = 0;
          sigwait(&stop, &sig);
          ln->close();
        });
        const std::error_code ec = serve(*ln);
        if (ec != gort::Errc::closed) {
          std::fprintf(stderr, "%s: accept: %s\n", name, ec.message().c_str());
          status = 1;
        }
        // Wake the waiter if the loop ended by itself. Before the join its
        // thread id is valid even if it has already returned.
        pthread_kill(waiter.native_handle(), SIGTERM);
        waiter.join();
      },
      opts);
  std::fflush(nullptr);
  std::_Exit(status);
}

}  // namespace examples
