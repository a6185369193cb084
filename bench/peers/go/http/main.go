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
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
)

var body = []byte("Hello, World!")

// hello writes the fixed body.
func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write(body)
}

// main listens on -addr and serves hello for every path.
func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address HOST:PORT")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: Go's default, the CPUs in the affinity mask)")
	flag.Parse()
	if flag.NArg() != 0 || *procs < 0 {
		fmt.Fprintln(os.Stderr, "usage: http [-addr HOST:PORT] [-procs N]")
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "http:", err)
		os.Exit(1)
	}
	fmt.Printf("http: listening on %s (%s, GOMAXPROCS %d)\n", ln.Addr(), runtime.Version(), runtime.GOMAXPROCS(0))
	err = http.Serve(ln, http.HandlerFunc(hello))
	fmt.Fprintln(os.Stderr, "http:", err)
	os.Exit(1)
}
