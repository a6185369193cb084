// echo_server: one goroutine per connection, writing back what it reads.
#include "common/server_main.hpp"
#include "echo/echo.hpp"

int main(int argc, char** argv) {
  return examples::run_server(
      "echo_server", "TCP echo server on gort", argc, argv, [](const std::string&) {},  // no tables of its own
      [](gort::net::Listener& ln) { return gort::net::accept_loop(ln, echo::serve_conn); });
}
