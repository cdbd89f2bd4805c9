package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/client"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/server/servertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const secret = "client-test-secret-0123456789abcdef"

// testServer is a real server on 127.0.0.1 (server/servertest); Restart
// keeps the address and the data.
type testServer = servertest.Server

func startServer(t *testing.T, production bool) *testServer {
	t.Helper()
	return startServerWith(t, func(c *server.Config) {
		if production {
			c.JWTSecret = secret
		}
	})
}

func mint(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.NewVerifier([]byte(secret)).Mint(user, user, []string{"subscribe:*", "publish:*", "presence:*"}, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dial(t *testing.T, url string, edit func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{URL: url, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// waitStatus reads statuses until want.
func waitStatus(t *testing.T, ch <-chan client.Status, want client.Status) {
	t.Helper()
	for recv(t, ch, "status "+want.String()) != want {
	}
}

// inbox collects a subscription's messages and checks, as they come, that
// offsets go up by one.
type inbox struct {
	mu   sync.Mutex
	msgs []client.Message
	err  error
	more chan struct{}
}

func newInbox() *inbox { return &inbox{more: make(chan struct{}, 1)} }

func (b *inbox) handle(m client.Message) {
	b.mu.Lock()
	if n := len(b.msgs); n > 0 && m.Offset != b.msgs[n-1].Offset+1 && b.err == nil {
		b.err = fmt.Errorf("offset %d after %d", m.Offset, b.msgs[n-1].Offset)
	}
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.more <- struct{}{}:
	default:
	}
}

// wait waits for n messages and checks they are offsets first..first+n-1.
func (b *inbox) wait(t *testing.T, n int, first uint64) []client.Message {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		msgs, err := append([]client.Message(nil), b.msgs...), b.err
		b.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= n {
			for i, m := range msgs {
				if m.Offset != first+uint64(i) {
					t.Fatalf("message %d has offset %d, want %d", i, m.Offset, first+uint64(i))
				}
			}
			if len(msgs) > n {
				t.Fatalf("got %d messages, want %d", len(msgs), n)
			}
			return msgs
		}
		select {
		case <-b.more:
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(msgs), n)
		}
	}
}

func publish(t *testing.T, c *client.Client, channel string, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.Publish(ctxT(t), channel, "m", map[string]int{"i": i}, client.PublishOptions{}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// gatedDialer dials normally until shut, then holds every dial until
// opened again; it remembers the last connection, to cut it.
type gatedDialer struct {
	mu   sync.Mutex
	gate chan struct{} // nil: open
	last net.Conn
}

func (g *gatedDialer) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			g.mu.Lock()
			g.last = c
			g.mu.Unlock()
		}
		return c, err
	}}
}

func (g *gatedDialer) shut() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedDialer) open() {
	g.mu.Lock()
	close(g.gate)
	g.gate = nil
	g.mu.Unlock()
}

// cut closes the last connection under the WebSocket, as a network
// failure would.
func (g *gatedDialer) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = g.last.Close()
}

// TestReconnectAcrossRestart: the server goes away while a subscriber is
// attached and comes back on the same address and data; the subscriber
// reconnects, recovers what was published meanwhile, and sees every offset
// exactly once, in order.
func TestReconnectAcrossRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const channel = "chat:restart"
	g := &gatedDialer{}
	statuses := make(chan client.Status, 16)
	sub := dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "sam", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	})
	waitStatus(t, statuses, client.StatusConnected)
	in := newInbox()
	events := make(chan client.SubscribedEvent, 4)
	if _, err := sub.Subscribe(ctxT(t), channel, in.handle, client.OnSubscribed(func(e client.SubscribedEvent) { events <- e })); err != nil {
		t.Fatal(err)
	}
	recv(t, events, "first subscribed")
	pub := dial(t, ts.URL, func(c *client.Config) { c.User, c.NoReconnect = "pat", true })
	publish(t, pub, channel, 5)
	in.wait(t, 5, 1)

	g.shut() // sam's reconnection waits at the gate
	ts.Restart()
	waitStatus(t, statuses, client.StatusReconnecting)
	pub = dial(t, ts.URL, func(c *client.Config) { c.User = "pat" })
	publish(t, pub, channel, 5) // offsets 6..10, while sam is away
	g.open()
	waitStatus(t, statuses, client.StatusConnected)
	if e := recv(t, events, "resubscribed"); !e.Resumed || !e.Recovered || e.Offset != 10 {
		t.Fatalf("resubscription %+v: want resumed and recovered at offset 10", e)
	}
	publish(t, pub, channel, 2) // live: 11, 12
	msgs := in.wait(t, 12, 1)
	for _, m := range msgs {
		if want := m.Offset >= 6 && m.Offset <= 10; m.Recovered != want {
			t.Fatalf("offset %d: Recovered %v, want %v", m.Offset, m.Recovered, want)
		}
	}
}

// TestReconnectWhilePublishing cuts the subscriber's connection again and
// again while messages are being published: it still sees every offset
// once, in order.
func TestReconnectWhilePublishing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	const channel = "chat:flaky"
	g := &gatedDialer{}
	statuses := make(chan client.Status, 64)
	sub := dial(t, ts.URL, func(c *client.Config) {
		c.User, c.Dialer = "sam", g.dialer()
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	})
	waitStatus(t, statuses, client.StatusConnected)
	in := newInbox()
	if _, err := sub.Subscribe(ctxT(t), channel, in.handle); err != nil {
		t.Fatal(err)
	}
	pub := dial(t, ts.URL, func(c *client.Config) { c.User = "pat" })
	const n = 300
	var published atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := pub.Publish(context.Background(), channel, "m", map[string]int{"i": i}, client.PublishOptions{}); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			published.Add(1)
		}
	}()
	cuts := 0
	for ; cuts < 5 && published.Load() < n; cuts++ {
		g.cut()
		waitStatus(t, statuses, client.StatusReconnecting)
		waitStatus(t, statuses, client.StatusConnected)
	}
	<-done
	in.wait(t, n, 1)
	if cuts < 2 {
		t.Fatalf("only %d cuts while publishing", cuts)
	}
	t.Logf("%d cuts while publishing", cuts)
}

// TestUnauthorizedStops: after close 4001 the client reconnects only with
// a new token from TokenFunc.
func TestUnauthorizedStops(t *testing.T) {
	t.Parallel()
	ts := startServer(t, true)
	ctx := ctxT(t)

	// No TokenFunc: the client stops.
	ended := make(chan error, 1)
	c := dial(t, ts.URL, func(c *client.Config) {
		c.Token = mint(t, "una", time.Hour)
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusDisconnected {
				ended <- err
			}
		}
	})
	sub, err := c.Subscribe(ctx, "chat:x", nil)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server().Web.DisconnectUser("una")
	if err := recv(t, ended, "the client to stop"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("stopped with %v, want ErrUnauthorized", err)
	}
	<-sub.Done()
	if !errors.Is(sub.Err(), client.ErrUnauthorized) {
		t.Fatalf("subscription ended with %v", sub.Err())
	}
	if _, err := c.Publish(ctx, "chat:x", "m", nil, client.PublishOptions{}); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("publish after the stop: %v", err)
	}

	// A TokenFunc that has nothing new: the client stops too.
	same := mint(t, "vic", time.Hour)
	ended2 := make(chan error, 1)
	dial(t, ts.URL, func(c *client.Config) {
		c.TokenFunc = func(context.Context) (string, error) { return same, nil }
		c.OnStatus = func(s client.Status, err error) {
			if s == client.StatusDisconnected {
				ended2 <- err
			}
		}
	})
	ts.Server().Web.DisconnectUser("vic")
	if err := recv(t, ended2, "the client to stop"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("stopped with %v, want ErrUnauthorized", err)
	}
}

// TestTokenFuncReconnects: after close 4001, a new token from TokenFunc
// brings the client back with its subscriptions.
func TestTokenFuncReconnects(t *testing.T) {
	t.Parallel()
	ts := startServer(t, true)
	var calls atomic.Int32
	statuses := make(chan client.Status, 16)
	c := dial(t, ts.URL, func(c *client.Config) {
		c.TokenFunc = func(context.Context) (string, error) {
			calls.Add(1)
			return mint(t, "wes", time.Duration(calls.Load())*time.Hour), nil // a different token each time
		}
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	})
	in := newInbox()
	if _, err := c.Subscribe(ctxT(t), "chat:w", in.handle); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, statuses, client.StatusConnected)
	ts.Server().Web.DisconnectUser("wes")
	waitStatus(t, statuses, client.StatusReconnecting)
	waitStatus(t, statuses, client.StatusConnected)
	if calls.Load() < 2 {
		t.Fatalf("TokenFunc called %d times", calls.Load())
	}
	publish(t, c, "chat:w", 1)
	in.wait(t, 1, 1)
}

// TestAutoRefresh: with TokenFunc, the client refreshes its token before
// it expires, so the server never closes the connection for expiry.
func TestAutoRefresh(t *testing.T) {
	t.Parallel()
	ts := startServer(t, true)
	var calls atomic.Int32
	var firstExp time.Time
	statuses := make(chan client.Status, 16)
	c := dial(t, ts.URL, func(c *client.Config) {
		c.TokenFunc = func(context.Context) (string, error) {
			if calls.Add(1) == 1 {
				// Whole seconds: it expires 2 to 3 seconds from now, and
				// the client refreshes a third of that before.
				firstExp = time.Now().Add(3 * time.Second).Truncate(time.Second)
				return mint(t, "ria", 3*time.Second), nil
			}
			return mint(t, "ria", time.Hour), nil
		}
		c.OnStatus = func(s client.Status, _ error) { statuses <- s }
	})
	// Wait until the first token has expired for a while.
	for time.Now().Before(firstExp.Add(500 * time.Millisecond)) {
		if err := c.Ping(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		<-time.After(100 * time.Millisecond)
	}
	if n := calls.Load(); n < 2 {
		t.Fatalf("TokenFunc called %d times: no refresh", n)
	}
	for {
		select {
		case s := <-statuses:
			if s != client.StatusConnecting && s != client.StatusConnected {
				t.Fatalf("status %v: the connection was lost", s)
			}
			continue
		default:
		}
		break
	}
}

// TestClientBasics: ephemeral and no-echo publishes, errors from the
// server, a handler that calls the client, duplicate subscriptions, and
// what a closed client answers.
func TestClientBasics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, false)
	ctx := ctxT(t)
	a := dial(t, ts.URL, func(c *client.Config) { c.User = "amy" })
	b := dial(t, ts.URL, func(c *client.Config) { c.User = "ben" })

	// ben answers each message from amy; his handler calls the client.
	replies := make(chan error, 4)
	var bsub *client.Subscription
	bsub, err := b.Subscribe(ctx, "chat:basics", func(m client.Message) {
		if m.From.User == "amy" && m.Event == "question" {
			_, err := bsub.Publish(ctx, "answer", map[string]string{"text": "yes"}, client.PublishOptions{})
			replies <- err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan client.Message, 8)
	asub, err := a.Subscribe(ctx, "chat:basics", func(m client.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscribe(ctx, "chat:basics", nil); !errors.Is(err, client.ErrAlreadySubscribed) {
		t.Fatalf("second subscribe: %v, want ErrAlreadySubscribed", err)
	}

	off, err := asub.Publish(ctx, "typing", nil, client.PublishOptions{Ephemeral: true})
	if err != nil || off != 0 {
		t.Fatalf("ephemeral publish: %d, %v", off, err)
	}
	if m := recv(t, got, "the ephemeral message"); m.Offset != 0 || m.Event != "typing" {
		t.Fatalf("got %+v, want the ephemeral message", m)
	}
	if _, err := asub.Publish(ctx, "question", map[string]string{"text": "ok?"}, client.PublishOptions{NoEcho: true}); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, replies, "ben's answer"); err != nil {
		t.Fatalf("publish from a handler: %v", err)
	}
	if m := recv(t, got, "ben's answer"); m.Event != "answer" || m.From.User != "ben" {
		t.Fatalf("got %+v, want ben's answer (amy's own question was not echoed)", m)
	}

	var ce *client.Error
	if _, err := a.Subscribe(ctx, "doc:nope", nil); !errors.As(err, &ce) || ce.Code != proto.CodeBadRequest {
		t.Fatalf("subscribe to doc:: %v, want bad_request", err)
	}
	if _, err := a.Subscribe(ctx, "doc:nope", nil); !errors.As(err, &ce) {
		t.Fatalf("subscribe again after a failure: %v, want the server's error again", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Publish(cancelled, "chat:basics", "m", nil, client.PublishOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with a cancelled context: %v", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := asub.Unsubscribe(ctx); err != nil {
		t.Fatal(err)
	}
	if err := asub.MarkRead(ctx, 1); !errors.Is(err, client.ErrUnsubscribed) {
		t.Fatalf("mark read after unsubscribing: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if a.Status() != client.StatusDisconnected {
		t.Fatalf("status after Close: %v", a.Status())
	}
	if _, err := a.Publish(ctx, "chat:basics", "m", nil, client.PublishOptions{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("publish after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Subscribe(ctx, "chat:other", nil); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("subscribe after Close: %v, want ErrClosed", err)
	}
}

// TestDialFails: Dial reports a server that is not there, and starts
// nothing.
func TestDialFails(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := client.Dial(ctxT(t), client.Config{URL: "ws://" + addr + "/ws"}); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if _, err := client.Dial(ctxT(t), client.Config{URL: "ftp://example.com"}); err == nil {
		t.Fatal("Dial to an ftp URL succeeded")
	}
}
