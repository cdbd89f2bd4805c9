package storage

import (
	"slices"
	"testing"
	"time"
)

// TestGather: a busy commit's wait for the writes its callers expect ends
// as soon as none is expected any more (whether the last one came or was
// taken back), when its time is up (with whatever came), or when the
// committer stops; it does not wait at all when nothing is expected; the
// requests keep their order.
func TestGather(t *testing.T) {
	// submit queues n requests whose write records its number in seen,
	// each taking back one expected write once it is submitted, as a
	// document's session does.
	submit := func(c *committer, from, n int, seen *[]int) {
		for i := from; i < from+n; i++ {
			c.submit(func(*writeTx) error { *seen = append(*seen, i); return nil }, func(error) {})
			c.expect(-1)
		}
	}
	run := func(b []request) {
		for _, r := range b {
			_ = r.fn(nil)
		}
	}
	// returns waits for gather's answer, failing when it keeps waiting.
	returns := func(t *testing.T, got <-chan []request, what string) []request {
		t.Helper()
		select {
		case b := <-got:
			return b
		case <-time.After(30 * time.Second):
			t.Fatalf("gather went on waiting %s", what)
			return nil
		}
	}

	t.Run("all came", func(t *testing.T) {
		c := newCommitter(nil)
		c.expect(12)
		var seen []int
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, time.Hour) }()
		for k := range 4 {
			submit(c, 3*k, 3, &seen)
		}
		b := returns(t, got, "when every expected write had come")
		run(b)
		if !slices.Equal(seen, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
			t.Fatalf("gathered %v, want all twelve in order", seen)
		}
	})
	t.Run("taken back", func(t *testing.T) {
		c := newCommitter(nil)
		c.expect(2)
		var seen []int
		submit(c, 0, 1, &seen)
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, time.Hour) }()
		c.expect(-1) // the editor did not come back: no request
		run(returns(t, got, "after the last expected write was taken back"))
		if !slices.Equal(seen, []int{0}) {
			t.Fatalf("gathered %v, want the one queued", seen)
		}
	})
	t.Run("nothing expected", func(t *testing.T) {
		c := newCommitter(nil)
		var seen []int
		c.expect(3)
		submit(c, 0, 3, &seen)
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, time.Hour) }()
		run(returns(t, got, "with nothing expected"))
		if !slices.Equal(seen, []int{0, 1, 2}) {
			t.Fatalf("gathered %v, want the three queued", seen)
		}
	})
	t.Run("time up", func(t *testing.T) {
		c := newCommitter(nil)
		c.expect(10)
		var seen []int
		submit(c, 1, 3, &seen)
		first := []request{{fn: func(*writeTx) error { seen = append(seen, 0); return nil }, done: func(error) {}}}
		b := c.gather(first, 20*time.Millisecond)
		run(b)
		if !slices.Equal(seen, []int{0, 1, 2, 3}) {
			t.Fatalf("gathered %v, want the batch's request then the three queued", seen)
		}
		if len(c.queue) != 0 {
			t.Fatalf("%d requests left in the queue", len(c.queue))
		}
	})
	t.Run("stopping", func(t *testing.T) {
		c := newCommitter(nil)
		c.expect(10)
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, time.Hour) }()
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.wake <- struct{}{}
		if b := returns(t, got, "while the committer stops"); len(b) != 0 {
			t.Fatalf("gathered %d requests from an empty queue", len(b))
		}
	})
}
