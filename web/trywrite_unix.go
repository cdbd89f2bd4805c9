//go:build unix

package web

import "syscall"

// rawWrites reports whether this system has the non-blocking write path.
const rawWrites = true

// tryWrite makes one write(2) of b on the socket, never waiting for it to
// take more: it returns how many bytes the socket took (perhaps none, when
// its buffer is full). The runtime's poller is not involved, so no
// goroutine parks.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			k, e := syscall.Write(int(fd), b)
			switch {
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
			case e != nil:
				werr = e
			default:
				n = k
			}
			return true // one attempt: done, whatever it took
		}
	})
	if err == nil {
		err = werr
	}
	return n, err
}
