package natsstore

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/internal/testwait"
)

// eventLog collects presence events.
type eventLog struct {
	mu  sync.Mutex
	evs []PresenceEvent
}

func (l *eventLog) add(ev PresenceEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) has(kind, client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Kind == kind && ev.Member.ClientID == client {
			return true
		}
	}
	return false
}

func clients(ms []Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Node+"/"+m.ClientID)
	}
	sort.Strings(out)
	return out
}

func TestPresenceAcrossNodes(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, testConfig(t, srv.ClientURL(), "A"))
	b := open(t, testConfig(t, srv.ClientURL(), "B"))
	c := open(t, testConfig(t, srv.ClientURL(), "C"))
	const ch = "chat:lobby"
	// Let the nodes hear each other's heartbeats.
	testwait.For(t, 5*time.Second, "nodes to know each other", func() bool {
		c.pres.mu.Lock()
		defer c.pres.mu.Unlock()
		return len(c.pres.nodes) == 2
	})
	info := json.RawMessage(`{"user":{"id":"ann"}}`)
	if err := a.Presence().Join(ch, "a1", info); err != nil {
		t.Fatal(err)
	}
	if err := b.Presence().Join(ch, "b1", info); err != nil {
		t.Fatal(err)
	}
	// C, with no member of its own, lists A's and B's.
	var log eventLog
	members, stop, err := c.Presence().Watch(ch, log.add)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if got := fmt.Sprint(clients(members)); got != "[A/a1 B/b1]" {
		t.Fatalf("C lists %s", got)
	}
	// Later changes reach C as events.
	if err := a.Presence().Join(ch, "a2", info); err != nil {
		t.Fatal(err)
	}
	if err := b.Presence().Update(ch, "b1", json.RawMessage(`{"state":"typing"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Presence().Leave(ch, "a1"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "join, update and leave at C", func() bool {
		return log.has(PresenceJoin, "a2") && log.has(PresenceUpdate, "b1") && log.has(PresenceLeave, "a1")
	})
	if got, _ := c.Presence().Members(bg, ch); fmt.Sprint(clients(got)) != "[A/a2 B/b1]" {
		t.Fatalf("C lists %v", clients(got))
	}
	// A node that does not watch the channel asks the others.
	d := open(t, testConfig(t, srv.ClientURL(), "D"))
	testwait.For(t, 5*time.Second, "D to hear the others", func() bool {
		d.pres.mu.Lock()
		defer d.pres.mu.Unlock()
		return len(d.pres.nodes) == 3
	})
	if got, err := d.Presence().Members(bg, ch); err != nil || fmt.Sprint(clients(got)) != "[A/a2 B/b1]" {
		t.Fatalf("D lists %v, %v", clients(got), err)
	}

	// B dies: its connection drops without a goodbye. Its members leave
	// at C within NodeTimeout + HeartbeatInterval (400 + 100 ms here); the
	// bound checked is 3 s, generous for a loaded machine.
	start := time.Now()
	b.Conn().Close()
	testwait.For(t, 3*time.Second, "B's member to leave at C", func() bool { return log.has(PresenceLeave, "b1") })
	t.Logf("dead node's member left after %s", time.Since(start).Round(time.Millisecond))
	if got, _ := c.Presence().Members(bg, ch); fmt.Sprint(clients(got)) != "[A/a2]" {
		t.Fatalf("after B died C lists %v", clients(got))
	}
	// A closing cleanly says goodbye: its members leave at once.
	_ = a.Close()
	testwait.For(t, 3*time.Second, "A's member to leave at C", func() bool { return log.has(PresenceLeave, "a2") })
}

func TestEphemeral(t *testing.T) {
	srv := natstest.Run(t)
	a := open(t, testConfig(t, srv.ClientURL(), "A"))
	b := open(t, testConfig(t, srv.ClientURL(), "B"))
	var mu sync.Mutex
	var got []string
	unsub, err := b.SubscribeEphemeral(EphemeralDoc, "doc.x", func(p []byte) {
		mu.Lock()
		got = append(got, string(p))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	unsubA, err := a.SubscribeEphemeral(EphemeralDoc, "doc.x", func(p []byte) {
		mu.Lock()
		own = append(own, string(p))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsubA()
	for i := range 3 {
		if err := a.PublishEphemeral(EphemeralDoc, "doc.x", []byte(fmt.Sprintf("cursor %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PublishEphemeral(EphemeralChannel, "doc.x", []byte("elsewhere")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "ephemeral messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	unsub()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[cursor 0 cursor 1 cursor 2]" {
		t.Fatalf("B got %v", got)
	}
	if len(own) != 0 {
		t.Fatalf("A heard itself: %v", own)
	}
	if err := a.PublishEphemeral("bogus", "x", nil); err == nil {
		t.Fatal("a bad kind was accepted")
	}
}
