package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

// TestIdleServerDoesNotWrite: a server nobody uses, with a dashboard
// subscribed to system:stats, publishes its figures every period without
// one commit or journal drain (counted in /metrics) over 50 periods; a
// dashboard opening later still recovers the recent figures, with
// consecutive offsets. The stats period is 20 ms here instead of a second.
func TestIdleServerDoesNotWrite(t *testing.T) {
	const period = 20 * time.Millisecond
	ts := servertest.Start(t, servertest.BeforeRun(func(srv *server.Server) { server.SetStatsInterval(srv, period) }))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base, wsURL := ts.HTTP, ts.URL

	// The dashboard.
	c, err := client.Dial(ctx, client.Config{URL: wsURL, User: "watcher"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var offsets []uint64
	got := make(chan struct{}, 1)
	if _, err := c.Subscribe(ctx, "system:stats", func(m client.Message) {
		mu.Lock()
		offsets = append(offsets, m.Offset)
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}, client.WithSince(0, "")); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(offsets)
	}
	waitStats := func(n int) {
		t.Helper()
		for count() < n {
			select {
			case <-got:
			case <-ctx.Done():
				t.Fatalf("%d stats messages, waited for %d", count(), n)
			}
		}
	}

	// Let what connecting wrote (the user it remembers) settle: its
	// journal drains after a second without writes.
	waitStats(3)
	for metricValue(t, strings.TrimPrefix(base, "http://"), "tandem_storage_journal_ops") != 0 {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("the journal never drained")
		}
	}
	commits := metricValue(t, strings.TrimPrefix(base, "http://"), "tandem_storage_commits_total")
	drains := metricValue(t, strings.TrimPrefix(base, "http://"), "tandem_storage_journal_drains_total")
	start := count()
	waitStats(start + 50)
	if c2, d2 := metricValue(t, strings.TrimPrefix(base, "http://"), "tandem_storage_commits_total"), metricValue(t, strings.TrimPrefix(base, "http://"), "tandem_storage_journal_drains_total"); c2 != commits || d2 != drains {
		t.Fatalf("over 50 stats periods: %v commits and %v journal drains (want none)", c2-commits, d2-drains)
	}
	mu.Lock()
	for i := 1; i < len(offsets); i++ {
		if offsets[i] != offsets[i-1]+1 {
			t.Errorf("stats offsets %d then %d", offsets[i-1], offsets[i])
		}
	}
	last := offsets[len(offsets)-1]
	mu.Unlock()

	// A dashboard opening now fills its charts from the recent figures.
	c2, err := client.Dial(ctx, client.Config{URL: wsURL, User: "late"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	msgs := make(chan client.Message, 200)
	if _, err := c2.Subscribe(ctx, "system:stats", func(m client.Message) { msgs <- m }, client.WithSince(0, "")); err != nil {
		t.Fatal(err)
	}
	// The recovered messages come first, then live ones.
	var rec []uint64
	for done := false; !done; {
		select {
		case m := <-msgs:
			if !m.Recovered {
				done = true
				break
			}
			rec = append(rec, m.Offset)
		case <-time.After(10 * time.Second):
			t.Fatalf("no live stats message after %d recovered", len(rec))
		}
	}
	// The system namespace keeps 60; the newest may still be on its way.
	if len(rec) < 55 || rec[len(rec)-1] < last {
		t.Fatalf("recovered %d stats messages (%v), the first dashboard had seen up to offset %d", len(rec), rec, last)
	}
	for i := 1; i < len(rec); i++ {
		if rec[i] != rec[i-1]+1 {
			t.Errorf("recovered offsets %d then %d", rec[i-1], rec[i])
		}
	}
}
