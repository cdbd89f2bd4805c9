package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/internal/server"
)

// authHTTP sends a request to the test server with a bearer token and a
// body (nil: none; a string: sent as is) and returns the status and the
// decoded JSON answer.
func authHTTP(tb testing.TB, ts *testServer, method, path, token string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctxT(tb), method, "http://"+ts.Addr+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tb.Fatalf("%s %s: status %d, answer not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// refusedConnect checks that connecting with token is refused with
// unauthorized and reason, then closed with 4001.
func refusedConnect(tb testing.TB, url, token, reason string) {
	tb.Helper()
	r := dialRaw(tb, url)
	f := r.request(map[string]any{"type": "connect", "token": token})
	if f.Type != proto.TypeError || f.Code != proto.CodeUnauthorized || f.Message != reason {
		tb.Fatalf("connect: got %s, want unauthorized %q", f.Raw, reason)
	}
	r.expectClose(proto.CloseUnauthorized, 15*time.Second)
}

// TestRevocationAcrossRestart: a user disconnected by an admin cannot come
// back with the token they used, on the WebSocket or over HTTP, and
// revoke_before shuts out every token of theirs issued by then; both hold
// after a restart on the same data directory, and tokens issued later work.
func TestRevocationAcrossRestart(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret())
	admin := mint(t, "ops", "Ops", time.Hour, "admin:*")
	t1 := mint(t, "rita", "Rita", time.Hour, "subscribe:chat:*", "read:doc:*")
	t2 := mint(t, "rita", "Rita", time.Hour, "subscribe:chat:*", "read:doc:*")

	// Disconnect without a body: the token in use is revoked by its jti.
	r := connectRaw(t, ts.URL, t1, "")
	status, out := authHTTP(t, ts, "POST", "/api/users/rita/disconnect", admin, nil)
	if status != 200 || out["user"] != "rita" || out["disconnected"] != 1.0 || out["revoked_tokens"] != 1.0 || out["revoked_before"] != nil {
		t.Fatalf("disconnect: %d %v", status, out)
	}
	r.expectClose(proto.CloseUnauthorized, 15*time.Second)
	refusedConnect(t, ts.URL, t1, "token revoked")
	if status, out := authHTTP(t, ts, "GET", "/api/docs", t1, nil); status != 401 || out["message"] != "token revoked" {
		t.Fatalf("HTTP with the revoked token: %d %v", status, out)
	}
	// Her other token (another jti) still connects.
	r2 := connectRaw(t, ts.URL, t2, "")
	r2.alive()

	// Bad bodies are refused and change nothing.
	for _, body := range []any{
		map[string]any{"revoke_before": "yesterday"},
		map[string]any{"revoke_before": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
		map[string]any{"revoke_before": 5},
		map[string]any{"revoke": "now"},
		"{not json",
	} {
		if status, out := authHTTP(t, ts, "POST", "/api/users/rita/disconnect", admin, body); status != 400 || out["code"] != proto.CodeBadRequest {
			t.Fatalf("disconnect with %v: %d %v, want 400", body, status, out)
		}
	}
	r2.alive()

	// revoke_before "now": every token of hers issued by now, including t2
	// that nobody disconnected by jti... and t2's connection closes.
	status, out = authHTTP(t, ts, "POST", "/api/users/rita/disconnect", admin, map[string]any{"revoke_before": "now"})
	if status != 200 || out["disconnected"] != 1.0 || out["revoked_before"] == nil {
		t.Fatalf("disconnect with revoke_before: %d %v", status, out)
	}
	r2.expectClose(proto.CloseUnauthorized, 15*time.Second)
	refusedConnect(t, ts.URL, t2, "token revoked")
	// A token issued after the revocation's second connects.
	later := time.Now().Add(2 * time.Second)
	t3, err := auth.NewVerifier([]byte(testSecret)).Mint("rita", "Rita", []string{"subscribe:chat:*"}, time.Hour, later)
	if err != nil {
		t.Fatal(err)
	}
	r3 := connectRaw(t, ts.URL, t3, "")
	// A refresh to a revoked token is refused too.
	r3.send(map[string]any{"id": 50, "type": "refresh", "token": t1})
	if f := r3.next("the refresh's answer", func(f frame) bool { return f.ID != nil && *f.ID == 50 }); f.Code != proto.CodeUnauthorized || f.Message != "token revoked" {
		t.Fatalf("refresh with a revoked token: %s", f.Raw)
	}
	r3.expectClose(proto.CloseUnauthorized, 15*time.Second)

	// After a restart on the same data, the revocations hold.
	ts.Restart()
	refusedConnect(t, ts.URL, t1, "token revoked")
	refusedConnect(t, ts.URL, t2, "token revoked")
	if status, out := authHTTP(t, ts, "GET", "/api/docs", t1, nil); status != 401 || out["message"] != "token revoked" {
		t.Fatalf("HTTP with the revoked token after the restart: %d %v", status, out)
	}
	connectRaw(t, ts.URL, t3, "").alive()
	// Another user was never touched.
	connectRaw(t, ts.URL, mint(t, "sam", "Sam", time.Hour, "subscribe:chat:*"), "").alive()
}

// TestExpRequired: a token without exp is refused by default and accepted
// when the config file says "auth": {"require_exp": false}.
func TestExpRequired(t *testing.T) {
	t.Parallel()
	forever := mint(t, "lou", "Lou", 0, "subscribe:chat:*")
	strict := startServer(t, withSecret())
	refusedConnect(t, strict.URL, forever, "token has no exp")

	no := false
	lax := startServer(t, withSecret(), func(c *server.Config) { c.File.Auth.RequireExp = &no })
	r := connectRaw(t, lax.URL, forever, "")
	r.alive()
}
