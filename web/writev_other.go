//go:build !linux

package web

import (
	"errors"
	"syscall"
)

// sysWriter has no raw write path on this system: every write goes
// through the connection's own goroutine (net.Buffers).
type sysWriter struct{}

// rawWrites reports whether this system has the non-blocking write path.
const rawWrites = false

func (s *sysWriter) writev(syscall.RawConn, [][]byte, bool) (int, error) {
	return 0, errors.ErrUnsupported
}
