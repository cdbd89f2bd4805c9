package web

import (
	"syscall"
	"unsafe"
)

// sysWriter writes pieces with writev system calls on a raw socket. It is
// reused from one write to the next by one goroutine at a time.
type sysWriter struct {
	iov   []syscall.Iovec
	first int // the first piece not yet written whole
	n     int // bytes written by the current write
	err   error
	block bool
	call  func(fd uintptr) bool // s.writeFD, bound once
}

// rawWrites reports whether this system has the non-blocking write path.
const rawWrites = true

// writev writes bufs to rc and returns how many bytes it wrote. Without
// block it makes a single attempt, never waiting for the socket: it may
// write only part of bufs, or nothing. With block it waits for the socket
// (through the runtime's poller) until everything is written or an error
// occurs.
func (s *sysWriter) writev(rc syscall.RawConn, bufs [][]byte, block bool) (int, error) {
	if s.call == nil {
		s.call = s.writeFD
	}
	s.iov = s.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			s.iov = append(s.iov, v)
		}
	}
	s.first, s.n, s.err, s.block = 0, 0, nil, block
	if len(s.iov) == 0 {
		return 0, nil
	}
	err := rc.Write(s.call)
	clear(s.iov) // keep no frame alive
	if err == nil {
		err = s.err
	}
	return s.n, err
}

// writeFD is the system call, made while the runtime holds the socket's
// write lock. It returns true when done (all written, an error, or one
// attempt made without block) and false to wait until the socket can take
// more.
func (s *sysWriter) writeFD(fd uintptr) bool {
	for {
		iov := s.iov[s.first:]
		n := min(len(iov), 1024) // IOV_MAX
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return !s.block
		case e != 0:
			s.err = e
			return true
		}
		if r == 0 { // nothing taken: wait (or give up) as for EAGAIN
			return !s.block
		}
		s.n += int(r)
		s.advance(int(r))
		if s.first == len(s.iov) || !s.block {
			return true
		}
	}
}

// advance moves past n written bytes.
func (s *sysWriter) advance(n int) {
	for n > 0 {
		v := &s.iov[s.first]
		if uint64(n) >= v.Len {
			n -= int(v.Len)
			s.first++
			continue
		}
		v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), n))
		v.SetLen(int(v.Len) - n)
		n = 0
	}
}
