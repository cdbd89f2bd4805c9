package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// watchPresence subscribes c to channel and returns its presence events.
func watchPresence(tb testing.TB, c *client.Client, channel string) (*client.Subscription, <-chan client.PresenceEvent) {
	tb.Helper()
	events := make(chan client.PresenceEvent, 64)
	sub, err := c.Subscribe(ctxT(tb), channel, nil, client.OnPresence(func(e client.PresenceEvent) { events <- e }))
	if err != nil {
		tb.Fatalf("subscribe %s: %v", channel, err)
	}
	return sub, events
}

// TestPresence: join, update and leave are seen by the others, and an
// update is never a leave and a join.
func TestPresence(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	const channel = "chat:presence"
	ann := guest(t, ts.URL, "ann")
	annSub, events := watchPresence(t, ann, channel)

	bob := guest(t, ts.URL, "bob")
	bobSub, err := bob.Subscribe(ctx, channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := bobSub.Members(); len(got) != 2 {
		t.Fatalf("bob's subscribed lists %d members, want ann and bob: %+v", len(got), got)
	}
	e := recv(t, events, 15*time.Second, "bob's join")
	if e.Event != "join" || e.Member.ClientID != bob.ClientID() || e.Member.User.ID != "bob" || e.Member.User.Color == "" {
		t.Fatalf("got %+v, want bob's join", e)
	}

	if err := bobSub.SetPresence(ctx, map[string]bool{"typing": true}); err != nil {
		t.Fatal(err)
	}
	e = recv(t, events, 15*time.Second, "bob's update")
	if e.Event != "update" || e.Member.ClientID != bob.ClientID() || string(e.Member.State) != `{"typing":true}` {
		t.Fatalf("got %+v, want bob's update to typing", e)
	}
	var seen bool
	for _, m := range annSub.Members() {
		seen = seen || (m.ClientID == bob.ClientID() && string(m.State) == `{"typing":true}`)
	}
	if !seen {
		t.Fatalf("ann's member list %+v lacks bob's new state", annSub.Members())
	}

	if err := bobSub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	e = recv(t, events, 15*time.Second, "bob's leave")
	if e.Event != "leave" || e.Member.ClientID != bob.ClientID() {
		t.Fatalf("got %+v, want bob's leave", e)
	}
	// Nothing else came: the update was not a leave plus a join.
	if err := ann.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		t.Fatalf("unexpected presence event %+v", e)
	default:
	}
	if n := annSub.MemberCount(); n != 1 {
		t.Fatalf("ann counts %d members, want 1", n)
	}

	// The client refuses presence on a subscription that ended (the
	// server's refusal is in TestBadFrames).
	if err := bobSub.SetPresence(ctx, nil); !errors.Is(err, client.ErrUnsubscribed) {
		t.Fatalf("presence after unsubscribing: %v, want ErrUnsubscribed", err)
	}
}

// waitPresence reads events until one matches.
func waitPresence(tb testing.TB, events <-chan client.PresenceEvent, what string, match func(client.PresenceEvent) bool) client.PresenceEvent {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if match(e) {
				return e
			}
		case <-deadline:
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestPresenceAbruptDisconnect: a client whose TCP connection vanishes
// without a close frame, and one that stops answering pings, leave within
// two ping intervals.
func TestPresenceAbruptDisconnect(t *testing.T) {
	// Not parallel: it measures time.
	const ping = time.Second
	ts := startServer(t, withLimits(func(l *server.LimitsConfig) { l.PingInterval = server.Duration(ping) }))
	const channel = "chat:abrupt"
	ann := guest(t, ts.URL, "ann")
	_, events := watchPresence(t, ann, channel)

	for _, tc := range []struct {
		name string
		kill func(*rawConn)
	}{
		// The socket closes under the WebSocket: no close frame.
		{"tcp closed", func(r *rawConn) { _ = r.ws.UnderlyingConn().Close() }},
		// The client stays connected but never reads again, so it answers
		// no ping.
		{"silent", func(*rawConn) {}},
	} {
		r := connectRaw(t, ts.URL, "", "carl")
		f := r.request(map[string]any{"type": "subscribe", "channel": channel})
		if f.Type != proto.TypeSubscribed {
			t.Fatalf("%s: subscribe: %s", tc.name, f.Raw)
		}
		carl := waitPresence(t, events, "carl's join", func(e client.PresenceEvent) bool {
			return e.Event == "join" && e.Member.User.ID == "carl"
		}).Member.ClientID
		start := time.Now() // carl's last frame was before this
		tc.kill(r)
		waitPresence(t, events, "carl's leave", func(e client.PresenceEvent) bool {
			return e.Event == "leave" && e.Member.ClientID == carl
		})
		if took := time.Since(start); took > 2*ping+time.Second { // slack: delivering the leave to ann under -race
			t.Fatalf("%s: carl left %v after his last sign of life, want at most 2 ping intervals (%v)", tc.name, took, 2*ping)
		} else {
			t.Logf("%s: left after %v", tc.name, took)
		}
	}
}

// TestPresenceCountOnly: a count-only namespace (dashboard) gives
// subscribed a member_count and no member list.
func TestPresenceCountOnly(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const channel = "dashboard:sales"
	a := connectRaw(t, ts.URL, "", "a")
	a.request(map[string]any{"type": "subscribe", "channel": channel})
	b := connectRaw(t, ts.URL, "", "b")
	f := b.request(map[string]any{"type": "subscribe", "channel": channel})
	if f.MemberCount == nil || *f.MemberCount != 2 || len(f.Members) != 0 {
		t.Fatalf("subscribed in a count-only namespace: %s; want member_count 2 and no members", f.Raw)
	}
}
