package storage

import (
	"slices"
	"testing"
	"time"
)

// TestGather: a busy commit's wait for more requests ends as soon as it
// has the number it waits for, when its time is up (with whatever came),
// or when the committer stops; the requests keep their order.
func TestGather(t *testing.T) {
	// submit queues n requests whose write records its number in seen.
	submit := func(c *committer, from, n int, seen *[]int) {
		for i := from; i < from+n; i++ {
			c.submit(func(*writeTx) error { *seen = append(*seen, i); return nil }, func(error) {})
		}
	}
	run := func(b []request) {
		for _, r := range b {
			_ = r.fn(nil)
		}
	}

	t.Run("enough", func(t *testing.T) {
		c := newCommitter(nil)
		var seen []int
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, 10, time.Hour) }()
		for k := range 4 {
			submit(c, 3*k, 3, &seen)
		}
		select {
		case b := <-got:
			if len(b) < 10 {
				t.Fatalf("gathered %d requests, want at least 10", len(b))
			}
			run(b)
			if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}[:len(b)]; !slices.Equal(seen, want) {
				t.Fatalf("requests in the order %v, want %v", seen, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("gather went on waiting with enough requests queued")
		}
	})
	t.Run("time up", func(t *testing.T) {
		c := newCommitter(nil)
		var seen []int
		submit(c, 1, 3, &seen)
		first := []request{{fn: func(*writeTx) error { seen = append(seen, 0); return nil }, done: func(error) {}}}
		b := c.gather(first, 10, 20*time.Millisecond)
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
		got := make(chan []request, 1)
		go func() { got <- c.gather(nil, 10, time.Hour) }()
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.wake <- struct{}{}
		select {
		case b := <-got:
			if len(b) != 0 {
				t.Fatalf("gathered %d requests from an empty queue", len(b))
			}
		case <-time.After(30 * time.Second):
			t.Fatal("gather went on waiting while the committer stops")
		}
	})
}
