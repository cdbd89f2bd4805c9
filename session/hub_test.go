package session_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/session"
	"github.com/tandemhq/tandem/storage"
)

// slowHistory is the channel history with reads that take delay: a long
// history on a slow disk.
type slowHistory struct {
	session.ChannelHistory
	delay atomic.Int64 // nanoseconds
}

func (h *slowHistory) MessagesSince(channel string, offset uint64, limit int) ([]doc.Message, error) {
	time.Sleep(time.Duration(h.delay.Load()))
	return h.ChannelHistory.MessagesSince(channel, offset, limit)
}

// frameSub is a subscriber that keeps every frame it is sent.
type frameSub struct {
	id     string
	mu     sync.Mutex
	frames [][]byte
}

func (s *frameSub) ClientID() string { return s.id }

func (s *frameSub) Send(frame []byte) bool {
	s.mu.Lock()
	s.frames = append(s.frames, frame)
	s.mu.Unlock()
	return true
}

// checkOffsets checks what s received: each subscribed frame's messages
// are consecutive and end at or before its offset (at it when recovered),
// and live messages continue from the latest offset seen, once each.
func (s *frameSub) checkOffsets(t *testing.T) (subscribes int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var last uint64
	for _, b := range s.frames {
		var f struct {
			Type      string `json:"type"`
			Offset    uint64 `json:"offset"`
			Recovered bool   `json:"recovered"`
			Messages  []struct {
				Offset uint64 `json:"offset"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case "subscribed":
			subscribes++
			if f.Offset < last {
				t.Fatalf("%s: subscribed at %d after live offset %d", s.id, f.Offset, last)
			}
			for i, m := range f.Messages {
				if i > 0 && m.Offset != f.Messages[i-1].Offset+1 || m.Offset > f.Offset {
					t.Fatalf("%s: subscribed at %d recovered offset %d at %d", s.id, f.Offset, m.Offset, i)
				}
			}
			if n := len(f.Messages); f.Recovered && n > 0 && f.Messages[n-1].Offset != f.Offset {
				t.Fatalf("%s: subscribed at %d, recovered up to %d", s.id, f.Offset, f.Messages[n-1].Offset)
			}
			last = f.Offset
		case "message":
			if f.Offset != last+1 {
				t.Fatalf("%s: live offset %d after %d", s.id, f.Offset, last)
			}
			last = f.Offset
		}
	}
	return subscribes
}

// publish publishes on the hub and waits for the outcome.
func publish(t *testing.T, hub *session.Hub, channel string, data string) (uint64, time.Duration) {
	t.Helper()
	type res struct {
		off uint64
		err error
	}
	done := make(chan res, 1)
	start := time.Now()
	hub.Publish(session.Publication{Channel: channel, Event: "m", Data: json.RawMessage(data)},
		func(off uint64, err error) { done <- res{off, err} })
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.off, time.Since(start)
	case <-time.After(10 * time.Second):
		t.Fatal("a publish did not complete in 10 s")
		return 0, 0
	}
}

// TestSlowRecoveryDoesNotStallPublishes: subscribers recovering a history
// whose every read takes a second do not delay the channel's publishes
// (whose completions on the committer take the channel's lock), and each
// of them still sees every offset once, in order.
func TestSlowRecoveryDoesNotStallPublishes(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	db, err := storage.Open(filepath.Join(t.TempDir(), "tandem.db"), storage.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	history := &slowHistory{ChannelHistory: db}
	hub := session.NewHub(session.HubConfig{History: history, Receipts: db, Users: db, Logger: log})
	defer hub.Close()
	const channel = "chat:slow"
	for i := range 50 {
		publish(t, hub, channel, fmt.Sprintf(`{"n":%d}`, i))
	}
	history.delay.Store(int64(time.Second))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	subs := make([]*frameSub, 4)
	for i := range subs {
		subs[i] = &frameSub{id: fmt.Sprintf("c_%d", i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := hub.Subscribe(session.SubscribeRequest{
					Channel: channel, Since: &proto.Since{}, Sub: subs[i],
					Member: proto.Member{ClientID: subs[i].id, User: proto.User{ID: subs[i].id}},
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the subscribers start reading
	var worst time.Duration
	for i := range 10 {
		_, d := publish(t, hub, channel, fmt.Sprintf(`{"live":%d}`, i))
		worst = max(worst, d)
	}
	close(stop)
	wg.Wait()
	// Generous: a publish is one commit; it waited for a whole read (a
	// second) when subscribers read under the channel's lock.
	if worst > 500*time.Millisecond {
		t.Errorf("slowest publish took %v while subscribers recovered slowly, want under 500ms", worst)
	}
	for _, s := range subs {
		if n := s.checkOffsets(t); n == 0 {
			t.Errorf("%s never got subscribed", s.id)
		}
	}
}
