package server_test

// Helpers of the hooks tests (hooks_*_test.go): the application's backend,
// a real net/http server on 127.0.0.1 that checks every request's
// signature with the public verifier (package webhook) and answers each
// hook as the test says. Their names start with "hk".

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/server"
	"github.com/tandemhq/tandem/webhook"
)

// hkSecret signs the hook requests of the tests.
const hkSecret = "hooks-test-secret-0123456789"

// hkReply is a backend's answer to one hook request.
type hkReply struct {
	status int           // 0: 200
	body   string        // "" with status 0: {}
	delay  time.Duration // waited first (or until the server gives up)
}

// hkYes is a plain yes.
var hkYes = hkReply{}

// hkNo is a refusal with code and message.
func hkNo(code, msg string) hkReply {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return hkReply{body: string(b)}
}

// hkJSON is a yes with v as the answer.
func hkJSON(v any) hkReply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return hkReply{body: string(b)}
}

// hkBackend is the application's backend of a test.
type hkBackend struct {
	t      testing.TB
	srv    *httptest.Server
	URL    string // the hooks' base URL
	secret string

	mu          sync.Mutex
	answer      map[string]func(body []byte) hkReply // by hook; none: a plain yes
	got         map[string][]json.RawMessage         // request bodies, by hook
	badSigs     int                                  // requests whose signature did not verify
	inFlight    int                                  // requests being answered now
	maxInFlight int                                  // the most ever at once
	conns       int                                  // TCP connections open now
	maxConns    int                                  // the most ever open at once
}

// hkStart starts a backend that checks signatures with secret; the test's
// cleanup stops it.
func hkStart(t testing.TB, secret string) *hkBackend {
	t.Helper()
	b := &hkBackend{t: t, secret: secret, answer: map[string]func([]byte) hkReply{}, got: map[string][]json.RawMessage{}}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch st {
		case http.StateNew:
			b.conns++
			b.maxConns = max(b.maxConns, b.conns)
		case http.StateClosed, http.StateHijacked:
			b.conns--
		}
	}
	b.srv.Start()
	b.URL = b.srv.URL + "/app/tandem"
	t.Cleanup(b.srv.Close)
	return b
}

// on sets how the backend answers hook.
func (b *hkBackend) on(hook string, fn func(body []byte) hkReply) {
	b.mu.Lock()
	b.answer[hook] = fn
	b.mu.Unlock()
}

// requests returns the bodies the backend received for hook.
func (b *hkBackend) requests(hook string) []json.RawMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]json.RawMessage(nil), b.got[hook]...)
}

// last decodes the latest request of hook into out and fails without one.
func (b *hkBackend) last(hook string, out any) {
	b.t.Helper()
	reqs := b.requests(hook)
	if len(reqs) == 0 {
		b.t.Fatalf("the backend got no %s request", hook)
	}
	reflect.ValueOf(out).Elem().SetZero() // no field of an earlier request stays
	if err := json.Unmarshal(reqs[len(reqs)-1], out); err != nil {
		b.t.Fatal(err)
	}
}

// checkSignatures fails the test if any request's signature did not
// verify.
func (b *hkBackend) checkSignatures() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.badSigs > 0 {
		b.t.Fatalf("%d requests whose signature did not verify", b.badSigs)
	}
}

func (b *hkBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	hook := r.Header.Get(hooks.HeaderHook)
	// Verify the raw body before anything else, as docs/hooks.md says.
	if err := webhook.Verify([]byte(b.secret), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp),
		body, time.Now(), 5*time.Minute); err != nil {
		b.mu.Lock()
		b.badSigs++
		b.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/"+hook) || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, fmt.Sprintf("%s %s for hook %q", r.Method, r.URL.Path, hook), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.got[hook] = append(b.got[hook], json.RawMessage(body))
	fn := b.answer[hook]
	b.inFlight++
	b.maxInFlight = max(b.maxInFlight, b.inFlight)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
	}()
	rep := hkYes
	if fn != nil {
		rep = fn(body)
	}
	if rep.delay > 0 {
		select {
		case <-time.After(rep.delay):
		case <-r.Context().Done():
			return
		}
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	if rep.body == "" && rep.status == http.StatusOK {
		rep.body = "{}"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

// hkField decodes one field of a request body.
func hkField[T any](tb testing.TB, body []byte, name string) T {
	tb.Helper()
	var m map[string]json.RawMessage
	var v T
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatal(err)
	}
	if raw, ok := m[name]; ok {
		if err := json.Unmarshal(raw, &v); err != nil {
			tb.Fatalf("%s of %s: %v", name, body, err)
		}
	}
	return v
}

// hkDeadURL is a URL on 127.0.0.1 where nothing listens: a backend that
// is down.
func hkDeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/app/tandem"
}

// withHooks gives the server the hooks object cfg (JSON, with %s verbs
// filled in from args) and the namespaces' hooks lists.
func withHooks(t testing.TB, cfg string, args ...any) func(*server.Config) {
	t.Helper()
	h, err := hooks.ParseConfig([]byte(fmt.Sprintf(cfg, args...)))
	if err != nil {
		t.Fatalf("hooks config: %v", err)
	}
	return func(c *server.Config) { c.File.Hooks = &h }
}

// hkNamespace adds a namespace whose clients publish, with its hooks list.
func hkNamespace(name string, list ...string) func(*server.Config) {
	return func(c *server.Config) {
		var nh hooks.NamespaceHooks
		raw, _ := json.Marshal(list)
		if err := json.Unmarshal(raw, &nh); err != nil {
			panic(err)
		}
		if c.File.Namespaces == nil {
			c.File.Namespaces = map[string]server.NamespaceConfig{}
		}
		c.File.Namespaces[name] = server.NamespaceConfig{HistorySize: 100, ClientPublish: true, MaxPayload: 4096, Hooks: nh}
	}
}

// hkEdits applies several config edits.
func hkEdits(edits ...func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		for _, e := range edits {
			e(c)
		}
	}
}

// hkDial opens a raw WebSocket with the handshake's extra header.
func hkDial(tb testing.TB, url string, header http.Header) *rawConn {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &rawConn{tb: tb, ws: ws}
}

// hkConnect dials and connects with token, failing unless connected.
func hkConnect(tb testing.TB, url, token string) (*rawConn, frame) {
	tb.Helper()
	r := dialRaw(tb, url)
	f := r.request(map[string]any{"type": "connect", "token": token, "client": "raw-test"})
	if f.Type != "connected" {
		tb.Fatalf("connect: got %s", f.Raw)
	}
	return r, f
}

// hkExpectError fails unless f is an error frame with code whose message
// contains msg.
func hkExpectError(tb testing.TB, f frame, code, msg string) {
	tb.Helper()
	if f.Type != "error" || f.Code != code || !strings.Contains(f.Message, msg) {
		tb.Fatalf("got %s, want an error %s containing %q", f.Raw, code, msg)
	}
}
