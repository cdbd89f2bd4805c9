package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/proto"
	"github.com/tandemhq/tandem/webhook"
)

// callHooks are the hooks a client's request waits on (doc_store is a
// sender, tested in docstore_test.go).
var callHooks = []Hook{HookConnect, HookRefresh, HookSubscribe, HookPublish, HookDocLoad, HookDocOpen, HookRPC}

// allowAnswer is a valid yes of each hook.
var allowAnswer = map[Hook]string{
	HookConnect:   `{"user":{"id":"u1"},"grants":["subscribe:chat:*"]}`,
	HookRefresh:   `{"grants":["subscribe:chat:*"]}`,
	HookSubscribe: `{}`,
	HookPublish:   `{}`,
	HookDocLoad:   `{"content":"hello"}`,
	HookDocOpen:   ``, // an empty 2xx body allows
	HookRPC:       `{"data":{"ok":true}}`,
}

// invoke calls hook h on c with a typical request. For the hooks that
// allow on failure, it returns the result's Failure as allowedFailure.
func invoke(ctx context.Context, c *Caller, h Hook) (allowedFailure *Failure, err error) {
	u := User{ID: "u1", Name: "Ann"}
	switch h {
	case HookConnect:
		_, err = c.Connect(ctx, ConnectRequest{ClientID: "c_1", Token: "opaque"})
	case HookRefresh:
		_, err = c.Refresh(ctx, RefreshRequest{User: u, ClientID: "c_1"})
	case HookSubscribe:
		var r SubscribeResult
		r, err = c.Subscribe(ctx, SubscribeRequest{User: u, ClientID: "c_1", Channel: "chat:1", Transport: TransportWebSocket})
		allowedFailure = r.Failure
	case HookPublish:
		var r PublishResult
		r, err = c.Publish(ctx, PublishRequest{User: u, ClientID: "c_1", Channel: "chat:1", Data: json.RawMessage(`{"text":"hi"}`), Transport: TransportWebSocket})
		allowedFailure = r.Failure
	case HookDocLoad:
		_, err = c.DocLoad(ctx, DocLoadRequest{Doc: "notes"})
	case HookDocOpen:
		var r DocOpenResult
		r, err = c.DocOpen(ctx, DocOpenRequest{User: u, ClientID: "c_1", Doc: "notes"})
		allowedFailure = r.Failure
	case HookRPC:
		_, err = c.RPC(ctx, RPCRequest{User: u, ClientID: "c_1", Method: "chat.history"})
	}
	return allowedFailure, err
}

// fallsBack reports whether hook h's "allow" means falling back to the
// server's own rules (an ErrFallback error) rather than allowing.
func fallsBack(h Hook) bool { return h == HookConnect || h == HookRefresh || h == HookDocLoad }

// withPolicy returns cfg with every call hook's timeout and policy set.
func withPolicy(cfg Config, p Policy, timeout time.Duration) Config {
	for _, h := range callHooks {
		hc := cfg.hookConfig(h)
		hc.Timeout = Duration(timeout)
		if h != HookRPC {
			hc.OnFailure = p
		}
	}
	return cfg
}

// TestEachHook covers, for every hook: the backend allows; it refuses
// (its code and message come through); it does not answer in time; it is
// down; each failure under both policies.
func TestEachHook(t *testing.T) {
	for _, h := range callHooks {
		t.Run(h.String(), func(t *testing.T) {
			t.Run("allow", func(t *testing.T) {
				b := newBackend(t, func(g got, r *http.Request) (int, string) { return 200, allowAnswer[h] })
				c, _ := newCaller(t, allHooks(b.URL))
				if f, err := invoke(context.Background(), c, h); err != nil || f != nil {
					t.Fatalf("allow: err %v, failure %v", err, f)
				}
				reqs := b.requests()
				if len(reqs) != 1 || reqs[0].hook != h.String() || reqs[0].path != "/"+h.String() {
					t.Fatalf("backend got %+v, want one request to /%s with X-Tandem-Hook %s", reqs, h, h)
				}
			})
			t.Run("refuse", func(t *testing.T) {
				b := newBackend(t, func(g got, r *http.Request) (int, string) {
					return 200, `{"error":{"code":"conflict","message":"not now, Ann"}}`
				})
				c, _ := newCaller(t, allHooks(b.URL))
				_, err := invoke(context.Background(), c, h)
				var r *Refusal
				if !errors.As(err, &r) || r.Code != proto.CodeConflict || r.Message != "not now, Ann" || r.Hook != h {
					t.Fatalf("refuse: got %v, want the backend's conflict and message", err)
				}
				if code, msg, ok := WireError(err); !ok || code != "conflict" || msg != "not now, Ann" {
					t.Fatalf("WireError: %q %q %v", code, msg, ok)
				}
			})
			for _, p := range []Policy{PolicyRefuse, PolicyAllow} {
				if h == HookRPC && p == PolicyAllow {
					continue // rpc only refuses (TestConfigValidate)
				}
				for _, kind := range []FailureKind{FailTimeout, FailDown} {
					t.Run(fmt.Sprintf("%s/%s", kind, p), func(t *testing.T) {
						u := deadURL(t)
						if kind == FailTimeout {
							u = newBackend(t, stall).URL
						}
						c, _ := newCaller(t, withPolicy(allHooks(u), p, 150*time.Millisecond))
						start := time.Now()
						f, err := invoke(context.Background(), c, h)
						if d := time.Since(start); d > 5*time.Second {
							t.Fatalf("the call took %v, past its 150ms timeout by far", d)
						}
						var fe *Failure
						switch {
						case p == PolicyRefuse:
							if !errors.As(err, &fe) || fe.Kind != kind || fe.Allowed || errors.Is(err, ErrFallback) {
								t.Fatalf("got %v, want a %s failure, refused", err, kind)
							}
							if code, msg, _ := WireError(err); code != proto.CodeUnavailable || strings.Contains(msg, "127.0.0.1") {
								t.Fatalf("the client would see %q %q: want unavailable, no address", code, msg)
							}
						case fallsBack(h):
							if !errors.Is(err, ErrFallback) || !errors.As(err, &fe) || fe.Kind != kind {
								t.Fatalf("got %v, want a %s failure matching ErrFallback", err, kind)
							}
						default:
							if err != nil || f == nil || f.Kind != kind || !f.Allowed {
								t.Fatalf("got err %v, failure %v: want allowed, with the %s failure noted", err, f, kind)
							}
						}
					})
				}
			}
		})
	}
}

func TestConnect(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[ConnectRequest](g.body)
		switch req.Cookies["session"] {
		case "good":
			return 200, fmt.Sprintf(`{"user":{"id":"u7","name":"Ann","color":"#0af"},"grants":["subscribe:chat:*","publish:chat:*"],
				"expires_at":%q,"data":{"plan":  "pro"}}`, exp.Format(time.RFC3339))
		case "minimal":
			return 200, `{"user":{"id":"u8"}}`
		}
		if req.Cookies["session"] == "string" {
			return 200, `{"error":"sign in first"}`
		}
		return 200, `{"error":{"code":"unauthorized","message":"session expired: sign in again"}}`
	})
	cfg := allHooks(b.URL)
	cfg.Forward = Forward{Cookies: []string{"session"}, Headers: []string{"user-agent"}}
	c, _ := newCaller(t, cfg)

	upgrade := httptest.NewRequest("GET", "/ws", nil)
	upgrade.AddCookie(&http.Cookie{Name: "session", Value: "good"})
	upgrade.AddCookie(&http.Cookie{Name: "other", Value: "secret"})
	upgrade.Header.Set("User-Agent", "test/1")
	hs := c.Handshake(upgrade)
	res, err := c.Connect(context.Background(), ConnectRequest{ClientID: "c_1", Client: "tandem-js/1", RemoteAddr: "127.0.0.1", Handshake: hs})
	if err != nil {
		t.Fatal(err)
	}
	want := ConnectResult{User: User{ID: "u7", Name: "Ann", Color: "#0af"}, Grants: []string{"subscribe:chat:*", "publish:chat:*"}, ExpiresAt: exp, Data: json.RawMessage(`{"plan":"pro"}`)}
	if fmt.Sprint(res) != fmt.Sprint(want) || !res.ExpiresAt.Equal(exp) {
		t.Fatalf("got %+v\nwant %+v", res, want)
	}
	sent := decode[ConnectRequest](t, b.requests()[0].body)
	if sent.Cookies["session"] != "good" || sent.Cookies["other"] != "" || sent.Headers["User-Agent"] != "test/1" || sent.ClientID != "c_1" || sent.RemoteAddr != "127.0.0.1" {
		t.Fatalf("the backend got %+v: want only the listed cookie and header", sent)
	}

	// Defaults: a name and a colour for a user given only an id.
	res, err = c.Connect(context.Background(), ConnectRequest{ClientID: "c_2", Handshake: Handshake{Cookies: map[string]string{"session": "minimal"}}})
	if err != nil || res.User != (User{ID: "u8", Name: "u8", Color: proto.ColorOf("u8")}) || len(res.Grants) != 0 || !res.ExpiresAt.IsZero() || res.Data != nil {
		t.Fatalf("minimal: %+v, %v", res, err)
	}
	// A refusal: its message is the client's.
	_, err = c.Connect(context.Background(), ConnectRequest{ClientID: "c_3"})
	var r *Refusal
	if !errors.As(err, &r) || r.Code != "unauthorized" || r.Message != "session expired: sign in again" {
		t.Fatalf("refused: %v", err)
	}
	// A bare string is a refusal too, never a bad answer (which policy
	// allow would let through).
	_, err = c.Connect(context.Background(), ConnectRequest{ClientID: "c_4", Handshake: Handshake{Cookies: map[string]string{"session": "string"}}})
	if !errors.As(err, &r) || r.Code != "unauthorized" || r.Message != "sign in first" {
		t.Fatalf("refused with a string: %v", err)
	}
}

// TestBadAnswers: an answer that is not one is a bad_answer failure,
// never a yes, and under policy refuse never lets the request through.
func TestBadAnswers(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name   string
		hook   Hook
		status int
		answer string
	}{
		{"connect without user", HookConnect, 200, `{"grants":[]}`},
		{"connect user without id", HookConnect, 200, `{"user":{"name":"Ann"}}`},
		{"connect bad grant", HookConnect, 200, `{"user":{"id":"u1"},"grants":["fly:chat:*"]}`},
		{"connect expired", HookConnect, 200, `{"user":{"id":"u1"},"expires_at":"` + past + `"}`},
		{"connect expiry not a time", HookConnect, 200, `{"user":{"id":"u1"},"expires_at":1767225600}`},
		{"connect bad colour", HookConnect, 200, `{"user":{"id":"u1","color":"red; background:url(x)"}}`},
		{"connect control char in id", HookConnect, 200, `{"user":{"id":"u\u0000"}}`},
		{"connect empty body", HookConnect, 200, ``},
		{"refresh another user", HookRefresh, 200, `{"user":{"id":"u2"}}`},
		{"subscribe not JSON", HookSubscribe, 200, `allow`},
		{"subscribe a list", HookSubscribe, 200, `[]`},
		{"publish 500", HookPublish, 500, `{}`},
		{"publish 403 status", HookPublish, 403, `{}`},
		{"publish redirect", HookPublish, 302, `{}`},
		{"doc_load without content", HookDocLoad, 200, `{}`},
		{"doc_load content not a string", HookDocLoad, 200, `{"content":42}`},
		{"doc_open over the size bound", HookDocOpen, 200, `{"x":"` + strings.Repeat("a", 2048) + `"}`},
		{"rpc truncated", HookRPC, 200, `{"data":{`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, func(g got, r *http.Request) (int, string) {
				if tc.status == 302 {
					return 302, `{}`
				}
				return tc.status, tc.answer
			})
			cfg := allHooks(b.URL)
			cfg.MaxAnswerBytes = 1024
			c, reg := newCaller(t, cfg)
			_, err := invoke(context.Background(), c, tc.hook)
			var f *Failure
			if !errors.As(err, &f) || f.Kind != FailBadAnswer || f.Allowed {
				t.Fatalf("got %v, want a bad_answer failure, refused", err)
			}
			if n := counter(t, reg, "tandem_hook_failures_total", "hook", tc.hook.String(), "kind", "bad_answer"); n != 1 {
				t.Fatalf("failures{bad_answer} = %v, want 1", n)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[RefreshRequest](g.body)
		if req.Token == "revoked" {
			return 200, `{"error":{"message":"revoked"}}`
		}
		return 200, `{"user":{"id":"u1","name":"Ann B."},"grants":["read:doc:*"]}`
	})
	c, _ := newCaller(t, allHooks(b.URL))
	res, err := c.Refresh(context.Background(), RefreshRequest{User: User{ID: "u1", Name: "Ann", Color: "#fff"}, ClientID: "c_1", Token: "t2"})
	if err != nil || res.User.Name != "Ann B." || res.User.Color != proto.ColorOf("u1") || len(res.Grants) != 1 {
		t.Fatalf("refresh: %+v %v", res, err)
	}
	_, err = c.Refresh(context.Background(), RefreshRequest{User: User{ID: "u1"}, ClientID: "c_1", Token: "revoked"})
	var r *Refusal
	if !errors.As(err, &r) || r.Code != proto.CodeUnauthorized || r.Message != "revoked" {
		t.Fatalf("a refusal without a code: got %v, want unauthorized with its message", err)
	}
}

// TestSubscribeData: the backend's data for `subscribed` comes through,
// without the whitespace (newlines) that would break a frame.
func TestSubscribeData(t *testing.T) {
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[SubscribeRequest](g.body)
		if req.Channel == "chat:vip" {
			return 200, "{\"data\": {\n  \"role\": \"moderator\",\n  \"unread\": 3\n}}"
		}
		return 200, `{"data":null}`
	})
	c, _ := newCaller(t, allHooks(b.URL))
	res, err := c.Subscribe(context.Background(), SubscribeRequest{User: User{ID: "u1"}, Channel: "chat:vip", Transport: TransportWebSocket})
	if err != nil || string(res.Data) != `{"role":"moderator","unread":3}` {
		t.Fatalf("got %s %v", res.Data, err)
	}
	res, err = c.Subscribe(context.Background(), SubscribeRequest{User: User{ID: "u1"}, Channel: "chat:1", Transport: TransportWebSocket})
	if err != nil || res.Data != nil {
		t.Fatalf("null data: got %s %v, want none", res.Data, err)
	}
	sent := decode[SubscribeRequest](t, b.requests()[0].body)
	if sent.User.ID != "u1" || sent.Channel != "chat:vip" || sent.Transport != "websocket" {
		t.Fatalf("the backend got %+v", sent)
	}
}

// TestPublishReplace: the backend's replacement data (its database id
// added) replaces the message's; an answer without data keeps it.
func TestPublishReplace(t *testing.T) {
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[PublishRequest](g.body)
		if req.Event == "keep" {
			return 200, `{}`
		}
		var d map[string]any
		_ = json.Unmarshal(req.Data, &d)
		d["id"] = 41
		out, _ := json.Marshal(map[string]any{"data": d})
		return 200, string(out)
	})
	c, _ := newCaller(t, allHooks(b.URL))
	res, err := c.Publish(context.Background(), PublishRequest{User: User{ID: "u1"}, Channel: "chat:1", Event: "message", Data: json.RawMessage(`{"text":"hi"}`), Transport: TransportWebSocket})
	if err != nil || string(res.Data) != `{"id":41,"text":"hi"}` {
		t.Fatalf("got %s %v", res.Data, err)
	}
	res, err = c.Publish(context.Background(), PublishRequest{APIKey: "backend", Channel: "chat:1", Event: "keep", Data: json.RawMessage(`{"text":"hi"}`), Transport: TransportHTTP})
	if err != nil || res.Data != nil {
		t.Fatalf("keep: got %s %v", res.Data, err)
	}
	sent := decode[map[string]any](t, b.requests()[1].body)
	if _, ok := sent["user"]; ok || sent["api_key"] != "backend" || sent["transport"] != "http" {
		t.Fatalf("an API key's broadcast: the backend got %v, want no user, the key's name", sent)
	}
}

func TestDocLoad(t *testing.T) {
	b := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[DocLoadRequest](g.body)
		switch req.Doc {
		case "notes":
			return 200, `{"content":"from the app\n"}`
		case "empty":
			return 200, `{"content":""}`
		}
		return 200, `{"error":{}}`
	})
	c, _ := newCaller(t, allHooks(b.URL))
	for doc, want := range map[string]string{"notes": "from the app\n", "empty": ""} {
		res, err := c.DocLoad(context.Background(), DocLoadRequest{Doc: doc})
		if err != nil || res.Content != want {
			t.Fatalf("%s: got %q %v, want %q", doc, res.Content, err, want)
		}
	}
	_, err := c.DocLoad(context.Background(), DocLoadRequest{Doc: "missing"})
	var r *Refusal
	if !errors.As(err, &r) || r.Code != proto.CodeNotFound {
		t.Fatalf("missing: got %v, want not_found", err)
	}
}

// TestRPCRoutes: methods go to the route with the longest matching
// prefix; a method no route takes and a bad name are refused without a
// request.
func TestRPCRoutes(t *testing.T) {
	chat := newBackend(t, func(g got, r *http.Request) (int, string) {
		req := parse[RPCRequest](g.body)
		return 200, fmt.Sprintf(`{"data":{"backend":"chat","method":%q,"echo":%s}}`, req.Method, req.Data)
	})
	admin := newBackend(t, func(g got, r *http.Request) (int, string) {
		return 200, `{"error":{"code":"forbidden","message":"admins only"}}`
	})
	silent := newBackend(t, func(g got, r *http.Request) (int, string) { return 200, `{}` })
	cfg := Config{Secret: testSecret, RPC: &RPCConfig{Routes: []RPCRoute{
		{Prefix: "chat.", URL: chat.URL + "/rpc"},
		{Prefix: "chat.admin.", URL: admin.URL},
		{Prefix: "ping", URL: silent.URL},
	}}}
	c, _ := newCaller(t, cfg)
	res, err := c.RPC(context.Background(), RPCRequest{User: User{ID: "u1"}, Method: "chat.history", Data: json.RawMessage(`{"limit":2}`)})
	if err != nil || string(res.Data) != `{"backend":"chat","method":"chat.history","echo":{"limit":2}}` {
		t.Fatalf("chat.history: %s %v", res.Data, err)
	}
	_, err = c.RPC(context.Background(), RPCRequest{Method: "chat.admin.ban"})
	if code, msg, _ := WireError(err); code != "forbidden" || msg != "admins only" {
		t.Fatalf("chat.admin.ban: %v", err)
	}
	res, err = c.RPC(context.Background(), RPCRequest{Method: "ping"})
	if err != nil || string(res.Data) != "null" {
		t.Fatalf("ping: %s %v, want null data", res.Data, err)
	}
	for method, code := range map[string]string{"billing.charge": "not_found", "": "bad_request", "chat history": "bad_request", strings.Repeat("a", 129): "bad_request"} {
		_, err := c.RPC(context.Background(), RPCRequest{Method: method})
		if got, _, _ := WireError(err); got != code {
			t.Fatalf("method %q: got %v, want %s", method, err, code)
		}
	}
	if n := len(chat.requests()) + len(admin.requests()) + len(silent.requests()); n != 3 {
		t.Fatalf("the backends got %d requests, want 3 (refused methods send none)", n)
	}
	if p := chat.requests()[0].path; p != "/rpc" {
		t.Fatalf("path %q", p)
	}
}

// TestSignature: every request carries the webhooks' signature headers
// and X-Tandem-Hook, and a backend with another secret refuses it; the
// server then sees a failure, never a yes.
func TestSignature(t *testing.T) {
	b := newBackend(t, nil)
	c, _ := newCaller(t, allHooks(b.URL))
	if _, err := c.Publish(context.Background(), PublishRequest{User: User{ID: "u1"}, Channel: "chat:1", Transport: "websocket"}); err != nil {
		t.Fatal(err)
	}
	g := b.requests()[0]
	for _, h := range []string{webhook.HeaderSignature, webhook.HeaderTimestamp, webhook.HeaderDelivery, webhook.HeaderAttempt, HeaderHook} {
		if g.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if g.header.Get("Content-Type") != "application/json" || g.header.Get("User-Agent") != UserAgent || g.hook != "publish" {
		t.Errorf("headers %v", g.header)
	}
	if err := webhook.Verify([]byte(testSecret), g.header.Get(webhook.HeaderSignature), g.header.Get(webhook.HeaderTimestamp), g.body, time.Now(), time.Minute); err != nil {
		t.Fatalf("verify: %v", err)
	}
	tampered := append([]byte(nil), g.body...)
	tampered[len(tampered)-2] ^= 1
	if webhook.Verify([]byte(testSecret), g.header.Get(webhook.HeaderSignature), g.header.Get(webhook.HeaderTimestamp), tampered, time.Now(), time.Minute) == nil {
		t.Fatal("a tampered body verified")
	}

	other := newBackend(t, nil)
	other.secret = "another-secret-of-16-bytes"
	c2, _ := newCaller(t, allHooks(other.URL))
	_, err := c2.Publish(context.Background(), PublishRequest{User: User{ID: "u1"}, Channel: "chat:1", Transport: "websocket"})
	var f *Failure
	if !errors.As(err, &f) || f.Kind != FailBadAnswer {
		t.Fatalf("a backend that cannot verify the request: got %v, want a bad_answer failure", err)
	}
	other.badSig.Store(0) // expected here
}

// TestOffCostsNothing: hooks that are off (a nil Caller, or one with other
// hooks on) answer at once without allocating.
func TestOffCostsNothing(t *testing.T) {
	b := newBackend(t, nil)
	only, _ := newCaller(t, Config{URL: b.URL, Secret: testSecret, RPC: &RPCConfig{}})
	var none *Caller
	if c, err := New(Config{}, Options{}); c != nil || err != nil {
		t.Fatalf("New with no hook: %v %v, want nil, nil", c, err)
	}
	ctx := context.Background()
	req := httptest.NewRequest("GET", "/ws", nil)
	for name, c := range map[string]*Caller{"nil": none, "rpc only": only} {
		allocs := testing.AllocsPerRun(100, func() {
			_ = c.Enabled(HookPublish)
			if _, err := c.Subscribe(ctx, SubscribeRequest{Channel: "chat:1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, PublishRequest{Channel: "chat:1"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DocOpen(ctx, DocOpenRequest{Doc: "d"}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Connect(ctx, ConnectRequest{}); err != ErrNotConfigured {
				t.Fatal(err)
			}
			if _, err := c.DocLoad(ctx, DocLoadRequest{Doc: "d"}); err != ErrNotConfigured {
				t.Fatal(err)
			}
			c.DocChanged("d", 3, "e")
			c.StoreDoc(DocSnapshot{Doc: "d", Version: 3})
			_ = c.Handshake(req)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per run of the off hooks, want 0", name, allocs)
		}
	}
	if len(b.requests()) != 0 {
		t.Fatal("an off hook sent a request")
	}
	if _, err := none.RPC(ctx, RPCRequest{Method: "x"}); err != ErrNotConfigured {
		t.Fatal(err)
	}
	if err := none.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCanceled: a caller that goes away gets a canceled failure, to which
// the policy does not apply.
func TestCanceled(t *testing.T) {
	b := newBackend(t, stall)
	c, reg := newCaller(t, withPolicy(allHooks(b.URL), PolicyAllow, 10*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for deadline := time.Now().Add(10 * time.Second); len(b.requests()) == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Publish(ctx, PublishRequest{Channel: "chat:1"})
	var f *Failure
	if !errors.As(err, &f) || f.Kind != FailCanceled || f.Allowed {
		t.Fatalf("got %v, want a canceled failure, not allowed", err)
	}
	if n := counter(t, reg, "tandem_hook_failures_total", "hook", "publish", "kind", "canceled"); n != 1 {
		t.Fatalf("canceled failures %v", n)
	}
}
