package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/natstest"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
)

// received gathers one subscriber's messages.
type received struct {
	mu   sync.Mutex
	msgs []client.Message
}

func (r *received) add(m client.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *received) all() []client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// line is a message as every subscriber must see it: offset and data.
func line(m client.Message) string { return fmt.Sprintf("%d:%s", m.Offset, m.Data) }

// TestChannelsAcrossNodes runs the channel scenarios of cluster mode on
// three nodes sharing one NATS server.
func TestChannelsAcrossNodes(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	url := ns.ClientURL()
	nodes := startNodes(t, []string{url, url, url}, prefix, 1)

	// Offsets: 5 publishers on different nodes, 10 subscribers spread over
	// the nodes, 200 messages; every subscriber sees offsets 1..200 in
	// order, with the same message at each offset.
	t.Run("offsets", func(t *testing.T) {
		const channel, pubs, each, subs = "test:offsets", 5, 40, 10
		recv := make([]*received, subs)
		for i := range subs {
			recv[i] = &received{}
			c := dial(t, nodes[i%3].ws, fmt.Sprintf("sub%d", i))
			if _, err := c.Subscribe(ctxT(t), channel, recv[i].add); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		offsets := make(chan uint64, pubs*each)
		for p := range pubs {
			c := dial(t, nodes[p%3].ws, fmt.Sprintf("pub%d", p))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					off, err := c.Publish(ctxT(t), channel, "msg", map[string]any{"p": p, "k": k, "text": "é日😀"}, client.PublishOptions{})
					if err != nil {
						t.Errorf("publisher %d: %v", p, err)
						return
					}
					offsets <- off
				}
			}()
		}
		wg.Wait()
		close(offsets)
		var got []uint64
		for o := range offsets {
			got = append(got, o)
		}
		slices.Sort(got)
		for i, o := range got {
			if o != uint64(i+1) {
				t.Fatalf("publishers were told offsets %v, want 1..%d", got, pubs*each)
			}
		}
		var want []string
		for i, r := range recv {
			waitFor(t, 30*time.Second, fmt.Sprintf("subscriber %d gets %d messages", i, pubs*each), func() bool { return len(r.all()) >= pubs*each })
			var lines []string
			for k, m := range r.all() {
				if m.Offset != uint64(k+1) {
					t.Fatalf("subscriber %d (on %s): message %d has offset %d", i, nodes[i%3].name, k, m.Offset)
				}
				lines = append(lines, line(m))
			}
			if want == nil {
				want = lines
			} else if !slices.Equal(lines, want) {
				t.Fatalf("subscriber %d saw another order than subscriber 0", i)
			}
		}
		time.Sleep(200 * time.Millisecond)
		for i, r := range recv {
			if n := len(r.all()); n != pubs*each {
				t.Fatalf("subscriber %d got %d messages, want %d: some twice", i, n, pubs*each)
			}
		}
	})

	// Recovery: a subscriber on node 1 goes away at some position;
	// messages are published through nodes 2 and 3; subscribing again
	// through node 3 with that position returns exactly what was missed.
	t.Run("recovery through another node", func(t *testing.T) {
		const channel = "test:recovery"
		pub := dial(t, nodes[1].ws, "pub")
		for k := range 10 {
			if _, err := pub.Publish(ctxT(t), channel, "before", k, client.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		first := &received{}
		c1 := dial(t, nodes[0].ws, "reader")
		sub, err := c1.Subscribe(ctxT(t), channel, first.add, client.WithSince(0, ""))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the first 10", func() bool { return len(first.all()) == 10 })
		off, epoch := sub.Position()
		_ = c1.Close()
		pub2 := dial(t, nodes[2].ws, "pub2")
		for k := range 15 {
			p := pub
			if k%2 == 1 {
				p = pub2
			}
			if _, err := p.Publish(ctxT(t), channel, "missed", k, client.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		again := &received{}
		var ev client.SubscribedEvent
		c3 := dial(t, nodes[2].ws, "reader")
		if _, err := c3.Subscribe(ctxT(t), channel, again.add, client.WithSince(off, epoch),
			client.OnSubscribed(func(e client.SubscribedEvent) { ev = e })); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the missed 15", func() bool { return len(again.all()) >= 15 })
		time.Sleep(100 * time.Millisecond)
		got := again.all()
		if len(got) != 15 || !ev.Recovered || ev.Epoch != epoch {
			t.Fatalf("recovered %d messages (recovered %v, epoch %q, was %q), want the 15 missed", len(got), ev.Recovered, ev.Epoch, epoch)
		}
		for k, m := range got {
			if m.Offset != off+uint64(k)+1 || m.Event != "missed" {
				t.Fatalf("recovered message %d: offset %d event %s, want offset %d", k, m.Offset, m.Event, off+uint64(k)+1)
			}
		}
	})

	// Presence: a member joining through one node is listed, and its join
	// and leave are announced, on every node.
	t.Run("presence", func(t *testing.T) {
		const channel = "test:presence"
		type watcher struct {
			sub    *client.Subscription
			mu     sync.Mutex
			events []string
		}
		var ws []*watcher
		for i := range 3 {
			w := &watcher{}
			c := dial(t, nodes[i].ws, fmt.Sprintf("watcher%d", i))
			sub, err := c.Subscribe(ctxT(t), channel, nil, client.OnPresence(func(e client.PresenceEvent) {
				w.mu.Lock()
				w.events = append(w.events, e.Event+":"+e.Member.User.ID)
				w.mu.Unlock()
			}))
			if err != nil {
				t.Fatal(err)
			}
			w.sub = sub
			ws = append(ws, w)
		}
		has := func(w *watcher, ev string) bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return slices.Contains(w.events, ev)
		}
		// Every watcher lists the three.
		for i, w := range ws {
			waitFor(t, memberBound, fmt.Sprintf("watcher %d lists 3 members", i), func() bool { return len(w.sub.Members()) == 3 })
		}
		joiner := dial(t, nodes[1].ws, "joiner")
		jsub, err := joiner.Subscribe(ctxT(t), channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := jsub.SetPresence(ctxT(t), map[string]string{"status": "typing"}); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			waitFor(t, memberBound, fmt.Sprintf("watcher %d (on %s) sees the join", i, nodes[i].name), func() bool {
				return has(w, "join:joiner") && slices.ContainsFunc(w.sub.Members(), func(m proto.Member) bool {
					return m.User.ID == "joiner" && strings.Contains(string(m.State), "typing")
				})
			})
		}
		// The HTTP API lists the member on every node too.
		for _, n := range nodes {
			var body struct {
				Members []proto.Member `json:"members"`
			}
			waitFor(t, memberBound, "the API lists the joiner on "+n.name, func() bool {
				httpDo(t, "GET", n.http+"/api/channels/"+channel+"/presence", nil, "", &body)
				return slices.ContainsFunc(body.Members, func(m proto.Member) bool { return m.User.ID == "joiner" })
			})
		}
		if err := jsub.Unsubscribe(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			waitFor(t, memberBound, fmt.Sprintf("watcher %d sees the leave", i), func() bool {
				return has(w, "leave:joiner") && len(w.sub.Members()) == 3
			})
		}
	})

	// Ephemeral messages, receipts and retractions reach the subscribers of
	// the other nodes too.
	t.Run("ephemeral, receipts, retractions", func(t *testing.T) {
		const channel = "test:live"
		type got struct {
			mu                 sync.Mutex
			eph, rcpt, retract int
		}
		var gs []*got
		for i := range 3 {
			g := &got{}
			c := dial(t, nodes[i].ws, fmt.Sprintf("l%d", i))
			if _, err := c.Subscribe(ctxT(t), channel, func(m client.Message) {
				if m.Offset == 0 {
					g.mu.Lock()
					g.eph++
					g.mu.Unlock()
				}
			}, client.OnReceipt(func(client.Receipt) { g.mu.Lock(); g.rcpt++; g.mu.Unlock() }),
				client.OnRetract(func(client.Retraction) { g.mu.Lock(); g.retract++; g.mu.Unlock() })); err != nil {
				t.Fatal(err)
			}
			gs = append(gs, g)
		}
		pc := dial(t, nodes[0].ws, "poster")
		psub, err := pc.Subscribe(ctxT(t), channel, nil)
		if err != nil {
			t.Fatal(err)
		}
		off, err := psub.Publish(ctxT(t), "stored", "x", client.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := psub.Publish(ctxT(t), "typing", "y", client.PublishOptions{Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
		if err := psub.MarkRead(ctxT(t), off); err != nil {
			t.Fatal(err)
		}
		if err := psub.Retract(ctxT(t), off); err != nil {
			t.Fatal(err)
		}
		for i, g := range gs {
			waitFor(t, 10*time.Second, fmt.Sprintf("subscriber on %s gets the ephemeral message, the receipt and the retraction", nodes[i].name), func() bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				return g.eph == 1 && g.rcpt == 1 && g.retract == 1
			})
		}
	})

	// The HTTP API answers the same on every node: a document's content
	// PUT through node 1 reaches an editor on node 3 live, and every node
	// lists and serves it alike.
	t.Run("http api", func(t *testing.T) {
		const id = "api-doc"
		c := dial(t, nodes[2].ws, "editor")
		d, err := c.OpenDoc(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"content": "héllo 日本 from node 1"})
		if st := httpDo(t, "PUT", nodes[0].http+"/api/docs/"+id+"/content", strings.NewReader(string(body)), "application/json", nil); st != 200 {
			t.Fatalf("PUT on node1: %d", st)
		}
		waitFor(t, 10*time.Second, "the editor on node 3 sees the PUT", func() bool { return d.Text() == "héllo 日本 from node 1" })
		if err := d.Insert(0, "¡"); err != nil {
			t.Fatal(err)
		}
		if err := d.WaitSynced(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			waitFor(t, 10*time.Second, "every node serves the edit", func() bool {
				return getDoc(t, n, id).Content == "¡héllo 日本 from node 1"
			})
			var list struct {
				Docs []struct {
					ID string `json:"id"`
				} `json:"docs"`
			}
			httpDo(t, "GET", n.http+"/api/docs", nil, "", &list)
			if !slices.ContainsFunc(list.Docs, func(d struct {
				ID string `json:"id"`
			}) bool {
				return d.ID == id
			}) {
				t.Fatalf("%s does not list %s", n.name, id)
			}
		}
		// Export through one node, import through another under a new id.
		var exp json.RawMessage
		httpDo(t, "GET", nodes[1].http+"/api/docs/"+id+"/export", nil, "", &exp)
		renamed := strings.Replace(string(exp), `"id":"`+id+`"`, `"id":"api-doc-copy"`, 1)
		if st := httpDo(t, "POST", nodes[2].http+"/api/docs/import", strings.NewReader(renamed), "application/json", nil); st != 201 {
			t.Fatalf("import on node3: %d", st)
		}
		if got := getDoc(t, nodes[0], "api-doc-copy"); got.Content != "¡héllo 日本 from node 1" {
			t.Fatalf("the imported copy on node1: %q", got.Content)
		}
		// Delete through node 2: the editor on node 3 is closed (deleted).
		if st := httpDo(t, "DELETE", nodes[1].http+"/api/docs/"+id, nil, "", nil); st != 204 {
			t.Fatalf("DELETE on node2: %d", st)
		}
		select {
		case <-d.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the editor on node 3 was not closed after the deletion on node 2")
		}
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRefusesWithoutJetStream: a node pointed at a NATS server without
// JetStream does not start, and says why and what to do.
func TestRefusesWithoutJetStream(t *testing.T) {
	ns := natstest.Run(t, func(o *natsserver.Options) { o.JetStream = false })
	srv := server.New(nodeConfig(ns.ClientURL(), testPrefix(), "nojs", 1), logger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := srv.Run(ctx)
	if err == nil {
		_ = srv.Close(ctx)
		t.Fatal("a node started on NATS without JetStream")
	}
	if msg := err.Error(); !strings.Contains(msg, "JetStream") || !strings.Contains(msg, "-js") {
		t.Fatalf("error %q: want it to name JetStream and how to enable it", msg)
	}
	t.Logf("refused: %v", err)
}

// TestRevocationAcrossNodes: in production mode, a user's tokens revoked
// through one node's HTTP API are refused by every node.
func TestRevocationAcrossNodes(t *testing.T) {
	ns := natstest.Run(t)
	prefix := testPrefix()
	const secret = "cluster-test-secret-0123456789abcdef"
	var nodes []*node
	for i := range 3 {
		cfg := nodeConfig(ns.ClientURL(), prefix, fmt.Sprintf("node%d", i+1), 1)
		cfg.JWTSecret = secret
		nodes = append(nodes, startNode(t, cfg))
	}
	tok, err := auth.NewVerifier([]byte(secret)).Mint("mallory", "Mallory", []string{"subscribe:*"}, time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	connect := func(n *node) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Config{URL: n.ws, Token: tok, NoReconnect: true})
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	for _, n := range nodes {
		if err := connect(n); err != nil {
			t.Fatalf("connect to %s before the revocation: %v", n.name, err)
		}
	}
	body := strings.NewReader(`{"revoke_before":"now"}`)
	if st := httpDo(t, "POST", nodes[0].http+"/api/users/mallory/disconnect", body, "application/json", nil); st != 200 {
		t.Fatalf("revoke through node1: %d", st)
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "the token refused by "+n.name, func() bool { return connect(n) != nil })
	}
}
