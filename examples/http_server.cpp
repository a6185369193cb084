// http_server: HTTP/1.1 "Hello, World!" on GET /, one goroutine per connection.
#include "common/server_main.hpp"
#include "http/http.hpp"

namespace {

// accept_loop's goroutines call the handler by reference, and one may start
// after the loop ended: the settings it reads must outlive them all.
http::Settings settings;

void handle(gort::net::Conn c) { http::serve_conn(std::move(c), settings); }

}  // namespace

int main(int argc, char** argv) {
  return examples::run_server(
      "http_server", "HTTP/1.1 hello server on gort", argc, argv,
      [](const std::string& conf) { settings = http::load_settings(conf); },
      [](gort::net::Listener& ln) { return gort::net::accept_loop(ln, handle); });
}
