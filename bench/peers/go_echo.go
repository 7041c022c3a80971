// A Go echo server the way Go writes one: a goroutine per connection on the net package, the
// runtime's netpoller underneath. Reference point for bench/run-matrix.
//
// The loop reads into a 32 KiB buffer, the size io.Copy uses, and writes what it read. It does
// not call io.Copy(conn, conn) itself: between two TCP connections that splices through a kernel
// pipe on Linux, which no server that looks at its bytes can do.
//
// Usage: go-echo PORT [THREADS] (listens on 127.0.0.1; THREADS sets GOMAXPROCS, default all CPUs).
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
)

func echo(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go-echo PORT [THREADS]")
		os.Exit(2)
	}
	if len(os.Args) > 2 {
		threads, err := strconv.Atoi(os.Args[2])
		if err != nil || threads < 1 {
			fmt.Fprintln(os.Stderr, "go-echo: THREADS must be a positive number")
			os.Exit(2)
		}
		runtime.GOMAXPROCS(threads)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-echo:", err)
		os.Exit(1)
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		// Go sets TCP_NODELAY on every TCP connection already; said here so the reader need not know.
		conn.(*net.TCPConn).SetNoDelay(true)
		go echo(conn)
	}
}
