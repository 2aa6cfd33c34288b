//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// callerGone reports whether the caller has closed its connection: a peek at the socket finds
// the end of the stream (or a reset) with nothing left to read. Bytes waiting — a body not read
// yet, a pipelined request — or none yet mean it may still be there. It never blocks and never
// consumes a byte.
func callerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || errors.Is(err, syscall.ECONNRESET)
		return true // done: never wait for the socket to become readable
	})
	return gone
}
