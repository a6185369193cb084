// Package peer holds what the Go server peers of `gort-bench net` share:
// their command line (-addr HOST:PORT, -procs N) and the listening socket.
package peer

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
)

// Listen parses -addr and -procs, sets GOMAXPROCS, listens on TCP and prints
// "NAME: listening on ADDR (GOVERSION, GOMAXPROCS N)". Bad flags exit 2, a
// failed listen exits 1.
func Listen(name string) net.Listener {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address HOST:PORT")
	procs := flag.Int("procs", 0, "GOMAXPROCS (0: Go's default, the CPUs in the affinity mask)")
	flag.Parse()
	if flag.NArg() != 0 || *procs < 0 {
		fmt.Fprintf(os.Stderr, "usage: %s [-addr HOST:PORT] [-procs N]\n", name)
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	ln, err := net.Listen("tcp", *addr)
	Check(name, err)
	fmt.Printf("%s: listening on %s (%s, GOMAXPROCS %d)\n", name, ln.Addr(), runtime.Version(), runtime.GOMAXPROCS(0))
	return ln
}

// Check exits 1 with "NAME: err" when err is not nil.
func Check(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
