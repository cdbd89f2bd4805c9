package natsstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/internal/testwait"
)

func TestChannelOffsetsAcrossConnections(t *testing.T) {
	srv := natstest.Run(t)
	var pubs []*Store
	for i := range 5 {
		pubs = append(pubs, open(t, testConfig(t, srv.ClientURL(), fmt.Sprintf("p%d", i))))
	}
	const ch = "chat:room.1"
	type seen struct {
		mu   sync.Mutex
		msgs []doc.Message
	}
	readers := make([]*seen, 2)
	for i := range readers {
		rs := open(t, testConfig(t, srv.ClientURL(), fmt.Sprintf("r%d", i)))
		last, epoch, err := rs.ChannelState(ch)
		if err != nil || last != 0 || epoch == "" {
			t.Fatalf("ChannelState of a new channel = %d %q %v; want 0 and an epoch", last, epoch, err)
		}
		r := &seen{}
		readers[i] = r
		f, err := rs.FollowChannel(bg, ch, 0, func(m doc.Message, e string) {
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
		}, func(err error) { t.Errorf("reader %d: %v", i, err) })
		if err != nil {
			t.Fatal(err)
		}
		defer f()
	}
	_, epoch0, _ := pubs[0].ChannelState(ch)
	const each = 40
	var wg sync.WaitGroup
	got := make([][]uint64, len(pubs))
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				data, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("p%d-%d", i, j)})
				m, epoch, err := p.PublishMessage(bg, doc.Message{Channel: ch, Event: "msg", Data: data, User: fmt.Sprintf("u%d", i)})
				if err != nil {
					t.Errorf("publisher %d: %v", i, err)
					return
				}
				if epoch != epoch0 {
					t.Errorf("publisher %d: epoch %q, the subscribers were told %q", i, epoch, epoch0)
				}
				got[i] = append(got[i], m.Offset)
			}
		}()
	}
	wg.Wait()
	retries := int64(0)
	for _, p := range pubs {
		retries += p.Stats().MessageRetries
	}
	t.Logf("%d messages from 5 publishers, %d retries", 5*each, retries)
	offsets := map[uint64]bool{}
	for i, g := range got {
		for j := 1; j < len(g); j++ {
			if g[j] <= g[j-1] {
				t.Fatalf("publisher %d got offsets out of order: %v", i, g)
			}
		}
		for _, o := range g {
			if offsets[o] {
				t.Fatalf("offset %d given twice", o)
			}
			offsets[o] = true
		}
	}
	for o := uint64(1); o <= 5*each; o++ {
		if !offsets[o] {
			t.Fatalf("offset %d never given", o)
		}
	}
	for i, r := range readers {
		testwait.For(t, 10*time.Second, fmt.Sprintf("reader %d", i), func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return len(r.msgs) >= 5*each
		})
	}
	for i := range readers[0].msgs {
		a, b := readers[0].msgs[i], readers[1].msgs[i]
		if a.Offset != uint64(i+1) || b.Offset != a.Offset || string(a.Data) != string(b.Data) {
			t.Fatalf("message %d: reader 0 has %d %s, reader 1 %d %s", i, a.Offset, a.Data, b.Offset, b.Data)
		}
	}
	// Recovery through another connection returns exactly the rest.
	since, err := pubs[3].MessagesSince(ch, 150, 0)
	if err != nil || len(since) != 50 || since[0].Offset != 151 || string(since[0].Data) != string(readers[0].msgs[150].Data) {
		t.Fatalf("MessagesSince(150) = %d messages, %v", len(since), err)
	}
	if last, epoch, err := pubs[4].ChannelState(ch); err != nil || last != 200 || epoch != epoch0 {
		t.Fatalf("ChannelState = %d %q %v", last, epoch, err)
	}
}

func TestChannelHistoryRetractReceipts(t *testing.T) {
	srv := natstest.Run(t)
	cfg := testConfig(t, srv.ClientURL(), "n1")
	cfg.Namespaces = map[string]doc.HistoryLimit{
		"":     {MaxCount: 100},
		"chat": {MaxCount: 5},
		"tick": {MaxCount: 100, MaxAge: time.Second},
	}
	s := open(t, cfg)
	pub := func(ch string, n int) {
		t.Helper()
		for i := range n {
			if _, _, err := s.PublishMessage(bg, doc.Message{Channel: ch, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), User: "alice"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Count limit: the stream keeps the last 5; offsets keep counting.
	pub("chat:a", 8)
	msgs, err := s.MessagesSince("chat:a", 0, 0)
	if err != nil || len(msgs) != 5 || msgs[0].Offset != 4 || msgs[4].Offset != 8 {
		t.Fatalf("count-limited history = %+v, %v", msgs, err)
	}
	// Channels of namespaces not listed use the default; other channels
	// are apart.
	pub("other:b", 2)
	if last, _, _ := s.ChannelState("other:b"); last != 2 {
		t.Fatalf("other:b at %d", last)
	}
	// Retraction: a tombstone in place, data gone; again is a no-op; an
	// unknown offset is ErrNotFound.
	if err := s.Retract(bg, "chat:a", 6, "mod"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retract(bg, "chat:a", 6, "mod"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retract(bg, "chat:a", 8, "alice"); err != nil { // the newest
		t.Fatal(err)
	}
	if err := s.Retract(bg, "chat:a", 2, "mod"); !errors.Is(err, doc.ErrNotFound) {
		t.Fatalf("retract a trimmed message: %v", err)
	}
	msgs, err = s.MessagesSince("chat:a", 4, 0)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("after retraction: %+v, %v", msgs, err)
	}
	for _, m := range msgs {
		retracted := m.Offset == 6 || m.Offset == 8
		if m.Retracted != retracted || retracted && (m.Data != nil || m.RetractedBy == "" || m.User != "alice") {
			t.Fatalf("message %d: %+v", m.Offset, m)
		}
	}
	if last, _, _ := s.ChannelState("chat:a"); last != 8 {
		t.Fatalf("retracting the newest moved the last offset to %d", last)
	}
	pub("chat:a", 1)
	if last, _, _ := s.ChannelState("chat:a"); last != 9 {
		t.Fatalf("after a retraction the next offset is %d, want 9", last)
	}
	// Receipts only move forward.
	for _, r := range []struct {
		user string
		off  uint64
	}{{"bob", 5}, {"bob", 3}, {"carol", 7}, {"bob", 8}} {
		if err := s.SetReceipt(bg, r.user, "chat:a", r.off); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := s.Receipts("chat:a")
	if err != nil || rc["bob"] != 8 || rc["carol"] != 7 || len(rc) != 2 {
		t.Fatalf("receipts = %v, %v", rc, err)
	}
	// Age: once every message of a channel has aged out, its next message
	// starts a new epoch at offset 1 (never reusing an offset), and the
	// receipts of the old epoch are gone.
	pub("tick:x", 3)
	last, epoch1, _ := s.ChannelState("tick:x")
	if last != 3 {
		t.Fatalf("tick:x at %d", last)
	}
	if err := s.SetReceipt(bg, "bob", "tick:x", 3); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "messages to age out", func() bool {
		m, _ := s.MessagesSince("tick:x", 0, 0)
		return len(m) == 0
	})
	last, epoch2, err := s.ChannelState("tick:x")
	if err != nil || last != 0 || epoch2 == epoch1 || epoch2 == "" {
		t.Fatalf("after aging out: %d %q (was %q) %v", last, epoch2, epoch1, err)
	}
	m, epoch3, err := s.PublishMessage(bg, doc.Message{Channel: "tick:x", Data: json.RawMessage(`{}`)})
	if err != nil || m.Offset != 1 || epoch3 != epoch2 {
		t.Fatalf("first message of the new epoch: %d %q %v; want 1 %q", m.Offset, epoch3, err, epoch2)
	}
	if rc, _ := s.Receipts("tick:x"); len(rc) != 0 {
		t.Fatalf("receipts of the old epoch survived: %v", rc)
	}
	// Namespaces without history.
	cfg2 := cfg
	cfg2.Name = "n2"
	cfg2.Namespaces = map[string]doc.HistoryLimit{"chat": {MaxCount: 5}}
	s2 := open(t, cfg2)
	if _, _, err := s2.PublishMessage(bg, doc.Message{Channel: "nohist", Data: json.RawMessage(`{}`)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("publish without history: %v", err)
	}
	if last, epoch, err := s2.ChannelState("nohist"); last != 0 || epoch != "" || err != nil {
		t.Fatalf("ChannelState without history: %d %q %v", last, epoch, err)
	}
}

func TestUsers(t *testing.T) {
	s, _ := openOne(t)
	for _, u := range []doc.User{{ID: "u.1", Name: "Ann"}, {ID: "u2", Name: "Bo"}, {ID: "u.1", Name: "Anna"}} {
		if err := s.PutUser(bg, u); err != nil {
			t.Fatal(err)
		}
	}
	if u, ok, err := s.GetUser("u.1"); !ok || err != nil || u.Name != "Anna" {
		t.Fatalf("GetUser = %+v %v %v", u, ok, err)
	}
	if u, ok, _ := s.UserByName("Anna"); !ok || u.ID != "u.1" {
		t.Fatalf("UserByName(Anna) = %+v %v", u, ok)
	}
	if _, ok, _ := s.UserByName("Ann"); ok {
		t.Fatal("the old name still finds the user")
	}
	if _, ok, _ := s.GetUser("nobody"); ok {
		t.Fatal("unknown user found")
	}
	if err := s.PutUser(bg, doc.User{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutUser without id: %v", err)
	}
}
