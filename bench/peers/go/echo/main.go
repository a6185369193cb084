// Command echo is the Go peer of examples/echo_server for `gort-bench net`:
// a TCP echo server with one goroutine per connection, each looping
// read-then-write-back until the peer closes, the way a Go programmer writes
// it without tricks. The loop is explicit rather than io.Copy(c, c) because
// io.Copy between two *net.TCPConn goes through splice(2) and a pipe on
// Linux, which is not the plain read/write path the benchmark compares.
//
// Usage: echo [-addr HOST:PORT] [-procs N]
//
// Prints "echo: listening on ADDR (GOVERSION, GOMAXPROCS N)" once the
// socket is listening; SIGTERM ends it (Go's default action). Standard
// library only, so it builds offline.
package main

import (
	"net"

	"gortpeers/internal/peer"
)

// serve echoes everything c sends until it closes or an error occurs.
func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// main listens on -addr and starts a goroutine per accepted connection.
func main() {
	ln := peer.Listen("echo")
	for {
		c, err := ln.Accept()
		peer.Check("echo", err)
		go serve(c)
	}
}
