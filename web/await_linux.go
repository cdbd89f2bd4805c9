package web

import "syscall"

// canAwaitInput reports whether awaitInput can wait on this system.
const canAwaitInput = true

// socketReadable reports whether a read of the socket would not block:
// it has data, or it is at its end or failed (the read then says so).
// One non-blocking peek into buf (at least a byte), which it leaves in
// the socket.
func socketReadable(fd uintptr, buf []byte) bool {
	for {
		_, _, err := syscall.Recvfrom(int(fd), buf[:1], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			return true
		}
	}
}
