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
	return newRawWrite().write(rc, b)
}

// rawWrite is tryWrite with its state and its callback made once, so that
// a write worker's writes allocate nothing. One goroutine uses it at a
// time.
type rawWrite struct {
	b        []byte
	n        int
	err      error
	callback func(fd uintptr) bool
}

func newRawWrite() *rawWrite {
	w := &rawWrite{}
	w.callback = w.attempt
	return w
}

// write is tryWrite.
func (w *rawWrite) write(rc syscall.RawConn, b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := rc.Write(w.callback)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	if err == nil {
		err = werr
	}
	return n, err
}

// attempt is the one write(2), retried only when a signal interrupted it.
func (w *rawWrite) attempt(fd uintptr) bool {
	for {
		k, e := syscall.Write(int(fd), w.b)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
		case e != nil:
			w.err = e
		default:
			w.n = k
		}
		return true // one attempt: done, whatever it took
	}
}
