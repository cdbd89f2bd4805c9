//go:build !linux

package web

// canAwaitInput reports whether awaitInput can wait on this system: here
// it cannot, and an idle connection's read goroutine waits in gorilla's
// reader.
const canAwaitInput = false

func socketReadable(uintptr, []byte) bool { return true }
