// Command http is the Go peer of examples/http_server for `gort-bench net`:
// net/http's server with one handler that answers every request with
// "Hello, World!" (HTTP/1.1 keep-alive, as wrk drives it). Content-Type is
// set explicitly so that net/http does not sniff the body on every request,
// and so the response carries the same headers as nginx's `return 200`.
//
// Usage: http [-addr HOST:PORT] [-procs N]
//
// Prints "http: listening on ADDR (GOVERSION, GOMAXPROCS N)" once the
// socket is listening; SIGTERM ends it (Go's default action). Standard
// library only, so it builds offline.
package main

import (
	"net/http"

	"gortpeers/internal/peer"
)

var body = []byte("Hello, World!")

// hello writes the fixed body.
func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write(body)
}

// main listens on -addr and serves hello for every path.
func main() {
	ln := peer.Listen("http")
	peer.Check("http", http.Serve(ln, http.HandlerFunc(hello)))
}
