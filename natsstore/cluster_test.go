package natsstore

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/internal/testwait"
)

// streamState returns a server's own view of a stream (its replica),
// or false when it has none yet.
func streamState(srv *server.Server, stream string) (server.StreamState, bool) {
	jsz, err := srv.Jsz(&server.JSzOptions{Streams: true})
	if err != nil {
		return server.StreamState{}, false
	}
	for _, acc := range jsz.AccountDetails {
		for _, sd := range acc.Streams {
			if sd.Name == stream {
				return sd.State, true
			}
		}
	}
	return server.StreamState{}, false
}

// TestClusterContention runs the contention test on a three-server
// JetStream cluster with every stream and bucket at three replicas, one
// writer connected to each server first. When a third of the ops are in,
// one server is shut down; the writers connected to it reconnect to the
// others, and appends go on after a pause (a new stream leader, if it led
// the stream). When another third are in, it comes back, and it must catch
// up with the others. At the end every acknowledged op is in the log,
// once, at the version its writer was told.
func TestClusterContention(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster: not in -short")
	}
	c := natstest.RunCluster(t)
	var stores []*Store
	for i := range 3 {
		cfg := testConfig(t, c.URL(i), fmt.Sprintf("n%d", i+1))
		cfg.Replicas = 3
		stores = append(stores, open(t, cfg))
	}
	const id = "clustered"
	if _, err := stores[0].CreateDoc(bg, doc.Info{ID: id}); err != nil {
		t.Fatal(err)
	}
	const each = 60
	var progress atomic.Int64
	done := make(chan contention, 1)
	go func() { done <- contend(t, stores, id, each, &progress) }()

	testwait.For(t, 60*time.Second, "a third of the ops", func() bool { return progress.Load() >= each })
	// Shut down the op stream's leader, so that the others must elect a
	// new one while the writers go on.
	opsStream := stores[0].n.opsStream
	victim := -1
	for i, srv := range c.Srvs {
		if srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, opsStream) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatal("no leader of the op stream")
	}
	c.Stop(victim)
	stoppedAt := progress.Load()
	t.Logf("server s%d, the op stream's leader, shut down at %d ops", victim+1, stoppedAt)
	testwait.For(t, 60*time.Second, "appends to go on without it", func() bool { return progress.Load() >= stoppedAt+each/2 })
	c.Restart(victim)
	t.Logf("server s%d restarted at %d ops", victim+1, progress.Load())

	var res contention
	select {
	case res = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the writers did not finish")
	}
	all := checkLog(t, stores[2], id, res)
	t.Logf("%d ops by 3 writers on 3 servers, %d conflicts, longest pause without an ack %s",
		len(all), res.conflicts, res.maxPause.Round(time.Millisecond))
	if res.maxPause > 30*time.Second {
		t.Fatalf("appends paused for %s", res.maxPause)
	}

	// The restarted server catches up: its replica of the op stream ends
	// where the others' do.
	other := (victim + 1) % 3
	testwait.For(t, 30*time.Second, "the restarted server to catch up", func() bool {
		want, ok0 := streamState(c.Srvs[other], opsStream)
		got, ok1 := streamState(c.Srvs[victim], opsStream)
		return ok0 && ok1 && got.LastSeq == want.LastSeq && got.Msgs == want.Msgs
	})
	// And a store connected to it alone reads the whole log.
	only := open(t, testConfig(t, c.Srvs[victim].ClientURL(), "late"))
	if info, err := only.GetDoc(id); err != nil || info.Version != res.total {
		t.Fatalf("through the restarted server: v%d %v", info.Version, err)
	}

	// Channel offsets on the replicated stream (whose leader checks the
	// expectation on the channel's subject filter while earlier writes
	// are still being replicated): 3 publishers, one per server.
	const ch, per = "chat:clustered", 30
	var wg sync.WaitGroup
	offsets := make(chan uint64, 3*per)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				m, _, err := s.PublishMessage(bg, doc.Message{Channel: ch, Data: json.RawMessage(fmt.Sprintf(`{"p":%d,"j":%d}`, i, j))})
				if err != nil {
					t.Errorf("publisher %d: %v", i, err)
					return
				}
				offsets <- m.Offset
			}
		}()
	}
	wg.Wait()
	close(offsets)
	seen := map[uint64]bool{}
	for o := range offsets {
		if seen[o] {
			t.Fatalf("offset %d given twice", o)
		}
		seen[o] = true
	}
	msgs, err := only.MessagesSince(ch, 0, 0)
	if err != nil || len(msgs) != 3*per {
		t.Fatalf("history: %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.Offset != uint64(i+1) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
	}
}
