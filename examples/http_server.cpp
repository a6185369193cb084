// http_server: HTTP/1.1 "Hello, World!" on GET /, one goroutine per connection.
#include "common/server_main.hpp"
#include "http/http.hpp"

int main(int argc, char** argv) {
  return examples::run_server("http_server", "HTTP/1.1 hello server on gort", argc, argv, [](gort::net::Listener& ln) {
    // accept_loop's goroutines call the handler by reference, and one may
    // start after the loop ended: the handler must outlive them all.
    static const gort::HttpSettings settings = gort::http_settings();
    static const auto handler = [](gort::net::Conn c) { http::serve_conn(std::move(c), settings); };
    return gort::net::accept_loop(ln, handler);
  });
}
