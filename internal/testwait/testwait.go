// Package testwait is how tests wait for a condition: poll it until it
// holds or a deadline passes (NATS's checkFor), never a bare sleep.
package testwait

import (
	"testing"
	"time"
)

// For polls cond every few milliseconds until it holds, and fails the test
// (naming what it waited for) if timeout passes first.
func For(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
