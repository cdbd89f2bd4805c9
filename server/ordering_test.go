package server_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// TestOrdering: 20 publishers and 50 subscribers on one channel; every
// subscriber sees offsets 1..N in order, each exactly once, and each
// publisher's messages in the order it published them.
func TestOrdering(t *testing.T) {
	// Not parallel: 70 clients under -race want the CPU to themselves.
	ts := startServer(t)
	ctx := ctxT(t)
	const (
		publishers  = 20
		subscribers = 50
		each        = 10
		n           = publishers * each
		channel     = "chat:ordering"
	)
	cols := make([]*collector, subscribers)
	for i := range cols {
		cols[i] = newCollector()
		c := guest(t, ts.URL, fmt.Sprintf("reader%d", i))
		if _, err := c.Subscribe(ctx, channel, cols[i].handle); err != nil {
			t.Fatalf("subscribe %d: %v", i, err)
		}
	}
	pubs := make([]*client.Client, publishers)
	for p := range pubs {
		pubs[p] = guest(t, ts.URL, fmt.Sprintf("writer%d", p))
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		offsets = map[uint64]bool{}
	)
	for p, c := range pubs {
		wg.Go(func() {
			for i := range each {
				off, err := c.Publish(ctx, channel, "message", map[string]int{"p": p, "i": i}, client.PublishOptions{})
				if err != nil {
					t.Errorf("publisher %d message %d: %v", p, i, err)
					return
				}
				mu.Lock()
				if offsets[off] {
					t.Errorf("offset %d given twice", off)
				}
				offsets[off] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for off := uint64(1); off <= n; off++ {
		if !offsets[off] {
			t.Fatalf("no publish got offset %d", off)
		}
	}
	for i, col := range cols {
		msgs := col.wait(t, n, 20*time.Second)
		who := fmt.Sprintf("subscriber %d", i)
		checkOffsets(t, who, msgs, 1, n)
		next := make([]int, publishers)
		for _, m := range msgs {
			var d struct{ P, I int }
			if err := m.Decode(&d); err != nil {
				t.Fatalf("%s: offset %d: data %s: %v", who, m.Offset, m.Data, err)
			}
			if d.I != next[d.P] {
				t.Fatalf("%s: publisher %d's message %d arrived when %d was due", who, d.P, d.I, next[d.P])
			}
			next[d.P]++
		}
	}
}

// TestSubscribeWhilePublishing subscribes with since, again and again,
// while publishes are being committed. The subscribed frame must hold
// every message after since up to its offset (recovered: true), and the
// first live message must be offset+1: an offset assigned but not yet
// committed must not be announced in subscribed.offset and then delivered
// live after it (a client would drop it as already seen).
func TestSubscribeWhilePublishing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withLimits(func(l *server.LimitsConfig) { l.FrameRate, l.FrameBurst = 1e5, 1e5 }))
	ctx := ctxT(t)
	const channel = "chat:busy"
	pub := guest(t, ts.URL, "busy-writer")
	first, err := pub.Publish(ctx, channel, "m", map[string]int{"i": 0}, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	probe := connectRaw(t, ts.URL, "", "probe")
	epoch := probe.request(map[string]any{"type": "subscribe", "channel": channel}).Epoch

	var published atomic.Uint64
	published.Store(first)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 { // several publishes in flight at once
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				off, err := pub.Publish(ctx, channel, "m", map[string]int{"w": w, "i": i}, client.PublishOptions{})
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				for {
					cur := published.Load()
					if off <= cur || published.CompareAndSwap(cur, off) {
						break
					}
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	for round := range 25 {
		since := published.Load() - 1
		r := connectRaw(t, ts.URL, "", fmt.Sprintf("late%d", round))
		f := r.request(map[string]any{"type": "subscribe", "channel": channel,
			"since": map[string]any{"offset": since, "epoch": epoch}})
		if f.Type != proto.TypeSubscribed {
			t.Fatalf("round %d: subscribe: %s", round, f.Raw)
		}
		if !f.Recovered {
			t.Errorf("round %d: since %d, subscribed.offset %d: recovered false with the whole history stored", round, since, f.Offset)
		}
		for i, m := range f.Messages {
			if want := since + 1 + uint64(i); m.Offset != want {
				t.Fatalf("round %d: recovered message %d has offset %d, want %d", round, i, m.Offset, want)
			}
		}
		if got := since + uint64(len(f.Messages)); got != f.Offset {
			t.Errorf("round %d: recovered up to %d but subscribed.offset is %d", round, got, f.Offset)
		}
		live := r.next("a live message", func(f frame) bool { return f.Type == proto.TypeMessage })
		if live.Offset != f.Offset+1 {
			t.Errorf("round %d: subscribed.offset %d, first live message %d (want %d)", round, f.Offset, live.Offset, f.Offset+1)
		}
		_ = r.ws.Close()
		if t.Failed() {
			return
		}
	}
}

// decodeText returns a message's data.text.
func decodeText(tb testing.TB, data json.RawMessage) string {
	tb.Helper()
	var d struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		tb.Fatalf("data %s: %v", data, err)
	}
	return d.Text
}
