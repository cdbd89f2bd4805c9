package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/internal/server"
)

// Decisions, as both transports express them.
const (
	allow   = "allow"
	members = "members"   // presence: the members are listed
	count   = "count"     // presence: a count only
	none    = "none"      // presence: neither
	forbid  = "forbidden" // the wire codes
	badReq  = "bad_request"
)

// authzKeyLimited is a server-side key with a few grants: it may publish
// where clients may not (dashboard:) and into users' private channels,
// read chat, and read the pub- documents.
const authzKeyLimited = "authz-test-key-limited-0123456789"

// authzPrincipal is one row's caller: an API key (HTTP only) or a token
// (both transports), or the development-mode guest.
type authzPrincipal struct {
	name  string
	key   string // an API key: HTTP only
	token string // a JWT: WebSocket and HTTP
	guest bool   // the development server's guest: WebSocket and HTTP without credentials
}

// TestAuthorizationSameOnBothTransports runs every request that both
// transports carry (reading a channel, publishing, seeing its presence,
// reading and writing a document) for every kind of caller (API keys,
// an admin JWT, user JWTs with various grants, the development guest)
// against each kind of namespace, and checks that the WebSocket frame and
// the HTTP route get the same decision, the one the table says.
func TestAuthorizationSameOnBothTransports(t *testing.T) {
	t.Parallel()
	prod := apiStart(t, func(c *server.Config) {
		c.JWTSecret = apiJWTSecret
		c.File.APIKeys = []server.APIKeyConfig{{Key: authzKeyLimited, Name: "limited",
			Grants: []string{"publish:dashboard:*", "publish:user:*", "subscribe:chat:*", "read:doc:pub-*"}}}
	})
	dev := apiStart(t, func(c *server.Config) { c.APIKeys = nil })
	jwt := func(user string, allow ...string) string {
		return apiJWT(t, apiJWTSecret, user, "", time.Hour, allow...)
	}
	admin := authzPrincipal{name: "admin JWT", token: jwt("root", "admin:*")}
	principals := []authzPrincipal{
		{name: "API key, every grant", key: apiKeyAll},
		{name: "API key, limited", key: authzKeyLimited},
		admin,
		{name: "user u1, broad grants", token: jwt("u1", "subscribe:*", "publish:*", "presence:*", "read:doc:*", "write:doc:*")},
		{name: "user u3, chat and pub- docs", token: jwt("u3", "subscribe:chat:*", "publish:chat:*", "read:doc:pub-*")},
		{name: "user u2, no grants", token: jwt("u2")},
		{name: "development guest", guest: true},
	}
	channels := []string{"chat:room", "customer_7", "dashboard:sales", "user:u1", "user:u2", "system:stats", "doc:pub-1"}
	docs := []string{"pub-1", "priv-1"}

	// Expected decisions, per principal, in the order of channels (read,
	// publish, presence) and docs (read, write).
	type row struct{ read, publish, presence, docRead, docWrite []string }
	want := map[string]row{
		"API key, every grant": {
			read:     []string{allow, allow, allow, allow, allow, allow, badReq},
			publish:  []string{allow, allow, allow, allow, allow, forbid, badReq},
			presence: []string{members, members, count, none, none, count, badReq},
			docRead:  []string{allow, allow}, docWrite: []string{allow, allow},
		},
		"API key, limited": {
			read:     []string{allow, forbid, forbid, forbid, forbid, forbid, badReq},
			publish:  []string{forbid, forbid, allow, allow, allow, forbid, badReq},
			presence: []string{none, forbid, forbid, forbid, forbid, forbid, badReq},
			docRead:  []string{allow, forbid}, docWrite: []string{forbid, forbid},
		},
		"admin JWT": {
			read:     []string{allow, allow, allow, allow, allow, allow, badReq},
			publish:  []string{allow, allow, allow, allow, allow, forbid, badReq},
			presence: []string{members, members, count, none, none, count, badReq},
			docRead:  []string{allow, allow}, docWrite: []string{allow, allow},
		},
		"user u1, broad grants": {
			read:     []string{allow, allow, allow, allow, forbid, allow, badReq},
			publish:  []string{allow, allow, forbid, forbid, forbid, forbid, badReq},
			presence: []string{members, members, count, none, forbid, count, badReq},
			docRead:  []string{allow, allow}, docWrite: []string{allow, allow},
		},
		"user u3, chat and pub- docs": {
			read:     []string{allow, forbid, forbid, forbid, forbid, forbid, badReq},
			publish:  []string{allow, forbid, forbid, forbid, forbid, forbid, badReq},
			presence: []string{none, forbid, forbid, forbid, forbid, forbid, badReq},
			docRead:  []string{allow, forbid}, docWrite: []string{forbid, forbid},
		},
		"user u2, no grants": {
			read:     []string{forbid, forbid, forbid, forbid, allow, forbid, badReq},
			publish:  []string{forbid, forbid, forbid, forbid, forbid, forbid, badReq},
			presence: []string{forbid, forbid, forbid, forbid, none, forbid, badReq},
			docRead:  []string{forbid, forbid}, docWrite: []string{forbid, forbid},
		},
		"development guest": {
			read:     []string{allow, allow, allow, allow, allow, allow, badReq},
			publish:  []string{allow, allow, allow, allow, allow, forbid, badReq},
			presence: []string{members, members, count, none, none, count, badReq},
			docRead:  []string{allow, allow}, docWrite: []string{allow, allow},
		},
	}

	// The documents exist, and an admin watcher is present on every
	// channel, so that a caller allowed to see presence sees a member.
	for _, a := range []*apiServer{prod, dev} {
		for _, d := range docs {
			key := apiKeyAll
			if a == dev {
				key = ""
			}
			if r := a.do("POST", "/api/docs", key, map[string]any{"id": d, "content": "hello"}); r.status != 201 {
				t.Fatalf("create %s: %d %s", d, r.status, r.body)
			}
		}
		token := admin.token
		if a == dev {
			token = ""
		}
		watcher := connectRaw(t, a.ws, token, "watcher")
		for _, ch := range channels[:6] {
			if f := watcher.request(map[string]any{"type": "subscribe", "channel": ch}); f.Type != proto.TypeSubscribed {
				t.Fatalf("the watcher subscribes to %s: %s", ch, f.Raw)
			}
		}
	}

	for _, p := range principals {
		t.Run(p.name, func(t *testing.T) {
			a, w := prod, want[p.name]
			if p.guest {
				a = dev
			}
			httpAuth := p.key + p.token
			var ws *rawConn
			if p.key == "" {
				ws = connectRaw(t, a.ws, p.token, "guest") // the name counts for the guest only
			}
			check := func(what, target, expected, overHTTP, overWS string) {
				t.Helper()
				if overHTTP != expected {
					t.Errorf("%s %s over HTTP: %s, want %s", what, target, overHTTP, expected)
				}
				if ws != nil && overWS != expected {
					t.Errorf("%s %s over WebSocket: %s, want %s (HTTP: %s)", what, target, overWS, expected, overHTTP)
				}
			}
			for i, ch := range channels {
				// Reading a channel, and what it shows of presence.
				h := a.do("GET", "/api/channels/"+ch+"/history", httpAuth, nil)
				var sub frame
				if ws != nil {
					sub = ws.request(map[string]any{"type": "subscribe", "channel": ch})
				}
				check("read", ch, w.read[i], httpDecision(h), wsDecision(sub, proto.TypeSubscribed))
				pr := a.do("GET", "/api/channels/"+ch+"/presence", httpAuth, nil)
				check("presence of", ch, w.presence[i], httpPresence(pr), wsPresence(sub))

				// Publishing.
				h = a.do("POST", "/api/broadcast", httpAuth, map[string]any{"channel": ch, "event": "t", "data": map[string]int{"n": i}})
				var pub frame
				if ws != nil {
					pub = ws.request(map[string]any{"type": "publish", "channel": ch, "event": "t", "data": map[string]int{"n": i}})
				}
				check("publish in", ch, w.publish[i], httpDecision(h), wsDecision(pub, proto.TypePublished))
			}
			for i, d := range docs {
				h := a.do("GET", "/api/docs/"+d, httpAuth, nil)
				var open frame
				if ws != nil {
					open = ws.request(map[string]any{"type": "open", "doc": d})
				}
				check("read document", d, w.docRead[i], httpDecision(h), wsDecision(open, proto.TypeSnapshot))

				h = a.do("PUT", "/api/docs/"+d+"/content", httpAuth, map[string]any{"content": "hello from " + p.name})
				overWS := ""
				if ws != nil {
					overWS = wsDecision(open, proto.TypeSnapshot) // no open, no edit
					if overWS == allow {
						var snap struct{ Version int }
						_ = json.Unmarshal([]byte(open.Raw), &snap)
						op := ws.request(map[string]any{"type": "op", "doc": d, "version": snap.Version, "op": []any{"!"}, "uid": fmt.Sprintf("%s-%s", p.name, d)})
						overWS = wsDecision(op, proto.TypeAck)
					}
				}
				check("write document", d, w.docWrite[i], httpDecision(h), overWS)
			}
		})
	}
}

// httpDecision is an HTTP answer as a decision: allow, or its error code.
func httpDecision(r apiResponse) string {
	if r.status < 300 {
		return allow
	}
	if code, _ := r.apiError(); code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d %.100s", r.status, r.body)
}

// wsDecision is a WebSocket answer as a decision: allow when it has the
// type ok, or its error code.
func wsDecision(f frame, ok string) string {
	switch f.Type {
	case ok:
		return allow
	case proto.TypeError:
		return f.Code
	}
	return "frame " + f.Raw
}

// httpPresence is what GET /presence shows: members, a count, none, or
// its error code.
func httpPresence(r apiResponse) string {
	if r.status >= 300 {
		return httpDecision(r)
	}
	var body map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &body)
	switch {
	case body["members"] != nil:
		return members
	case body["count"] != nil:
		return count
	}
	return none
}

// wsPresence is what subscribed shows of presence.
func wsPresence(f frame) string {
	switch {
	case f.Type != proto.TypeSubscribed:
		return wsDecision(f, proto.TypeSubscribed)
	case f.Members != nil:
		return members
	case f.MemberCount != nil:
		return count
	}
	return none
}

// TestAuthorizationRegressions: the attacks found over HTTP with ordinary
// user tokens, each refused as the WebSocket refuses it, with nothing
// read, written or delivered.
func TestAuthorizationRegressions(t *testing.T) {
	t.Parallel()
	a := apiStart(t, func(c *server.Config) {
		c.JWTSecret = apiJWTSecret
		// A namespace whose rate refills too slowly for any machine's pace
		// to matter: burst 5, then one per 100 s.
		c.File.Namespaces = map[string]server.NamespaceConfig{
			"slow": {HistorySize: 100, ClientPublish: true, PublishRate: 0.01, PublishBurst: 5},
		}
	})
	u2 := connectRaw(t, a.ws, apiJWT(t, apiJWTSecret, "u2", "", time.Hour), "")
	if f := u2.request(map[string]any{"type": "subscribe", "channel": "user:u2"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("u2 subscribes to its inbox: %s", f.Raw)
	}
	a.call("POST", "/api/broadcast", map[string]any{"channel": "user:u2", "event": "secret", "data": map[string]string{"text": "u2's eyes only"}}, 200, nil)
	if m := u2.next("the server's message", func(f frame) bool { return f.Type == proto.TypeMessage }); m.Offset != 1 {
		t.Fatalf("u2's inbox: %s", m.Raw)
	}

	reader := apiJWT(t, apiJWTSecret, "mallory", "", time.Hour, "subscribe:*")
	publisher := apiJWT(t, apiJWTSecret, "mallory", "", time.Hour, "publish:*")

	// A subscribe:* token reads another user's inbox.
	r := a.do("GET", "/api/channels/user:u2/history", reader, nil)
	if code, _ := r.apiError(); r.status != 403 || code != forbid || strings.Contains(string(r.body), "eyes only") {
		t.Errorf("subscribe:* reading user:u2's history: %d %s; want 403 forbidden", r.status, r.body)
	}
	// A publish:* token forges into another user's inbox, and into a
	// channel only the server side publishes in.
	for _, ch := range []string{"user:u2", "dashboard:sales"} {
		r := a.do("POST", "/api/broadcast", publisher, map[string]any{"channel": ch, "event": "forged", "data": map[string]string{"text": "from the bank"}})
		if code, _ := r.apiError(); r.status != 403 || code != forbid {
			t.Errorf("publish:* broadcasting into %s: %d %s; want 403 forbidden", ch, r.status, r.body)
		}
		r = a.do("POST", "/api/broadcast", publisher, map[string]any{"broadcasts": []any{map[string]any{"channel": ch, "event": "forged"}}})
		if r.status != 200 || !strings.Contains(string(r.body), `"code":"forbidden"`) || strings.Contains(string(r.body), `"offset"`) {
			t.Errorf("publish:* batching into %s: %d %s; want the message refused", ch, r.status, r.body)
		}
	}

	// 1,000 publishes in one request with a user token: chat allows a user
	// 10 a second, burst 20. The bound: the burst plus what refills while
	// the request runs, plus one.
	chat := connectRaw(t, a.ws, apiJWT(t, apiJWTSecret, "watcher", "", time.Hour, "subscribe:chat:*"), "")
	if f := chat.request(map[string]any{"type": "subscribe", "channel": "chat:flood"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("subscribe chat:flood: %s", f.Raw)
	}
	batch := make([]any, 1000)
	for i := range batch {
		batch[i] = map[string]any{"channel": "chat:flood", "event": "m", "data": map[string]int{"i": i}}
	}
	start := time.Now()
	r = a.do("POST", "/api/broadcast", apiJWT(t, apiJWTSecret, "flooder", "", time.Hour, "publish:chat:*"), map[string]any{"broadcasts": batch})
	bound := 20 + int(10*time.Since(start).Seconds()) + 1
	var res struct {
		Results []struct {
			Offset uint64 `json:"offset"`
			Error  *struct{ Code string }
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || len(res.Results) != 1000 {
		t.Fatalf("a batch of 1000: %d %.300s", r.status, r.body)
	}
	published, limited := 0, 0
	for _, x := range res.Results {
		switch {
		case x.Error == nil:
			published++
		case x.Error.Code == proto.CodeRateLimited:
			limited++
		}
	}
	if published == 0 || published > bound || published+limited != 1000 {
		t.Errorf("a user's batch of 1000: %d published, %d rate_limited; want at most %d published, the rest rate_limited", published, limited, bound)
	}
	// Single publishes draw on a user's budget as well: in a namespace of
	// burst 5, the 6th to 10th get 429. An API key (server-side) is not
	// limited.
	slowUser := apiJWT(t, apiJWTSecret, "chatty", "", time.Hour, "publish:slow:*")
	for i := range 10 {
		r := a.do("POST", "/api/broadcast", slowUser, map[string]any{"channel": "slow:room", "event": "m"})
		code, _ := r.apiError()
		if want := i >= 5; want != (r.status == 429 && code == proto.CodeRateLimited) {
			t.Errorf("single publish %d in a namespace of burst 5: %d %s", i+1, r.status, r.body)
		}
	}
	batch = batch[:100]
	r = a.call("POST", "/api/broadcast", map[string]any{"broadcasts": batch}, 200, nil)
	if strings.Contains(string(r.body), "rate_limited") {
		t.Errorf("an API key's batch of 100 was rate limited: %.300s", r.body)
	}

	// A count-only channel never lists its members, whatever the grants.
	watcher := connectRaw(t, a.ws, apiJWT(t, apiJWTSecret, "viewer", "", time.Hour, "subscribe:*", "presence:*"), "")
	if f := watcher.request(map[string]any{"type": "subscribe", "channel": "dashboard:sales"}); f.Type != proto.TypeSubscribed || f.Members != nil || f.MemberCount == nil {
		t.Fatalf("subscribe to the count-only dashboard:sales: %s", f.Raw)
	}
	for _, tok := range []string{apiJWT(t, apiJWTSecret, "spy", "", time.Hour, "subscribe:*", "presence:*"), apiKeyAll} {
		r := a.do("GET", "/api/channels/dashboard:sales/presence", tok, nil)
		if r.status != 200 || strings.Contains(string(r.body), "members") || strings.Contains(string(r.body), "viewer") || !strings.Contains(string(r.body), `"count":1`) {
			t.Errorf("presence of the count-only dashboard:sales: %d %s; want the count 1 and no members", r.status, r.body)
		}
	}

	// u2's inbox holds nothing forged.
	var hist struct {
		Messages []proto.Message `json:"messages"`
	}
	a.call("GET", "/api/channels/user:u2/history", nil, 200, &hist)
	if len(hist.Messages) != 1 || hist.Messages[0].Event != "secret" {
		t.Errorf("user:u2's history: %+v; want the server's one message", hist.Messages)
	}
}
