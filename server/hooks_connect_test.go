package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tandemhq/tandem/hooks"
	"github.com/tandemhq/tandem/internal/testwait"
)

// hkConnectBackend answers connect by token: "ann" is Ann with the grants
// of chat:*, a colour and data; "short" is Bob whose rights end within
// two seconds; "banned" is refused; "slow" takes longer than the timeout;
// "garbage" is not an answer. refresh: "r-narrow" keeps only chat:1,
// "r-no" is refused, "r-slow" takes too long, none (the server's own
// refresh at expiry) renews for an hour unless the user is "bob-no".
func hkConnectBackend(t *testing.T) *hkBackend {
	b := hkStart(t, hkSecret)
	b.on("connect", func(body []byte) hkReply {
		switch hkField[string](t, body, "token") {
		case "ann":
			return hkJSON(map[string]any{"user": map[string]string{"id": "ann", "name": "Ann", "color": "#123456"},
				"grants": []string{"subscribe:chat:*", "publish:chat:*"}, "data": map[string]string{"plan": "pro"}})
		case "short", "short-no":
			id := "bob"
			if hkField[string](t, body, "token") == "short-no" {
				id = "bob-no"
			}
			return hkJSON(map[string]any{"user": map[string]string{"id": id}, "grants": []string{"subscribe:chat:*"},
				"expires_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)})
		case "banned":
			return hkNo("forbidden", "you are banned from this chat")
		case "slow":
			return hkReply{delay: 5 * time.Second}
		case "garbage":
			return hkReply{body: "<html>oops</html>"}
		}
		return hkNo("", "who are you?")
	})
	b.on("refresh", func(body []byte) hkReply {
		switch hkField[string](t, body, "token") {
		case "r-narrow":
			return hkJSON(map[string]any{"grants": []string{"subscribe:chat:1"}, "user": map[string]string{"id": "ann", "name": "Ann B."}})
		case "r-no":
			return hkNo("", "your session ended")
		case "r-slow":
			return hkReply{delay: 5 * time.Second}
		case "":
			if hkField[hooks.User](t, body, "user").ID == "bob-no" {
				return hkNo("", "session over")
			}
			return hkJSON(map[string]any{"grants": []string{"subscribe:chat:*"}, "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		}
		return hkNo("", "unknown token")
	})
	return b
}

// TestHookConnect: with the connect hook on, the backend decides every
// connect of a production server, with the handshake's forwarded cookie
// and header: its user, grants and data; its refusal with its reason
// (4001); a timeout, a bad answer, a backend down under policy refuse
// (unavailable, 1013); under policy allow Tandem verifies the token
// itself. Every request is signed (the backend verifies with the public
// verifier, and one with another secret refuses them all).
func TestHookConnect(t *testing.T) {
	b := hkConnectBackend(t)
	a := apiStart(t, hkEdits(withSecret(), withHooks(t, `{"url": %q, "secret": %q, "timeout": "500ms",
		"forward": {"cookies": ["session"], "headers": ["User-Agent", "X-Absent"]}, "connect": {}, "refresh": {}}`, b.URL, hkSecret)))

	t.Run("allow", func(t *testing.T) {
		h := http.Header{"Cookie": {"session=s-42; other=x"}, "User-Agent": {"hooks-test/1"}}
		r := hkDial(t, a.ws, h)
		f := r.request(map[string]any{"type": "connect", "token": "ann", "client": "raw-test"})
		if f.Type != "connected" || string(f.Data) != `{"plan":"pro"}` {
			t.Fatalf("connect: %s", f.Raw)
		}
		var user struct{ ID, Name, Color string }
		_ = json.Unmarshal(f.User, &user)
		if user.ID != "ann" || user.Name != "Ann" || user.Color != "#123456" {
			t.Fatalf("user %+v", user)
		}
		var req struct {
			ClientID   string            `json:"client_id"`
			Token      string            `json:"token"`
			Client     string            `json:"client"`
			RemoteAddr string            `json:"remote_addr"`
			Cookies    map[string]string `json:"cookies"`
			Headers    map[string]string `json:"headers"`
		}
		b.last("connect", &req)
		if req.ClientID != f.ClientID || req.Token != "ann" || req.Client != "raw-test" || req.RemoteAddr != "127.0.0.1" ||
			len(req.Cookies) != 1 || req.Cookies["session"] != "s-42" || len(req.Headers) != 1 || req.Headers["User-Agent"] != "hooks-test/1" {
			t.Fatalf("the backend got %+v", req)
		}
		// The backend's grants, and only they, are the connection's.
		if f := r.request(map[string]any{"type": "subscribe", "channel": "chat:1"}); f.Type != "subscribed" {
			t.Fatalf("subscribe chat:1: %s", f.Raw)
		}
		hkExpectError(t, r.request(map[string]any{"type": "subscribe", "channel": "news:1"}), "forbidden", "no subscribe grant")
	})

	t.Run("refuse", func(t *testing.T) {
		r := dialRaw(t, a.ws)
		hkExpectError(t, r.request(map[string]any{"type": "connect", "token": "banned"}), "forbidden", "you are banned from this chat")
		r.expectClose(4001, 10*time.Second)
		r = dialRaw(t, a.ws)
		f := r.request(map[string]any{"type": "connect", "token": "nobody"})
		if f.Code != "unauthorized" || f.Message != "who are you?" { // no code: the hook's default
			t.Fatalf("got %s", f.Raw)
		}
		r.expectClose(4001, 10*time.Second)
	})

	t.Run("timeout", func(t *testing.T) {
		r := dialRaw(t, a.ws)
		hkExpectError(t, r.request(map[string]any{"type": "connect", "token": "slow"}), "unavailable", "did not answer in time")
		r.expectClose(1013, 10*time.Second)
	})

	t.Run("bad answer", func(t *testing.T) {
		r := dialRaw(t, a.ws)
		f := r.request(map[string]any{"type": "connect", "token": "garbage"})
		hkExpectError(t, f, "unavailable", "gave an invalid answer")
		r.expectClose(1013, 10*time.Second)
	})

	t.Run("refresh", func(t *testing.T) {
		r, _ := hkConnect(t, a.ws, "ann")
		for _, ch := range []string{"chat:1", "chat:2"} {
			if f := r.request(map[string]any{"type": "subscribe", "channel": ch}); f.Type != "subscribed" {
				t.Fatalf("subscribe %s: %s", ch, f.Raw)
			}
		}
		// Too slow: unavailable, and the connection keeps its rights.
		hkExpectError(t, r.request(map[string]any{"type": "refresh", "token": "r-slow"}), "unavailable", "did not answer in time")
		r.alive()
		// New grants replace the old ones at once.
		r.send(map[string]any{"type": "refresh", "token": "r-narrow", "id": 100})
		r.next("unsubscribed chat:2", func(f frame) bool {
			return f.Type == "unsubscribed" && f.Channel == "chat:2" && f.Reason == "forbidden"
		})
		r.next("refreshed", func(f frame) bool { return f.Type == "refreshed" })
		var req struct {
			User     hooks.User `json:"user"`
			ClientID string     `json:"client_id"`
			Token    string     `json:"token"`
		}
		b.last("refresh", &req)
		if req.User.ID != "ann" || req.User.Name != "Ann" || req.ClientID == "" || req.Token != "r-narrow" {
			t.Fatalf("the backend got %+v", req)
		}
		// A no closes the connection.
		hkExpectError(t, r.request(map[string]any{"type": "refresh", "token": "r-no"}), "unauthorized", "your session ended")
		r.expectClose(4001, 10*time.Second)
	})

	t.Run("refresh at expiry", func(t *testing.T) {
		r, f := hkConnect(t, a.ws, "short")
		no, _ := hkConnect(t, a.ws, "short-no")
		// Before its rights end, the server asks the backend on its own.
		testwait.For(t, 10*time.Second, "the server's own refresh", func() bool {
			for _, body := range b.requests("refresh") {
				if hkField[string](t, body, "client_id") == f.ClientID && hkField[string](t, body, "token") == "" {
					return true
				}
			}
			return false
		})
		no.next("the refusal", func(f frame) bool {
			return f.Type == "error" && f.Code == "unauthorized" && f.Message == "session over"
		})
		no.expectClose(4001, 10*time.Second)
		time.Sleep(2500 * time.Millisecond) // past the first expires_at
		r.alive()
		if f := r.request(map[string]any{"type": "subscribe", "channel": "chat:9"}); f.Type != "subscribed" {
			t.Fatalf("subscribe after the refresh: %s", f.Raw)
		}
	})

	b.checkSignatures()
	if n := metricValue(t, a.srv.Addr(), `tandem_hook_refusals_total{hook="connect"}`); n < 2 {
		t.Errorf("connect refusals: %v", n)
	}
	if n := metricValue(t, a.srv.Addr(), `tandem_hook_failures_total{hook="connect",kind="timeout"}`); n != 1 {
		t.Errorf("connect timeouts: %v", n)
	}
	if n := metricValue(t, a.srv.Addr(), `tandem_hook_failures_total{hook="connect",kind="bad_answer"}`); n != 1 {
		t.Errorf("connect bad answers: %v", n)
	}
	if n := metricValue(t, a.srv.Addr(), `tandem_hook_duration_seconds_count{hook="connect"}`); n < 5 {
		t.Errorf("connect durations observed: %v", n)
	}
}

// TestHookConnectDown: a backend that cannot be reached, under both
// policies, and a backend whose secret is not the server's (it refuses
// every request: the signature is checked).
func TestHookConnectDown(t *testing.T) {
	dead := hkDeadURL(t)
	t.Run("refuse", func(t *testing.T) {
		a := apiStart(t, hkEdits(withSecret(), withHooks(t, `{"url": %q, "secret": %q, "connect": {}}`, dead, hkSecret)))
		r := dialRaw(t, a.ws)
		hkExpectError(t, r.request(map[string]any{"type": "connect", "token": mint(t, "ann", "Ann", time.Hour, "subscribe:*")}),
			"unavailable", "cannot be reached")
		r.expectClose(1013, 10*time.Second)
		if n := metricValue(t, a.srv.Addr(), `tandem_hook_failures_total{hook="connect",kind="down"}`); n != 1 {
			t.Errorf("connect failures (down): %v", n)
		}
	})
	t.Run("allow", func(t *testing.T) {
		a := apiStart(t, hkEdits(withSecret(), withHooks(t, `{"url": %q, "secret": %q, "connect": {"on_failure": "allow"}}`, dead, hkSecret)))
		// Tandem verifies the token itself: a JWT connects...
		r, f := hkConnect(t, a.ws, mint(t, "ann", "Ann", time.Hour, "subscribe:*"))
		if string(f.Data) != "" || string(f.User) == "" {
			t.Fatalf("connected: %s", f.Raw)
		}
		r.alive()
		// ...and a token only the backend would understand does not.
		r = dialRaw(t, a.ws)
		hkExpectError(t, r.request(map[string]any{"type": "connect", "token": "opaque-session-token"}), "unauthorized", "")
		r.expectClose(4001, 10*time.Second)
	})
	t.Run("wrong secret", func(t *testing.T) {
		b := hkStart(t, "another-secret-0123456789")
		a := apiStart(t, withHooks(t, `{"url": %q, "secret": %q, "connect": {}}`, b.URL, hkSecret))
		r := dialRaw(t, a.ws)
		hkExpectError(t, r.request(map[string]any{"type": "connect"}), "unavailable", "invalid answer")
		b.mu.Lock()
		bad := b.badSigs
		b.mu.Unlock()
		if bad != 1 {
			t.Fatalf("the backend refused %d signatures, want 1", bad)
		}
	})
}
