//go:build !unix

package web

import (
	"errors"
	"syscall"
)

// rawWrites reports whether this system has the non-blocking write path:
// here it has not, and every write goes through the connection's own
// goroutine.
const rawWrites = false

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }

// rawWrite stands for the unix write path's state (trywrite_unix.go).
type rawWrite struct{}

func newRawWrite() *rawWrite { return &rawWrite{} }

func (*rawWrite) write(rc syscall.RawConn, b []byte) (int, error) { return tryWrite(rc, b) }
