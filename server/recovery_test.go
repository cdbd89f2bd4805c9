package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// publishN publishes n messages {"i": k} on channel and returns the last
// offset.
func publishN(tb testing.TB, c *client.Client, channel string, from, n int) uint64 {
	tb.Helper()
	var off uint64
	for k := from; k < from+n; k++ {
		var err error
		off, err = c.Publish(ctxT(tb), channel, "message", map[string]int{"i": k}, client.PublishOptions{})
		if err != nil {
			tb.Fatalf("publish %d on %s: %v", k, channel, err)
		}
	}
	return off
}

// TestRecovery: what was published while a subscriber was away arrives
// when it subscribes again from its last position, with recovered true,
// before anything live.
func TestRecovery(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	const channel = "chat:recovery"
	pub := guest(t, ts.URL, "bea")

	ann := guest(t, ts.URL, "ann")
	first := newCollector()
	sub, err := ann.Subscribe(ctx, channel, first.handle)
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, channel, 1, 3)
	checkOffsets(t, "first subscription", first.wait(t, 3, 15*time.Second), 1, 3)
	// The channel had no history, hence no epoch, when ann subscribed:
	// the position's epoch is "" and matches the epoch made since.
	off, epoch := sub.Position()
	if off != 3 {
		t.Fatalf("position after 3 messages: %d %q", off, epoch)
	}
	if err := sub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}

	publishN(t, pub, channel, 4, 5) // offsets 4..8, while ann is away

	events := make(chan client.SubscribedEvent, 1)
	again := newCollector()
	sub, err = ann.Subscribe(ctx, channel, again.handle, client.WithSince(off, epoch),
		client.OnSubscribed(func(e client.SubscribedEvent) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	ev := recv(t, events, 15*time.Second, "subscribed event")
	if !ev.Resumed || !ev.Recovered || ev.Offset != 8 || ev.Epoch == "" {
		t.Fatalf("subscribed event %+v: want resumed and recovered at offset 8, with an epoch", ev)
	}
	if _, e := sub.Position(); e != ev.Epoch {
		t.Fatalf("position's epoch %q, subscribed said %q", e, ev.Epoch)
	}
	if !sub.Recovered() {
		t.Fatal("Subscription.Recovered() is false")
	}
	publishN(t, pub, channel, 9, 1) // live
	msgs := again.wait(t, 6, 15*time.Second)
	checkOffsets(t, "resubscription", msgs, 4, 9)
	for _, m := range msgs {
		if want := m.Offset <= 8; m.Recovered != want {
			t.Fatalf("offset %d: Recovered %v, want %v", m.Offset, m.Recovered, want)
		}
	}
}

// TestRecoveryPastHistoryLimit: a subscriber further behind than the
// channel's history gets recovered false (and what is left); so does one
// from another epoch.
func TestRecoveryPastHistoryLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withNamespace("small", server.NamespaceConfig{HistorySize: 3, ClientPublish: true, Presence: "full"}))
	ctx := ctxT(t)
	const channel = "small:room"
	pub := guest(t, ts.URL, "pub")
	publishN(t, pub, channel, 1, 2)

	probe := connectRaw(t, ts.URL, "", "probe")
	sf := probe.request(map[string]any{"type": "subscribe", "channel": channel})
	if sf.Offset != 2 || sf.Epoch == "" {
		t.Fatalf("subscribed: %s", sf.Raw)
	}
	epoch := sf.Epoch
	publishN(t, pub, channel, 3, 8) // offsets 3..10; history keeps 8..10

	r := connectRaw(t, ts.URL, "", "late")
	f := r.request(map[string]any{"type": "subscribe", "channel": channel, "since": map[string]any{"offset": 2, "epoch": epoch}})
	if f.Type != proto.TypeSubscribed || f.Recovered || f.Offset != 10 {
		t.Fatalf("subscribe since 2 with history 8..10: got %s, want recovered false at offset 10", f.Raw)
	}
	if len(f.Messages) != 3 || f.Messages[0].Offset != 8 {
		t.Fatalf("want what is left (8..10), got %s", f.Raw)
	}
	f = r.request(map[string]any{"type": "subscribe", "channel": channel, "since": map[string]any{"offset": 9, "epoch": "another-epoch"}})
	if f.Recovered || len(f.Messages) != 0 {
		t.Fatalf("subscribe from another epoch: got %s, want recovered false and no messages", f.Raw)
	}

	// The Go client reports it too.
	events := make(chan client.SubscribedEvent, 1)
	col := newCollector()
	c := guest(t, ts.URL, "gopher")
	sub, err := c.Subscribe(ctx, channel, col.handle, client.WithSince(2, epoch),
		client.OnSubscribed(func(e client.SubscribedEvent) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, events, 15*time.Second, "subscribed event"); !ev.Resumed || ev.Recovered {
		t.Fatalf("subscribed event %+v: want resumed, not recovered", ev)
	}
	if sub.Recovered() {
		t.Fatal("Subscription.Recovered() is true")
	}
	checkOffsets(t, "client", col.wait(t, 3, 15*time.Second), 8, 10)
}

// TestRecoveryAcrossRestart: offsets, epoch and history survive a restart
// of the server on the same data directory.
func TestRecoveryAcrossRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const channel = "chat:durable"
	pub := dial(t, ts.URL, func(c *client.Config) { c.User, c.NoReconnect = "pub", true })
	publishN(t, pub, channel, 1, 3)
	r := connectRaw(t, ts.URL, "", "probe")
	epoch := r.request(map[string]any{"type": "subscribe", "channel": channel}).Epoch
	_ = r.ws.Close()

	ts.Restart()

	pub = guest(t, ts.URL, "pub")
	if off := publishN(t, pub, channel, 4, 3); off != 6 {
		t.Fatalf("after the restart the next offsets end at %d, want 6", off)
	}
	r = connectRaw(t, ts.URL, "", "late")
	f := r.request(map[string]any{"type": "subscribe", "channel": channel, "since": map[string]any{"offset": 3, "epoch": epoch}})
	if !f.Recovered || f.Offset != 6 || f.Epoch != epoch {
		t.Fatalf("subscribe since 3 after a restart: %s; want recovered at 6 in epoch %q", f.Raw, epoch)
	}
	for i, m := range f.Messages {
		if m.Offset != uint64(4+i) {
			t.Fatalf("recovered %s", f.Raw)
		}
	}
	if len(f.Messages) != 3 {
		t.Fatalf("recovered %d messages, want 3: %s", len(f.Messages), f.Raw)
	}
}

// TestReadReceipts: receipts are broadcast, stored (across a restart) and
// returned in subscribed.receipts; they only move forward; a receipt past
// the last offset is refused.
func TestReadReceipts(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	const channel = "chat:receipts"
	ann := guest(t, ts.URL, "ann")
	annSub, err := ann.Subscribe(ctx, channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, ann, channel, 1, 3)

	receipts := make(chan client.Receipt, 4)
	bob := guest(t, ts.URL, "bob")
	if _, err := bob.Subscribe(ctx, channel, nil, client.OnReceipt(func(r client.Receipt) { receipts <- r })); err != nil {
		t.Fatal(err)
	}
	if err := annSub.MarkRead(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, receipts, 15*time.Second, "ann's receipt"); r.User != "ann" || r.Offset != 2 || r.Time.IsZero() {
		t.Fatalf("receipt %+v, want ann at 2", r)
	}
	if err := annSub.MarkRead(ctx, 1); err != nil { // backwards: stored receipt stays 2
		t.Fatal(err)
	}
	var ce *client.Error
	if err := annSub.MarkRead(ctx, 99); !errors.As(err, &ce) || ce.Code != proto.CodeBadRequest {
		t.Fatalf("read past the last offset: %v, want bad_request", err)
	}

	ts.Restart()

	carl := guest(t, ts.URL, "carl")
	sub, err := carl.Subscribe(ctx, channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.Receipts(); len(got) != 1 || got["ann"] != 2 {
		t.Fatalf("receipts after a restart: %v, want ann:2", got)
	}
}

// TestRetraction: the author retracts a message; subscribers learn of it,
// and a client recovering later finds a tombstone at that offset.
func TestRetraction(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	const channel = "chat:retract"
	ann := guest(t, ts.URL, "ann")
	annSub, err := ann.Subscribe(ctx, channel, nil)
	if err != nil {
		t.Fatal(err)
	}
	retractions := make(chan client.Retraction, 2)
	bob := guest(t, ts.URL, "bob")
	if _, err := bob.Subscribe(ctx, channel, nil, client.OnRetract(func(r client.Retraction) { retractions <- r })); err != nil {
		t.Fatal(err)
	}
	publishN(t, ann, channel, 1, 3)
	if err := annSub.Retract(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, retractions, 15*time.Second, "retraction"); r.Offset != 2 || r.By != "ann" {
		t.Fatalf("retraction %+v, want offset 2 by ann", r)
	}
	if err := annSub.Retract(ctx, 2); err != nil {
		t.Fatalf("retracting a tombstone again: %v, want nil", err)
	}
	var ce *client.Error
	if err := annSub.Retract(ctx, 42); !errors.As(err, &ce) || ce.Code != proto.CodeNotFound {
		t.Fatalf("retract a missing offset: %v, want not_found", err)
	}

	col := newCollector()
	carl := guest(t, ts.URL, "carl")
	if _, err := carl.Subscribe(ctx, channel, col.handle, client.WithSince(0, "")); err != nil {
		t.Fatal(err)
	}
	msgs := col.wait(t, 3, 15*time.Second)
	checkOffsets(t, "recovering client", msgs, 1, 3)
	for _, m := range msgs {
		tomb := m.Offset == 2
		if m.Retracted != tomb || (tomb && len(m.Data) != 0) || (!tomb && len(m.Data) == 0) {
			t.Fatalf("offset %d: retracted %v, data %s", m.Offset, m.Retracted, m.Data)
		}
	}
}

// TestMentions: "hi @bob" in a chat message notifies bob on user:bob, by id
// or by name, for a user the server has seen; bob recovers a mention made
// while he was away.
func TestMentions(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	// bob connects once, so the server knows him, and leaves.
	bob := dial(t, ts.URL, func(c *client.Config) { c.User, c.Name = "bob", "Bobby" })
	_ = bob.Close()

	ann := guest(t, ts.URL, "ann")
	off, err := ann.Publish(ctx, "chat:lobby", "message", map[string]string{"text": "hi @bob"}, client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}

	bob = dial(t, ts.URL, func(c *client.Config) { c.User, c.Name = "bob", "Bobby" })
	col := newCollector()
	if _, err := bob.Subscribe(ctx, "user:bob", col.handle, client.WithSince(0, "")); err != nil {
		t.Fatal(err)
	}
	m := col.wait(t, 1, 15*time.Second)[0]
	var d struct {
		Channel string              `json:"channel"`
		Offset  uint64              `json:"offset"`
		Text    string              `json:"text"`
		From    struct{ ID string } `json:"from"`
	}
	if err := m.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if m.Event != "mention" || d.Channel != "chat:lobby" || d.Offset != off || d.Text != "hi @bob" || d.From.ID != "ann" {
		t.Fatalf("mention %s %s, want a mention of chat:lobby offset %d by ann", m.Event, m.Data, off)
	}

	// Live, and by display name.
	if _, err := ann.Publish(ctx, "chat:lobby", "message", map[string]string{"text": "thanks @Bobby."}, client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	msgs := col.wait(t, 2, 15*time.Second)
	if got := decodeText(t, msgs[1].Data); got != "thanks @Bobby." {
		t.Fatalf("second mention text %q", got)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d mentions, want 2", len(msgs))
	}
}
