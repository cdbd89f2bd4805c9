package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/testwait"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// fanNamespace is where the fan-out tests publish: no per-connection
// publish limit, no presence noise.
var fanNamespace = server.NamespaceConfig{HistorySize: 100, ClientPublish: true, Presence: "off"}

// counter follows one subscriber: it checks that offsets arrive as
// from, from+1, ... and counts them, without keeping the messages.
type counter struct {
	next   atomic.Uint64 // the offset due next
	target uint64
	done   chan struct{} // closed when target has arrived
	once   sync.Once
	bad    atomic.Value // string: the first error
	drops  atomic.Int32 // times its client lost the connection
}

func newCounter(from, target uint64) *counter {
	c := &counter{target: target, done: make(chan struct{})}
	c.next.Store(from)
	return c
}

func (c *counter) handle(m client.Message) {
	want := c.next.Load()
	if m.Offset != want {
		c.bad.CompareAndSwap(nil, fmt.Sprintf("offset %d arrived when %d was due", m.Offset, want))
	}
	c.next.Store(m.Offset + 1)
	if m.Offset == c.target {
		c.once.Do(func() { close(c.done) })
	}
}

func (c *counter) err() error {
	if s, ok := c.bad.Load().(string); ok {
		return errors.New(s)
	}
	return nil
}

// slowReaderCloses reads the server's count of 4010 closes.
func slowReaderCloses(tb testing.TB, ts *testServer) float64 {
	tb.Helper()
	var m dto.Metric
	if err := ts.Server().Metrics.SlowReaderCloses.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// stall connects a raw subscriber to channels that will never read again.
func stall(tb testing.TB, url string, channels ...string) *rawConn {
	tb.Helper()
	r := connectRaw(tb, url, "", "sloth")
	for _, ch := range channels {
		if f := r.request(map[string]any{"type": "subscribe", "channel": ch}); f.Type != proto.TypeSubscribed {
			tb.Fatalf("stalled subscriber: subscribe %s: %s", ch, f.Raw)
		}
	}
	return r
}

// publishConcurrently publishes n messages {"i":k,"pad":pad} on channel
// from `workers` goroutines sharing c. With window > 0, message k waits
// until every counter has received message k-window: the publisher goes
// no faster than the readers, so that what is measured is a rate they
// sustain rather than a backlog in their queues.
func publishConcurrently(tb testing.TB, c *client.Client, channel string, n, workers int, pad string, window int, counters []*counter) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				k := next.Add(1)
				if k > int64(n) {
					return
				}
				for _, ctr := range counters {
					for window > 0 && int64(ctr.next.Load())+int64(window) <= k {
						select {
						case <-ctr.done:
						case <-time.After(100 * time.Microsecond):
							continue
						}
						break
					}
				}
				if _, err := c.Publish(context.Background(), channel, "tick", map[string]any{"i": k, "pad": pad}, client.PublishOptions{}); err != nil {
					tb.Errorf("publish %d: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// healthySubscribers subscribes n clients to channel, each with a counter
// expecting offsets 1..target.
func healthySubscribers(tb testing.TB, url, channel string, n int, target uint64) []*counter {
	tb.Helper()
	counters := make([]*counter, n)
	for i := range counters {
		counters[i] = newCounter(1, target)
		ctr := counters[i]
		c := dial(tb, url, func(c *client.Config) {
			c.User = fmt.Sprintf("reader%d", i)
			c.OnStatus = func(s client.Status, _ error) {
				if s == client.StatusReconnecting {
					ctr.drops.Add(1)
				}
			}
		})
		if _, err := c.Subscribe(ctxT(tb), channel, counters[i].handle); err != nil {
			tb.Fatalf("subscribe reader %d: %v", i, err)
		}
	}
	return counters
}

func waitCounters(tb testing.TB, counters []*counter, timeout time.Duration) {
	tb.Helper()
	deadline := time.After(timeout)
	for i, c := range counters {
		select {
		case <-c.done:
		case <-deadline:
			tb.Fatalf("reader %d has offsets up to %d of %d after %v", i, c.next.Load()-1, c.target, timeout)
		}
		if err := c.err(); err != nil {
			tb.Fatalf("reader %d: %v", i, err)
		}
		if n := c.drops.Load(); n > 0 {
			tb.Fatalf("reader %d lost its connection %d times", i, n)
		}
	}
}

// TestSlowReader: a subscriber that never reads is closed with 4010 when
// its send queue overflows, while 100 others on the same channel receive
// every message in order.
//
// Before a stalled reader's queue grows, the kernel's socket buffers take
// some 4 MB. Pushing that through 100 healthy readers as well would make
// this test slow, so the stalled reader also subscribes to a channel of its
// own, where big ephemeral messages fill its socket, while the shared
// channel carries the stream the healthy readers check. Once the server
// has decided to close the stalled reader, the test reads it (the close
// frame can only get through its full socket if someone reads, within the
// server's write timeout) and expects 4010. fsync is off: the subject is
// fan-out, and under -race each of the 10,000 deliveries costs enough.
func TestSlowReader(t *testing.T) {
	// Not parallel: 100 clients under -race want the CPU to themselves.
	ts := startServer(t, withNoSync(), withNamespace("fan", fanNamespace), withLimits(func(l *server.LimitsConfig) {
		l.MaxQueueBytes = 64 << 10
		l.FrameRate, l.FrameBurst = 10000, 10000
	}))
	const (
		healthy = 100
		n       = 100
		channel = "fan:room"
	)
	counters := healthySubscribers(t, ts.URL, channel, healthy, n)
	slow := stall(t, ts.URL, channel, "fan:sloth")
	pub := guest(t, ts.URL, "pub")
	filler := guest(t, ts.URL, "filler")

	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { publishConcurrently(t, pub, channel, n, 4, strings.Repeat("p", 100), 0, nil) })
	// 6.4 MB for the stalled reader alone.
	big := strings.Repeat("z", 40<<10)
	for i := range 160 {
		if _, err := filler.Publish(ctxT(t), "fan:sloth", "fill", map[string]any{"i": i, "pad": big},
			client.PublishOptions{Ephemeral: true}); err != nil {
			t.Fatalf("filler: %v", err)
		}
	}
	testwait.For(t, 30*time.Second, "the stalled reader's queue to overflow", func() bool {
		return slowReaderCloses(t, ts) == 1
	})

	// Now read what the stalled reader was sent: some messages, then 4010.
	frames := 0
	for {
		_, err := slow.read(15 * time.Second)
		if err == nil {
			frames++
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != proto.CloseSlowReader {
			t.Fatalf("stalled reader: after %d frames the connection ended with %v, want close 4010", frames, err)
		}
		t.Logf("stalled reader: %d frames, then %d %q", frames, ce.Code, ce.Text)
		break
	}

	wg.Wait()
	waitCounters(t, counters, 60*time.Second)
	t.Logf("%d healthy readers got all %d messages in %v", healthy, n, time.Since(start))
	if got := slowReaderCloses(t, ts); got != 1 {
		t.Fatalf("%v connections closed as slow readers, want only the stalled one", got)
	}
}

// BenchmarkFanout measures how fast 100 subscribers of one channel receive
// what is published (deliveries/s: messages × 100 over the time from the
// first publish to the last delivery), without and with one stalled
// subscriber on the same channel. fsync is off: the subject is fan-out.
// Each iteration is one published message of about 1 KB; run it bounded:
//
//	go test -run '^$' -bench BenchmarkFanout -benchtime 5000x ./server
func BenchmarkFanout(b *testing.B) {
	for _, stalled := range []bool{false, true} {
		name := "healthy100"
		if stalled {
			name = "healthy100+stalled1"
		}
		b.Run(name, func(b *testing.B) {
			if b.N > 100000 {
				b.Fatalf("b.N = %d: bound the run with -benchtime Nx", b.N)
			}
			ts := startServer(b, withNoSync(), withNamespace("fan", fanNamespace), withLimits(func(l *server.LimitsConfig) {
				l.MaxQueueBytes = 256 << 10
				l.FrameRate, l.FrameBurst = 1e6, 1e6
			}))
			const channel = "fan:bench"
			counters := healthySubscribers(b, ts.URL, channel, 100, uint64(b.N))
			var slow *rawConn
			if stalled {
				slow = stall(b, ts.URL, channel)
			}
			pub := guest(b, ts.URL, "pub")
			pad := strings.Repeat("p", 1000)
			b.ResetTimer()
			start := time.Now()
			publishConcurrently(b, pub, channel, b.N, 8, pad, 200, counters)
			waitCounters(b, counters, 2*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(100*b.N)/elapsed.Seconds(), "deliveries/s")
			if slow != nil {
				closed := 0.0
				for {
					if _, err := slow.read(time.Second); err != nil { // a timeout: still open
						var ce *websocket.CloseError
						if errors.As(err, &ce) && ce.Code == proto.CloseSlowReader {
							closed = 1
						}
						break
					}
				}
				b.ReportMetric(closed, "stalled_closed_4010")
			}
		})
	}
}

// TestWriteTimeout: a client that stops reading, whose queue stays under
// its bounds but whose socket is full, is dropped once a frame write has
// been blocked for the write timeout, while another subscriber of the same
// channel keeps receiving.
func TestWriteTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	ts := startServer(t, withNoSync(), withNamespace("fan", fanNamespace), withLimits(func(l *server.LimitsConfig) {
		l.WriteTimeout = server.Duration(timeout)
		l.MaxQueueBytes = 256 << 20                 // the queue never overflows,
		l.PingInterval = server.Duration(time.Hour) // nor does the read deadline pass: only the write timeout can end it
		l.FrameRate, l.FrameBurst = 10000, 10000
	}))
	slow := stall(t, ts.URL, "fan:big")
	healthy := guest(t, ts.URL, "healthy")
	got := make(chan int, 1024)
	if _, err := healthy.Subscribe(ctxT(t), "fan:big", func(m client.Message) {
		var d struct{ I int }
		_ = json.Unmarshal(m.Data, &d)
		got <- d.I
	}); err != nil {
		t.Fatal(err)
	}
	pub := guest(t, ts.URL, "pub")
	conns := ts.Server().Web.Conns()
	big := strings.Repeat("z", 40<<10)
	start := time.Now()
	for i := 0; ts.Server().Web.Conns() == conns; i++ {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the stalled reader is still connected after %d messages (%d bytes)", i, i*len(big))
		}
		if _, err := pub.Publish(ctxT(t), "fan:big", "fill", map[string]any{"i": i, "pad": big}, client.PublishOptions{Ephemeral: true}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		select { // the healthy subscriber keeps up
		case k := <-got:
			if k != i {
				t.Fatalf("healthy subscriber got message %d, want %d", k, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("healthy subscriber did not get message %d", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("stalled reader dropped %v after the first message", time.Since(start).Round(time.Millisecond))
	// Its socket is closed: reading it now ends in an error, not a close
	// frame (none could get through).
	for {
		if _, err := slow.read(10 * time.Second); err != nil {
			break
		}
	}
}
