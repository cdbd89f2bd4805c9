package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// testSecret signs the tokens of production-mode tests.
const testSecret = "integration-test-secret-0123456789"

// serverOpt adjusts a test server's config.
type serverOpt func(*server.Config)

// withSecret runs the server in production mode.
func withSecret() serverOpt { return func(c *server.Config) { c.JWTSecret = testSecret } }

// withLimits edits the limits.
func withLimits(f func(*server.LimitsConfig)) serverOpt {
	return func(c *server.Config) { f(&c.File.Limits) }
}

// withNamespace adds or replaces a namespace.
func withNamespace(name string, nc server.NamespaceConfig) serverOpt {
	return func(c *server.Config) {
		if c.File.Namespaces == nil {
			c.File.Namespaces = map[string]server.NamespaceConfig{}
		}
		c.File.Namespaces[name] = nc
	}
}

// withNoSync drops fsync: for the benchmark, whose subject is fan-out.
func withNoSync() serverOpt { return func(c *server.Config) { c.NoSync = true } }

// testServer is the real server on 127.0.0.1 (server/servertest).
type testServer = servertest.Server

// startServer starts a server; the test's cleanup closes it.
func startServer(tb testing.TB, opts ...serverOpt) *testServer {
	tb.Helper()
	return servertest.Start(tb, servertest.WithConfig(func(c *server.Config) {
		for _, o := range opts {
			o(c)
		}
	}))
}

// mint signs a token with the test secret.
func mint(tb testing.TB, user, name string, ttl time.Duration, allow ...string) string {
	tb.Helper()
	tok, err := auth.NewVerifier([]byte(testSecret)).Mint(user, name, allow, ttl, time.Now())
	if err != nil {
		tb.Fatalf("mint: %v", err)
	}
	return tok
}

// recv waits for a value on ch.
func recv[T any](tb testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// ---- the Go client ----

// dial connects a Go client as a development-mode guest (user may be "")
// or, with a token, in production mode; the test's cleanup closes it.
func dial(tb testing.TB, url string, edit func(*client.Config)) *client.Client {
	tb.Helper()
	cfg := client.Config{URL: url, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// guest dials as the development-mode guest user.
func guest(tb testing.TB, url, user string) *client.Client {
	tb.Helper()
	return dial(tb, url, func(c *client.Config) { c.User, c.Name = user, user })
}

// collector gathers a subscription's messages.
type collector struct {
	mu   sync.Mutex
	msgs []client.Message
	more chan struct{} // cap 1: a message arrived
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) handle(m client.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func (c *collector) all() []client.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.Message(nil), c.msgs...)
}

// wait waits until at least n messages arrived and returns them.
func (c *collector) wait(tb testing.TB, n int, timeout time.Duration) []client.Message {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		if msgs := c.all(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-c.more:
		case <-deadline:
			tb.Fatalf("timed out after %v with %d of %d messages", timeout, len(c.all()), n)
		}
	}
}

// checkOffsets fails unless msgs hold exactly offsets from..to, in order.
func checkOffsets(tb testing.TB, who string, msgs []client.Message, from, to uint64) {
	tb.Helper()
	if want := int(to - from + 1); len(msgs) != want {
		tb.Fatalf("%s: got %d messages, want %d (offsets %d..%d): %v", who, len(msgs), want, from, to, offsetsOf(msgs))
	}
	for i, m := range msgs {
		if want := from + uint64(i); m.Offset != want {
			tb.Fatalf("%s: message %d has offset %d, want %d: %v", who, i, m.Offset, want, offsetsOf(msgs))
		}
	}
}

func offsetsOf(msgs []client.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Offset
	}
	return out
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// ---- raw WebSocket, for what the Go client would never send ----

// frame is any server frame, decoded loosely.
type frame struct {
	ID          *int64            `json:"id"`
	Type        string            `json:"type"`
	Code        string            `json:"code"`
	Message     string            `json:"message"`
	ClientID    string            `json:"client_id"`
	User        json.RawMessage   `json:"user"`
	Channel     string            `json:"channel"`
	Doc         string            `json:"doc"`
	Offset      uint64            `json:"offset"`
	Epoch       string            `json:"epoch"`
	Recovered   bool              `json:"recovered"`
	Messages    []proto.Message   `json:"messages"`
	Members     []proto.Member    `json:"members"`
	MemberCount *int              `json:"member_count"`
	Receipts    map[string]uint64 `json:"receipts"`
	Event       string            `json:"event"`
	Data        json.RawMessage   `json:"data"`
	Member      *proto.Member     `json:"member"`
	Reason      string            `json:"reason"`
	By          string            `json:"by"`
	Raw         string            `json:"-"`
}

// rawConn is a bare WebSocket speaking the protocol by hand.
type rawConn struct {
	tb      testing.TB
	ws      *websocket.Conn
	pending []frame // frames of the last message not returned yet
	id      int64
}

func dialRaw(tb testing.TB, url string) *rawConn {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &rawConn{tb: tb, ws: ws}
}

// connectRaw dials and connects (token "" for a dev-mode guest named user).
func connectRaw(tb testing.TB, url, token, user string) *rawConn {
	tb.Helper()
	r := dialRaw(tb, url)
	f := r.request(map[string]any{"type": "connect", "token": token, "user": user, "client": "raw-test"})
	if f.Type != proto.TypeConnected {
		tb.Fatalf("connect: got %s", f.Raw)
	}
	return r
}

func (r *rawConn) sendText(s string) {
	r.tb.Helper()
	if err := r.ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.tb.Fatalf("write: %v", err)
	}
}

func (r *rawConn) send(v any) {
	r.tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.sendText(string(b))
}

// read returns the next frame, or the error that ended the connection.
func (r *rawConn) read(timeout time.Duration) (frame, error) {
	if len(r.pending) == 0 {
		_ = r.ws.SetReadDeadline(time.Now().Add(timeout))
		_, data, err := r.ws.ReadMessage()
		if err != nil {
			return frame{}, err
		}
		for _, line := range splitLines(data) {
			var f frame
			if err := json.Unmarshal(line, &f); err != nil {
				return frame{}, fmt.Errorf("server sent a frame that is not JSON: %q: %w", line, err)
			}
			f.Raw = string(line)
			r.pending = append(r.pending, f)
		}
	}
	f := r.pending[0]
	r.pending = r.pending[1:]
	return f, nil
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			out = append(out, data[start:i])
			start = i + 1
		}
	}
	return append(out, data[start:])
}

// next reads until a frame satisfies match, skipping the others.
func (r *rawConn) next(what string, match func(frame) bool) frame {
	r.tb.Helper()
	for {
		f, err := r.read(15 * time.Second)
		if err != nil {
			r.tb.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

// request sends v with a fresh id and returns the frame answering it.
func (r *rawConn) request(v map[string]any) frame {
	r.tb.Helper()
	r.id++
	id := r.id
	v["id"] = id
	r.send(v)
	return r.next(fmt.Sprintf("the answer to %v", v), func(f frame) bool { return f.ID != nil && *f.ID == id })
}

// expectClose reads until the connection ends and checks its close code.
func (r *rawConn) expectClose(code int, timeout time.Duration) {
	r.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := r.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			r.tb.Fatalf("connection ended with %v, want close %d", err, code)
		}
		if ce.Code != code {
			r.tb.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// alive checks that the connection still answers a ping.
func (r *rawConn) alive() {
	r.tb.Helper()
	if f := r.request(map[string]any{"type": "ping"}); f.Type != proto.TypePong {
		r.tb.Fatalf("ping: got %s, want pong", f.Raw)
	}
}

// isClose reports whether err is a WebSocket close with code.
func isClose(err error, code int) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}
