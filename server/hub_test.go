package server_test

// Tests of the channel hub's hardening: bounded mentions, no storage reads
// under a channel's lock, presence and recovery that fit a connection's
// send queue, and channel epochs from the first subscribe.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/doc"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/session"
)

// TestMentionsCapped: a chat message naming 1,000 users notifies only the
// first session.MaxMentions names, whoever they are.
func TestMentionsCapped(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ctx := ctxT(t)
	srv := ts.Server()
	// 100 known users; the message names u0..u999, so without a cap 100
	// would be notified.
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.DB.PutUser(ctx, doc.User{ID: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("User %d", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var text strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&text, "@u%d ", i)
	}
	ann := guest(t, ts.URL, "ann")
	if _, err := ann.Publish(ctx, "chat:crowd", "message", map[string]string{"text": text.String()}, client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the message's mentions resolved", func() bool {
		resolved, _ := srv.Hub.MentionStats()
		return resolved >= 1
	})
	// The worker submitted its notifications before it counted the job;
	// appends commit in submission order, so once this one is stored they
	// all are.
	if _, err := ann.Publish(ctx, "chat:barrier", "message", map[string]string{"text": "done"}, client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	var notified []int
	for i := range 100 {
		last, _, err := srv.DB.ChannelState(fmt.Sprintf("user:u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if last > 0 {
			notified = append(notified, i)
		}
	}
	if len(notified) != session.MaxMentions || notified[len(notified)-1] != session.MaxMentions-1 {
		t.Fatalf("notified users %v; want the first %d names (u0..u%d)", notified, session.MaxMentions, session.MaxMentions-1)
	}
}

// stormConn is a raw connection that subscribes to a channel over and over
// with since 0, and checks what it receives: every subscribed frame's
// messages are consecutive up to its offset, and live messages continue
// from the latest offset seen, once each.
type stormConn struct {
	ws      *websocket.Conn
	channel string
	rounds  atomic.Int64
	err     error // set by run
}

func (s *stormConn) run(stop <-chan struct{}) {
	var last uint64
	for id := 1; ; id++ {
		select {
		case <-stop:
			return
		default:
		}
		req := fmt.Sprintf(`{"id":%d,"type":"subscribe","channel":%q,"since":{"offset":0,"epoch":""}}`, id, s.channel)
		if err := s.ws.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
			s.err = err
			return
		}
		for subscribed := false; !subscribed; {
			_ = s.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := s.ws.ReadMessage()
			if err != nil {
				s.err = fmt.Errorf("round %d: %w", id, err)
				return
			}
			for _, line := range bytes.Split(data, []byte{'\n'}) {
				var f struct {
					Type      string `json:"type"`
					Code      string `json:"code"`
					Offset    uint64 `json:"offset"`
					Recovered bool   `json:"recovered"`
					Messages  []struct {
						Offset uint64 `json:"offset"`
					} `json:"messages"`
				}
				if err := json.Unmarshal(line, &f); err != nil {
					s.err = err
					return
				}
				switch f.Type {
				case "subscribed":
					if f.Offset < last {
						s.err = fmt.Errorf("subscribed at offset %d after live message %d", f.Offset, last)
						return
					}
					for i, m := range f.Messages {
						if i > 0 && m.Offset != f.Messages[i-1].Offset+1 || m.Offset > f.Offset {
							s.err = fmt.Errorf("subscribed at %d recovered offset %d at %d of %d", f.Offset, m.Offset, i, len(f.Messages))
							return
						}
					}
					if n := len(f.Messages); f.Recovered && (n == 0 || f.Messages[n-1].Offset != f.Offset) {
						s.err = fmt.Errorf("subscribed at %d recovered true up to %d", f.Offset, f.Messages[n-1].Offset)
						return
					}
					last, subscribed = f.Offset, true
					s.rounds.Add(1)
				case "message":
					if last != 0 && f.Offset != last+1 {
						s.err = fmt.Errorf("live offset %d after %d", f.Offset, last)
						return
					}
					last = f.Offset
				case "error":
					s.err = fmt.Errorf("error %s: %s", f.Code, line)
					return
				}
			}
		}
	}
}

// TestResubscribeStorm: connections that keep resubscribing with since 0
// to a channel with a long history (each reading the recovery limit's
// worth of messages from storage) do not hold up that channel's publishes,
// whose completions need the channel's lock; and every subscriber, the
// stormers included, sees consecutive offsets once.
func TestResubscribeStorm(t *testing.T) {
	// Not parallel: it measures time.
	if testing.Short() {
		t.Skip("a load test")
	}
	ts := startServer(t, withNamespace("storm", server.NamespaceConfig{HistorySize: 5000, Presence: "full", ClientPublish: true}))
	ctx, cancelAll := context.WithTimeout(context.Background(), 3*time.Minute) // setup writes 10 MB of history
	defer cancelAll()
	hub := ts.Server().Hub
	const channel, history, publishes, stormers = "storm:a", 1200, 20, 4
	data := json.RawMessage(`{"text":"` + strings.Repeat("x", 8000) + `"}`)
	var wg sync.WaitGroup
	for range history {
		wg.Add(1)
		hub.Publish(session.Publication{Channel: channel, Event: "m", Data: data}, func(_ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()

	watcher := guest(t, ts.URL, "watcher")
	col := newCollector()
	if _, err := watcher.Subscribe(ctx, channel, col.handle); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	conns := make([]*stormConn, stormers)
	var running sync.WaitGroup
	for i := range conns {
		r := connectRaw(t, ts.URL, "", fmt.Sprintf("storm%d", i))
		conns[i] = &stormConn{ws: r.ws, channel: channel}
		running.Add(1)
		go func() {
			defer running.Done()
			conns[i].run(stop)
		}()
	}
	defer func() {
		close(stop)
		running.Wait()
	}()
	waitFor(t, 30*time.Second, "the storm under way", func() bool {
		for _, c := range conns {
			if c.rounds.Load() < 1 {
				return false
			}
		}
		return true
	})

	pub := guest(t, ts.URL, "pub")
	var worst time.Duration
	for i := range publishes {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := pub.Publish(pctx, channel, "m", map[string]int{"n": i}, client.PublishOptions{})
		cancel()
		if err != nil {
			t.Fatalf("publish %d during the storm: %v after %v", i, err, time.Since(start))
		}
		worst = max(worst, time.Since(start))
	}
	var rounds int64
	for _, c := range conns {
		rounds += c.rounds.Load()
	}
	t.Logf("%d publishes during %d resubscribes with since 0: slowest %v", publishes, rounds, worst)
	// Generous (the machine may be shared): a publish is one group commit,
	// while a resubscribe that held the channel's lock across its storage
	// read stalled it behind every storming read queued before it (3.3 s
	// for the first publish, measured on a loaded machine).
	const bound = 2 * time.Second
	if worst > bound {
		t.Errorf("slowest publish took %v during the storm, want under %v", worst, bound)
	}
	checkOffsets(t, "watcher", col.wait(t, publishes, 30*time.Second), history+1, history+publishes)
	close(stop)
	running.Wait()
	stop = make(chan struct{})
	for i, c := range conns {
		if c.err != nil && !errors.Is(c.err, context.Canceled) {
			t.Errorf("stormer %d: %v", i, c.err)
		}
	}
}

// subscribedFrame is a subscribed frame as these tests read it.
type subscribedFrame struct {
	Type        string          `json:"type"`
	Code        string          `json:"code"`
	Offset      uint64          `json:"offset"`
	Epoch       string          `json:"epoch"`
	Recovered   bool            `json:"recovered"`
	Messages    []proto.Message `json:"messages"`
	Members     []proto.Member  `json:"members"`
	MemberCount *int            `json:"member_count"`
	MembersNext string          `json:"members_next"`
}

// subscribeRaw subscribes r to channel (since nil: without) and returns the
// answer.
func subscribeRaw(tb testing.TB, r *rawConn, channel string, since map[string]any) subscribedFrame {
	tb.Helper()
	req := map[string]any{"type": "subscribe", "channel": channel}
	if since != nil {
		req["since"] = since
	}
	f := r.request(req)
	var s subscribedFrame
	if err := json.Unmarshal([]byte(f.Raw), &s); err != nil {
		tb.Fatal(err)
	}
	if s.Type != proto.TypeSubscribed {
		tb.Fatalf("subscribe %s: got %s", channel, f.Raw)
	}
	return s
}

// TestChannelEpochFromFirstSubscribe: a channel has an epoch from its first
// subscribe, before any message, kept by the first message and across a
// restart; a resume with an empty epoch and an offset is no epoch's (not
// recovered), nor is one with another epoch.
func TestChannelEpochFromFirstSubscribe(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const channel = "chat:fresh"
	r := connectRaw(t, ts.URL, "", "ann")
	first := subscribeRaw(t, r, channel, nil)
	if first.Epoch == "" || first.Offset != 0 {
		t.Fatalf("first subscribe to an empty channel: epoch %q offset %d; want an epoch and offset 0", first.Epoch, first.Offset)
	}
	if again := subscribeRaw(t, connectRaw(t, ts.URL, "", "bob"), channel, nil); again.Epoch != first.Epoch {
		t.Fatalf("second subscriber got epoch %q, the first %q", again.Epoch, first.Epoch)
	}
	ts.Restart()
	r = connectRaw(t, ts.URL, "", "ann")
	if s := subscribeRaw(t, r, channel, map[string]any{"offset": 0, "epoch": first.Epoch}); s.Epoch != first.Epoch || !s.Recovered {
		t.Fatalf("after a restart: epoch %q recovered %v; want %q recovered", s.Epoch, s.Recovered, first.Epoch)
	}
	for i := range 2 {
		if f := r.request(map[string]any{"type": "publish", "channel": channel, "event": "m", "data": map[string]int{"n": i}}); f.Type != proto.TypePublished {
			t.Fatalf("publish: %s", f.Raw)
		}
	}
	// Published before a restart into a channel never subscribed: the
	// epoch it got is kept too.
	if f := r.request(map[string]any{"type": "publish", "channel": "chat:unseen", "event": "m"}); f.Type != proto.TypePublished {
		t.Fatalf("publish: %s", f.Raw)
	}
	unseen := subscribeRaw(t, r, "chat:unseen", nil)
	ts.Restart()
	r = connectRaw(t, ts.URL, "", "ann")
	if s := subscribeRaw(t, r, "chat:unseen", nil); s.Epoch == "" || s.Epoch != unseen.Epoch {
		t.Fatalf("chat:unseen after a restart: epoch %q, want %q", s.Epoch, unseen.Epoch)
	}

	for _, tc := range []struct {
		name      string
		since     map[string]any
		recovered bool
		offsets   []uint64
	}{
		{"from the start, any epoch", map[string]any{"offset": 0, "epoch": ""}, true, []uint64{1, 2}},
		{"from before the first message, in its epoch", map[string]any{"offset": 0, "epoch": first.Epoch}, true, []uint64{1, 2}},
		{"from offset 1 in its epoch", map[string]any{"offset": 1, "epoch": first.Epoch}, true, []uint64{2}},
		{"up to date", map[string]any{"offset": 2, "epoch": first.Epoch}, true, nil},
		{"an offset with an empty epoch", map[string]any{"offset": 1, "epoch": ""}, false, nil},
		{"an offset in another epoch", map[string]any{"offset": 1, "epoch": "another"}, false, nil},
		{"past the end", map[string]any{"offset": 3, "epoch": first.Epoch}, false, nil},
	} {
		s := subscribeRaw(t, r, channel, tc.since)
		var got []uint64
		for _, m := range s.Messages {
			got = append(got, m.Offset)
		}
		if s.Epoch != first.Epoch || s.Offset != 2 || s.Recovered != tc.recovered || !slices.Equal(got, tc.offsets) {
			t.Errorf("%s: epoch %q offset %d recovered %v messages %v; want %q, 2, %v, %v",
				tc.name, s.Epoch, s.Offset, s.Recovered, got, first.Epoch, tc.recovered, tc.offsets)
		}
	}
}

// TestNewChannelEpochsShareCommits: subscribing to hundreds of new
// channels (each needs an epoch stored) does not cost one commit (one
// fsync) each.
func TestNewChannelEpochsShareCommits(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	db := ts.Server().DB
	const n = 400
	r := connectRaw(t, ts.URL, "", "ann")
	before := db.Stats().Commits
	for i := range n {
		r.send(map[string]any{"id": i + 1, "type": "subscribe", "channel": fmt.Sprintf("chat:new-%d", i)})
	}
	epochs := map[string]bool{}
	for range n {
		f := r.next("subscribed", func(f frame) bool { return f.ID != nil })
		if f.Type != proto.TypeSubscribed || f.Epoch == "" {
			t.Fatalf("got %s, want subscribed with an epoch", f.Raw)
		}
		epochs[f.Epoch] = true
	}
	if len(epochs) != n {
		t.Fatalf("%d distinct epochs for %d channels", len(epochs), n)
	}
	waitFor(t, 15*time.Second, "every epoch stored", func() bool {
		_, epoch, _ := db.ChannelState(fmt.Sprintf("chat:new-%d", n-1))
		return epoch != ""
	})
	commits := db.Stats().Commits - before
	t.Logf("%d new channels took %d commits", n, commits)
	if commits > n/4 {
		t.Fatalf("%d new channels took %d commits; want them grouped (at most %d)", n, commits, n/4)
	}
}

// presenceState returns the presence state {"s":"<<<..."} with n `<`.
func presenceState(tb testing.TB, n int) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"s": strings.Repeat("<", n)})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// maxStateLen returns the largest n whose presenceState encodes (as the Go
// client sends it and the server encodes it) to at most limit bytes: `<`
// is the character that costs the most once escaped.
func maxStateLen(tb testing.TB, limit int) int {
	tb.Helper()
	n := 0
	for len(proto.Encode(presenceState(tb, n+1))) <= limit {
		n++
	}
	return n
}

// TestLargePresenceStillJoins: with every member's presence state at the
// size limit (made of `<`, which encodes six-fold) and a history of large
// `<`-heavy messages, a new subscriber recovering from the start still
// joins: its subscribed frame (the first page of members, and the newest
// messages that fit) fits a small send queue, and it reads the other
// members page by page. A state over the limit is refused at the source.
func TestLargePresenceStillJoins(t *testing.T) {
	t.Parallel()
	const queue = 256 << 10
	ts := startServer(t,
		withLimits(func(l *server.LimitsConfig) { l.MaxQueueBytes = queue }),
		withNamespace("room", server.NamespaceConfig{HistorySize: 100, Presence: "full", ClientPublish: true, MaxPayload: 16 << 10}))
	ctx := ctxT(t)
	const channel, members, history = "room:big", 40, 20
	hub := ts.Server().Hub
	data := json.RawMessage(`{"t":"` + strings.Repeat("<", 8000) + `"}`)
	for range history {
		done := make(chan error, 1)
		hub.Publish(session.Publication{Channel: channel, Event: "m", Data: data}, func(_ uint64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	n := maxStateLen(t, session.DefaultMaxPresenceState)
	state := presenceState(t, n)
	var clients []*client.Client
	for i := range members {
		c := guest(t, ts.URL, fmt.Sprintf("m%02d", i))
		sub, err := c.Subscribe(ctx, channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.SetPresence(ctx, state); err != nil {
			t.Fatalf("member %d: a state at the limit: %v", i, err)
		}
		clients = append(clients, c)
	}
	// Over the limit: refused, whatever the characters.
	sub, _ := clients[0].Subscribe(ctx, "room:other", nil)
	for _, tc := range []struct {
		name  string
		state any
	}{
		{"plain text over the limit", map[string]string{"s": strings.Repeat("a", session.DefaultMaxPresenceState)}},
		{"one `<` more than fits", presenceState(t, n+1)},
	} {
		var e *client.Error
		if err := sub.SetPresence(ctx, tc.state); !errors.As(err, &e) || e.Code != proto.CodeTooLarge {
			t.Errorf("%s: got %v, want too_large", tc.name, err)
		}
	}

	var drops atomic.Int64 // connections of the newcomer lost
	newcomer := dial(t, ts.URL, func(c *client.Config) {
		c.User = "newcomer"
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusReconnecting {
				t.Logf("the newcomer's connection dropped: %v", err)
				drops.Add(1)
			}
		}
	})
	col := newCollector()
	var first client.SubscribedEvent
	nsub, err := newcomer.Subscribe(ctx, channel, col.handle, client.WithSince(0, ""),
		client.OnSubscribed(func(e client.SubscribedEvent) { first = e }))
	if err != nil {
		t.Fatal(err)
	}
	if n := nsub.MemberCount(); n != members+1 {
		t.Fatalf("member count %d, want %d", n, members+1)
	}
	if got := len(nsub.Members()); got >= members+1 || got == 0 {
		t.Fatalf("subscribed listed %d members; want a first page", got)
	}
	all, err := nsub.FetchMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != members+1 {
		t.Fatalf("fetched %d members, want %d", len(all), members+1)
	}
	for _, m := range all {
		if m.User.ID != "newcomer" && string(m.State) != string(state) {
			t.Fatalf("member %s has state of %d bytes, want the maximal state", m.User.ID, len(m.State))
		}
	}
	msgs := col.wait(t, 1, 15*time.Second)
	if first.Recovered || msgs[len(msgs)-1].Offset != history {
		t.Fatalf("recovered %v, last recovered offset %d; want the newest messages that fit (up to %d), recovered false",
			first.Recovered, msgs[len(msgs)-1].Offset, history)
	}
	if err := newcomer.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n := drops.Load(); n != 0 {
		t.Fatalf("the newcomer's connection dropped %d times", n)
	}
}
