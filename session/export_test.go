package session

import (
	"testing"
	"time"
)

// SetExpectFor makes every document lend an acked editor to the op log
// for d instead of expectFor, until tb ends.
func SetExpectFor(tb testing.TB, d time.Duration) {
	expectForTest.Store(int64(d))
	tb.Cleanup(func() { expectForTest.Store(0) })
}
