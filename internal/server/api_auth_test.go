package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/server"
)

const (
	apiJWTSecret  = "api-test-jwt-secret-0123456789abcdef"
	apiKeyLimited = "api-test-key-limited-0123456789" // may publish to customer_* and read documents
)

// apiProduction runs the server in production mode with apiKeyAll and
// apiKeyLimited.
func apiProduction(c *server.Config) {
	c.JWTSecret = apiJWTSecret
	c.File.APIKeys = []server.APIKeyConfig{{Key: apiKeyLimited, Name: "limited", Grants: []string{"publish:customer_*", "read:doc:*"}}}
}

// apiJWT signs a token for user with the grants; ttl may be negative (an
// expired token); jti may be "".
func apiJWT(t testing.TB, secret, user, jti string, ttl time.Duration, allow ...string) string {
	t.Helper()
	now := time.Now()
	c := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, ID: jti, IssuedAt: jwt.NewNumericDate(now.Add(min(ttl, 0) - time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl))},
		Name: user, Allow: allow,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAPIAuthFailures: every way to fail authentication answers 401 with
// WWW-Authenticate and the unauthorized code, every missing grant 403
// forbidden, and a revoked token's jti is refused until it expires.
func TestAPIAuthFailures(t *testing.T) {
	t.Parallel()
	a := apiStart(t, apiProduction)
	broadcast := map[string]any{"channel": "chat:1", "event": "e", "data": map[string]int{"n": 1}}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header []string // sent as is, instead of a bearer token
		token  string
		status int
	}{
		{"no credentials", "POST", "/api/broadcast", nil, "", 401},
		{"no credentials, GET", "GET", "/api/docs", nil, "", 401},
		{"empty bearer", "POST", "/api/broadcast", []string{"Authorization", "Bearer "}, "", 401},
		{"basic scheme", "POST", "/api/broadcast", []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, "", 401},
		{"key in a query string is not read", "POST", "/api/broadcast?key=" + apiKeyAll, nil, "", 401},
		{"unknown key", "POST", "/api/broadcast", nil, "api-test-key-all-0123456780", 401},
		{"key prefix", "POST", "/api/broadcast", nil, apiKeyAll[:10], 401},
		{"malformed JWT", "POST", "/api/broadcast", nil, "a.b.c", 401},
		{"JWT with a bad signature", "POST", "/api/broadcast", nil, apiJWT(t, "another-secret-0123456789", "u1", "", time.Hour, "admin:*"), 401},
		{"expired JWT", "POST", "/api/broadcast", nil, apiJWT(t, apiJWTSecret, "u1", "", -time.Minute, "admin:*"), 401},
		{"JWT without a subject", "POST", "/api/broadcast", nil, apiJWT(t, apiJWTSecret, "", "", time.Hour, "admin:*"), 401},
		{"key without the grant", "POST", "/api/broadcast", nil, apiKeyLimited, 403},
		{"key without the grant, docs", "DELETE", "/api/docs/x", nil, apiKeyLimited, 403},
		{"key without the grant, deliveries", "GET", "/api/webhooks/deliveries", nil, apiKeyLimited, 403},
		{"key without the grant, backup", "GET", "/api/backup", nil, apiKeyLimited, 403},
		{"key without the grant, disconnect", "POST", "/api/users/u1/disconnect", nil, apiKeyLimited, 403},
		{"JWT without the grant", "POST", "/api/broadcast", nil, apiJWT(t, apiJWTSecret, "u1", "", time.Hour, "subscribe:*"), 403},
		{"JWT without the grant, history", "GET", "/api/channels/chat:1/history", nil, apiJWT(t, apiJWTSecret, "u1", "", time.Hour, "publish:chat:*"), 403},
		{"JWT without the grant, import", "POST", "/api/docs/import", nil, apiJWT(t, apiJWTSecret, "u1", "", time.Hour, "read:doc:*"), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = broadcast
			}
			r := a.do(tc.method, tc.path, tc.token, body, tc.header...)
			code, _ := r.apiError()
			want := map[int]string{401: "unauthorized", 403: "forbidden"}[tc.status]
			if r.status != tc.status || code != want {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, want)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="tandem"` {
				t.Fatalf("401 without WWW-Authenticate: %v", r.header)
			}
		})
	}

	// The same credentials with the grant pass: the failures above are
	// about the grant, not the request.
	if r := a.do("POST", "/api/broadcast", apiKeyLimited, map[string]any{"channel": "customer_7", "event": "e"}); r.status != 200 {
		t.Fatalf("limited key on its own channel: %d %s", r.status, r.body)
	}
	if r := a.do("POST", "/api/broadcast", apiJWT(t, apiJWTSecret, "u1", "", time.Hour, "publish:chat:*"), broadcast); r.status != 200 {
		t.Fatalf("JWT with the grant: %d %s", r.status, r.body)
	}

	// Revocation: a user connected with a token whose jti is then denied.
	tok := apiJWT(t, apiJWTSecret, "u9", "jti-u9-1", time.Hour, "admin:*")
	if r := a.do("GET", "/api/docs", tok, nil); r.status != 200 {
		t.Fatalf("admin JWT before revocation: %d %s", r.status, r.body)
	}
	ws, _, err := websocket.DefaultDialer.Dial(a.ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(map[string]any{"id": 1, "type": "connect", "token": tok}); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"connected"`) {
		t.Fatalf("connect: %s %v", msg, err)
	}
	var out struct {
		User         string `json:"user"`
		Disconnected int    `json:"disconnected"`
	}
	a.call("POST", "/api/users/u9/disconnect", nil, 200, &out)
	if out.User != "u9" || out.Disconnected != 1 {
		t.Fatalf("disconnect: %+v", out)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != 4001 {
				t.Fatalf("closed with %d, want 4001", ce.Code)
			}
			break
		}
		if err != nil {
			t.Fatalf("waiting for the close: %v", err)
		}
	}
	r := a.do("GET", "/api/docs", tok, nil)
	if code, msg := r.apiError(); r.status != 401 || code != "unauthorized" || !strings.Contains(msg, "revoked") {
		t.Fatalf("revoked JWT: %d %s", r.status, r.body)
	}
	// Another token of the same user (another jti) still works.
	if r := a.do("GET", "/api/docs", apiJWT(t, apiJWTSecret, "u9", "jti-u9-2", time.Hour, "admin:*"), nil); r.status != 200 {
		t.Fatalf("a fresh token after revocation: %d %s", r.status, r.body)
	}
}

// TestAPIDevModeWithKeys: a development-mode server is open without keys,
// and closed once a key is configured.
func TestAPIDevModeWithKeys(t *testing.T) {
	t.Parallel()
	open := apiStart(t, func(c *server.Config) { c.APIKeys = nil })
	if r := open.do("GET", "/api/docs", "", nil); r.status != 200 {
		t.Fatalf("dev mode without keys: %d %s", r.status, r.body)
	}
	closed := apiStart(t, nil)
	if r := closed.do("GET", "/api/docs", "", nil); r.status != 401 {
		t.Fatalf("dev mode with a key, no credentials: %d %s", r.status, r.body)
	}
	if r := closed.do("GET", "/api/docs", "wrong-key-0123456789", nil); r.status != 401 {
		t.Fatalf("dev mode with a key, a wrong key: %d %s", r.status, r.body)
	}
}

// TestAPIBadBodies: too large → 413, malformed → 400, both with the error
// object, and nothing published.
func TestAPIBadBodies(t *testing.T) {
	t.Parallel()
	a := apiStart(t, nil)
	sub := a.dial("watcher")
	sub.subscribe("customer_7")
	huge := `{"channel":"customer_7","event":"e","data":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		status int
		code   string
	}{
		{"broadcast over 1 MiB", "POST", "/api/broadcast", huge, nil, 413, "too_large"},
		{"create over 1 MiB", "POST", "/api/docs", `{"id":"d","content":"` + strings.Repeat("y", 1<<20) + `"}`, nil, 413, "too_large"},
		{"text/plain over 1 MiB", "PUT", "/api/docs/d/content", strings.Repeat("z", 1<<20+1), []string{"Content-Type", "text/plain; charset=utf-8"}, 413, "too_large"},
		{"malformed JSON", "POST", "/api/broadcast", `{"channel":"customer_7",`, nil, 400, "bad_request"},
		{"not JSON at all", "POST", "/api/broadcast", `channel=customer_7`, nil, 400, "bad_request"},
		{"unknown field", "POST", "/api/broadcast", `{"channel":"customer_7","evnt":"e"}`, nil, 400, "bad_request"},
		{"wrong type", "POST", "/api/broadcast", `{"channel":7}`, nil, 400, "bad_request"},
		{"empty body", "POST", "/api/broadcast", ``, nil, 400, "bad_request"},
		{"empty batch", "POST", "/api/broadcast", `{"broadcasts":[]}`, nil, 400, "bad_request"},
		{"bad channel", "POST", "/api/broadcast", `{"channel":"no spaces"}`, nil, 400, "bad_request"},
		{"doc channel", "POST", "/api/broadcast", `{"channel":"doc:x"}`, nil, 400, "bad_request"},
		{"malformed PUT", "PUT", "/api/docs/d/content", `{"content":`, nil, 400, "bad_request"},
		{"PUT without content", "PUT", "/api/docs/d/content", `{"version":0}`, nil, 400, "bad_request"},
		{"malformed compact", "POST", "/api/docs/d/compact", `{"before":"x"}`, nil, 400, "bad_request"},
		{"malformed import", "POST", "/api/docs/import", `{"format":`, nil, 400, "bad_request"},
		{"bad query", "GET", "/api/channels/customer_7/history?since=-1", ``, nil, 400, "bad_request"},
		{"bad doc id", "GET", "/api/docs/a%20b", ``, nil, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := a.do(tc.method, tc.path, apiKeyAll, body, tc.header...)
			if code, _ := r.apiError(); r.status != tc.status || code != tc.code {
				t.Fatalf("got %d %.200s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("error with Content-Type %q", ct)
			}
		})
	}
	// Nothing reached the subscriber: the next message is the one sent now.
	a.call("POST", "/api/broadcast", map[string]any{"channel": "customer_7", "event": "after"}, 200, nil)
	if m := sub.message("customer_7"); m.Event != "after" || m.Offset != 1 {
		t.Fatalf("after the bad requests the subscriber got %s", m.Raw)
	}
	if r := a.do("GET", "/api/docs/d", apiKeyAll, nil); r.status != http.StatusNotFound {
		t.Fatalf("the refused create and PUTs made a document: %d %s", r.status, r.body)
	}
}
