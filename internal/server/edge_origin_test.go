package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/server"
)

// TestDevModeOriginsAndHosts: a development-mode server (every grant for
// anyone) answers only localhost and loopback Host headers plus
// allowed_hosts, so a page behind DNS rebinding gets nothing; /ws and /api
// take browsers' requests only from localhost pages, the server's own and
// allowed_origins. /healthz answers every host.
func TestDevModeOriginsAndHosts(t *testing.T) {
	t.Parallel()
	a := apiStart(t, func(c *server.Config) {
		c.APIKeys = nil // an open API: what a page would drive
		c.File.AllowedHosts = []string{"tandem.test"}
		c.File.AllowedOrigins = []string{"https://app.example"}
	})
	port := a.base[strings.LastIndex(a.base, ":")+1:]
	wsDial := func(header ...string) (int, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		ws, resp, err := websocket.DefaultDialer.Dial(a.ws, h)
		if err == nil {
			ws.Close()
			return 101, nil
		}
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return resp.StatusCode, nil
		}
		return 0, err
	}
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no Origin: not a browser", nil, 101},
		{"a localhost page", []string{"Origin", "http://localhost:3000"}, 101},
		{"a loopback page", []string{"Origin", "http://127.0.0.1:5173"}, 101},
		{"the server's own page", []string{"Origin", "http://127.0.0.1:" + port}, 101},
		{"an allowed origin", []string{"Origin", "https://app.example"}, 101},
		{"a cross-site page", []string{"Origin", "https://evil.example"}, 403},
		{"a sandboxed or file page", []string{"Origin", "null"}, 403},
		{"DNS rebinding: a foreign name for this server", []string{"Host", "evil.example:" + port, "Origin", "http://evil.example:" + port}, 403},
		{"an allowed host", []string{"Host", "tandem.test:" + port, "Origin", "http://tandem.test:" + port}, 101},
		{"localhost names", []string{"Host", "app.localhost:" + port}, 101},
	} {
		got, err := wsDial(tc.header...)
		if err != nil || got != tc.want {
			t.Errorf("/ws, %s: %d %v, want %d", tc.name, got, err, tc.want)
		}
	}

	// The HTTP API and the rest, under the same rules.
	for _, tc := range []struct {
		name         string
		method, path string
		header       []string
		want         int
	}{
		{"API, rebinding Host", "GET", "/api/docs", []string{"Host", "evil.example:" + port}, 403},
		{"backup, rebinding Host", "GET", "/api/backup", []string{"Host", "evil.example"}, 403},
		{"the app, rebinding Host", "GET", "/", []string{"Host", "evil.example:" + port}, 403},
		{"metrics, rebinding Host", "GET", "/metrics", []string{"Host", "evil.example:" + port}, 403},
		{"healthz answers any host", "GET", "/healthz", []string{"Host", "evil.example:" + port}, 200},
		{"API, loopback Host", "GET", "/api/docs", nil, 200},
		{"API, allowed host", "GET", "/api/docs", []string{"Host", "TANDEM.test"}, 200},
		{"API, a cross-site page's POST without a body", "POST", "/api/users/u1/disconnect", []string{"Origin", "https://evil.example"}, 403},
		{"API, a cross-site page's GET", "GET", "/api/docs", []string{"Origin", "https://evil.example"}, 403},
		{"API, a localhost page", "POST", "/api/users/u1/disconnect", []string{"Origin", "http://localhost:3000"}, 200},
	} {
		r := a.do(tc.method, tc.path, "", nil, tc.header...)
		if r.status != tc.want {
			t.Errorf("%s: %s %s: %d %.200s, want %d", tc.name, tc.method, tc.path, r.status, r.body, tc.want)
		}
		if tc.want == 403 {
			if code, msg := r.apiError(); code != "forbidden" || msg == "" {
				t.Errorf("%s: refused with %s, want the error object with code forbidden", tc.name, r.body)
			}
		}
	}

	// A production server answers any host (its API needs credentials no
	// page holds), and keeps its own origin rule on /ws.
	p := apiStart(t, apiProduction)
	if r := p.do("GET", "/api/docs", apiKeyAll, nil, "Host", "tandem.example.com"); r.status != 200 {
		t.Errorf("production, another Host: %d %s", r.status, r.body)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(p.ws, http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		ws.Close()
		t.Errorf("production, a cross-site page's WebSocket was accepted")
	} else if resp == nil || resp.StatusCode != 403 {
		t.Errorf("production, a cross-site page's WebSocket: %v", err)
	}
}

// TestJSONRoutesNeedJSON: every route with a JSON body takes it only as
// application/json (PUT content also as text/plain, as documented), so a
// page cannot send one as a simple cross-site request; other types get 415
// with the error object and change nothing. Both modes.
func TestJSONRoutesNeedJSON(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name string
		edit func(*server.Config)
	}{{"development", func(c *server.Config) { c.APIKeys = nil }}, {"production", apiProduction}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			a := apiStart(t, mode.edit)
			key, token := apiKeyAll, apiJWT(t, apiJWTSecret, "watcher", "", time.Hour, "subscribe:*")
			if mode.name == "development" {
				key, token = "", ""
			}
			if r := a.do("POST", "/api/docs", key, map[string]any{"id": "d", "content": "hello"}); r.status != 201 {
				t.Fatalf("create d: %d %s", r.status, r.body)
			}
			sub := connectRaw(t, a.ws, token, "watcher")
			if f := sub.request(map[string]any{"type": "subscribe", "channel": "customer_7"}); f.Type != "subscribed" {
				t.Fatalf("subscribe: %s", f.Raw)
			}
			for _, tc := range []struct {
				method, path, body, ctype string
				want                      int
			}{
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "text/plain", 415},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "text/plain; charset=utf-8", 415},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "application/x-www-form-urlencoded", 415},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "multipart/form-data; boundary=x", 415},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "", 415},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"e"}`, "application/jsonx", 415},
				{"POST", "/api/docs", `{"id":"e","content":"x"}`, "text/plain", 415},
				{"PATCH", "/api/docs/d", `{"title":"t"}`, "text/plain", 415},
				{"POST", "/api/docs/d/compact", `{"before":0}`, "text/plain", 415},
				{"POST", "/api/docs/import", `{"format":"tandem-export"}`, "text/plain", 415},
				{"PUT", "/api/docs/d/content", `{"content":"x"}`, "application/x-www-form-urlencoded", 415},
				{"PUT", "/api/docs/d/content", `hello, world`, "text/plain; charset=utf-8", 200},
				{"POST", "/api/broadcast", `{"channel":"customer_7","event":"ok"}`, "application/json; charset=utf-8", 200},
			} {
				var header []string
				header = append(header, "Content-Type", tc.ctype)
				r := a.do(tc.method, tc.path, key, tc.body, header...)
				if r.status != tc.want {
					t.Errorf("%s %s as %q: %d %.200s, want %d", tc.method, tc.path, tc.ctype, r.status, r.body, tc.want)
					continue
				}
				if code, msg := r.apiError(); tc.want == 415 && (code != "bad_request" || !strings.Contains(msg, "Content-Type")) {
					t.Errorf("%s %s as %q: %s, want bad_request naming the Content-Type", tc.method, tc.path, tc.ctype, r.body)
				}
			}
			// Nothing refused reached anyone or changed anything.
			if m := sub.next("a message", func(f frame) bool { return f.Type == "message" }); m.Event != "ok" || m.Offset != 1 {
				t.Errorf("the subscriber's first message: %s, want the one accepted broadcast", m.Raw)
			}
			if r := a.do("GET", "/api/docs/d", key, nil); !strings.Contains(string(r.body), `"content":"hello, world"`) {
				t.Errorf("d: %d %s", r.status, r.body)
			}
			if r := a.do("GET", "/api/docs/e", key, nil); r.status != 404 {
				t.Errorf("a refused create made e: %d %s", r.status, r.body)
			}
		})
	}
}
