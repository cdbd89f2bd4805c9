package server_test

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/hooks"
)

// TestHookSubscribe: in a namespace that asks for it, the subscribe hook
// decides after the grants: its data reaches subscribed, its refusal (with
// its reason) the error frame, and nothing it refuses is subscribed; a
// subscription the grants refuse never reaches it; a timeout or a bad
// answer is unavailable under policy refuse. Over HTTP a user's reads of
// the channel ask it too, an API key's do not.
func TestHookSubscribe(t *testing.T) {
	b := hkStart(t, hkSecret)
	b.on("subscribe", func(body []byte) hkReply {
		switch hkField[string](t, body, "channel") {
		case "chat:open":
			return hkJSON(map[string]any{"data": map[string]string{"role": "moderator"}})
		case "chat:closed":
			return hkNo("forbidden", "members only")
		case "chat:slow":
			return hkReply{delay: 5 * time.Second}
		case "chat:broken":
			return hkReply{status: 500, body: "boom"}
		}
		return hkYes
	})
	a := apiStart(t, hkEdits(withSecret(), hkNamespace("chat", "subscribe"), hkNamespace("free"),
		withHooks(t, `{"url": %q, "secret": %q, "subscribe": {"timeout": "300ms"}}`, b.URL, hkSecret)))
	token := mint(t, "ann", "Ann", time.Hour, "subscribe:chat:*", "subscribe:free:*", "read:doc:*")
	r, _ := hkConnect(t, a.ws, token)

	f := r.request(map[string]any{"type": "subscribe", "channel": "chat:open"})
	if f.Type != "subscribed" || string(f.Data) != `{"role":"moderator"}` {
		t.Fatalf("subscribe chat:open: %s", f.Raw)
	}
	var req hooks.SubscribeRequest
	b.last("subscribe", &req)
	if req.User.ID != "ann" || req.User.Name != "Ann" || req.ClientID == "" || req.Channel != "chat:open" || req.Transport != "websocket" {
		t.Fatalf("the backend got %+v", req)
	}
	f = r.request(map[string]any{"type": "subscribe", "channel": "chat:closed"})
	hkExpectError(t, f, "forbidden", "members only")
	if f.Channel != "chat:closed" || f.Message != "members only" {
		t.Fatalf("refusal: %s", f.Raw)
	}
	// Not subscribed: marking it read is refused as for any channel one
	// is not subscribed to.
	hkExpectError(t, r.request(map[string]any{"type": "read", "channel": "chat:closed", "offset": 1}), "bad_request", "subscribe to chat:closed")
	hkExpectError(t, r.request(map[string]any{"type": "subscribe", "channel": "chat:slow"}), "unavailable", "did not answer in time")
	hkExpectError(t, r.request(map[string]any{"type": "subscribe", "channel": "chat:broken"}), "unavailable", "invalid answer")

	// The grants come first; a namespace that does not ask is not asked.
	before := len(b.requests("subscribe"))
	hkExpectError(t, r.request(map[string]any{"type": "subscribe", "channel": "news:1"}), "forbidden", "no subscribe grant")
	if f := r.request(map[string]any{"type": "subscribe", "channel": "free:1"}); f.Type != "subscribed" || f.Data != nil {
		t.Fatalf("subscribe free:1: %s", f.Raw)
	}
	if n := len(b.requests("subscribe")); n != before {
		t.Fatalf("the backend was asked %d more times", n-before)
	}

	// Over HTTP: a user is asked about, an API key is not.
	resp := a.do("GET", "/api/channels/chat:closed/history", token, nil)
	if code, msg := resp.apiError(); resp.status != 403 || code != "forbidden" || msg != "members only" {
		t.Fatalf("history as a user: %d %s", resp.status, resp.body)
	}
	b.last("subscribe", &req)
	if req.Transport != "http" || req.User.ID != "ann" || req.ClientID != "" {
		t.Fatalf("the backend got %+v", req)
	}
	if resp := a.do("GET", "/api/channels/chat:closed/presence", token, nil); resp.status != 403 {
		t.Fatalf("presence as a user: %d %s", resp.status, resp.body)
	}
	n := len(b.requests("subscribe"))
	a.call("GET", "/api/channels/chat:closed/history", nil, 200, nil)
	if len(b.requests("subscribe")) != n {
		t.Fatal("the backend was asked about an API key's read")
	}
	b.checkSignatures()

	if v := metricValue(t, a.srv.Addr(), `tandem_hook_calls_total{hook="subscribe"}`); v != float64(len(b.requests("subscribe"))) {
		t.Errorf("subscribe calls: metric %v, backend %d", v, len(b.requests("subscribe")))
	}
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_refusals_total{hook="subscribe"}`); v != 3 {
		t.Errorf("subscribe refusals: %v", v)
	}
}

// TestHookSubscribeDown: a backend that cannot be reached fails the
// subscribe under policy refuse and lets it through (without data) under
// allow.
func TestHookSubscribeDown(t *testing.T) {
	dead := hkDeadURL(t)
	for _, policy := range []string{"refuse", "allow"} {
		t.Run(policy, func(t *testing.T) {
			a := apiStart(t, hkEdits(hkNamespace("chat", "subscribe"),
				withHooks(t, `{"url": %q, "secret": %q, "subscribe": {"on_failure": %q}}`, dead, hkSecret, policy)))
			r := connectRaw(t, a.ws, "", "ann")
			f := r.request(map[string]any{"type": "subscribe", "channel": "chat:1"})
			if policy == "refuse" {
				hkExpectError(t, f, "unavailable", "cannot be reached")
			} else if f.Type != "subscribed" || f.Data != nil {
				t.Fatalf("subscribe: %s", f.Raw)
			}
		})
	}
}

// hkPublishBackend answers publish: a message whose text is "spam" is
// refused; "slow" takes too long; "huge" gets data over max_payload; any
// other message gets the backend's id (counting from 1); other events pass
// as they are.
func hkPublishBackend(t *testing.T) *hkBackend {
	b := hkStart(t, hkSecret)
	var ids atomic.Int64
	b.on("publish", func(body []byte) hkReply {
		if hkField[string](t, body, "event") != "message" {
			return hkYes
		}
		data := hkField[map[string]any](t, body, "data")
		switch data["text"] {
		case "spam":
			return hkNo("forbidden", `message refused: "spam" is not allowed here`)
		case "slow":
			return hkReply{delay: 5 * time.Second}
		case "huge":
			return hkJSON(map[string]any{"data": map[string]string{"text": strings.Repeat("x", 5000)}})
		}
		data["id"] = ids.Add(1)
		return hkJSON(map[string]any{"data": data})
	})
	return b
}

// TestHookPublish: in a namespace that asks for it, the publish hook
// decides before the hub stores: replacement data is what subscribers and
// history get, a refusal (with its reason) stores nothing, data over
// max_payload is too_large, a timeout is unavailable. POST /api/broadcast
// asks it for an API key where the namespace lists "broadcast", and for a
// user where it lists "publish", one call per message, each message
// succeeding or failing alone, in order.
func TestHookPublish(t *testing.T) {
	b := hkPublishBackend(t)
	a := apiStart(t, hkEdits(hkNamespace("chat", "publish", "broadcast"), hkNamespace("plain", "publish"),
		withHooks(t, `{"url": %q, "secret": %q, "publish": {"timeout": "300ms"}}`, b.URL, hkSecret)))
	pub := connectRaw(t, a.ws, "", "ann")
	sub := connectRaw(t, a.ws, "", "bob")
	if f := sub.request(map[string]any{"type": "subscribe", "channel": "chat:1"}); f.Type != "subscribed" {
		t.Fatal(f.Raw)
	}
	publish := func(event, text string) frame {
		return pub.request(map[string]any{"type": "publish", "channel": "chat:1", "event": event, "data": map[string]string{"text": text}})
	}
	if f := publish("message", "hi"); f.Type != "published" || f.Offset != 1 {
		t.Fatalf("publish: %s", f.Raw)
	}
	m := sub.next("the message", func(f frame) bool { return f.Type == "message" })
	if string(m.Data) != `{"id":1,"text":"hi"}` {
		t.Fatalf("the subscriber got %s", m.Raw)
	}
	var req hooks.PublishRequest
	b.last("publish", &req)
	if req.User.ID != "ann" || req.ClientID == "" || req.Channel != "chat:1" || req.Event != "message" ||
		string(req.Data) != `{"text":"hi"}` || req.Transport != "websocket" || req.APIKey != "" {
		t.Fatalf("the backend got %+v", req)
	}
	if f := publish("typing", "h"); f.Type != "published" {
		t.Fatal(f.Raw)
	}
	if m := sub.next("typing", func(f frame) bool { return f.Type == "message" }); string(m.Data) != `{"text":"h"}` {
		t.Fatalf("typing: %s", m.Raw)
	}
	hkExpectError(t, publish("message", "spam"), "forbidden", `message refused: "spam" is not allowed here`)
	hkExpectError(t, publish("message", "slow"), "unavailable", "did not answer in time")
	hkExpectError(t, publish("message", "huge"), "too_large", "at most 4096")
	if f := publish("message", "bye"); f.Type != "published" || f.Offset != 3 {
		t.Fatalf("publish after the refusals: %s", f.Raw)
	}

	// History holds what the backend said, and nothing it refused.
	var hist struct {
		Messages []struct{ Data json.RawMessage }
	}
	a.call("GET", "/api/channels/chat:1/history", nil, 200, &hist)
	var got []string
	for _, m := range hist.Messages {
		got = append(got, string(m.Data))
	}
	if want := `{"id":1,"text":"hi"} {"text":"h"} {"id":2,"text":"bye"}`; strings.Join(got, " ") != want {
		t.Fatalf("history %v, want %s", got, want)
	}

	// An API key's batch: one call per message where the namespace lists
	// broadcast, each message on its own.
	var res struct {
		Results []struct {
			Channel string
			Offset  uint64
			Error   *struct{ Code, Message string }
		}
	}
	batch := map[string]any{"broadcasts": []map[string]any{
		{"channel": "chat:1", "event": "message", "data": map[string]string{"text": "from the server"}},
		{"channel": "chat:1", "event": "message", "data": map[string]string{"text": "spam"}},
		{"channel": "plain:1", "event": "message", "data": map[string]string{"text": "spam"}},
		{"channel": "chat:1", "event": "message", "data": map[string]string{"text": "again"}},
	}}
	n := len(b.requests("publish"))
	a.call("POST", "/api/broadcast", batch, 200, &res)
	if len(res.Results) != 4 || res.Results[0].Offset != 4 || res.Results[1].Error == nil || res.Results[1].Error.Code != "forbidden" ||
		res.Results[2].Error != nil || res.Results[2].Offset != 1 || res.Results[3].Offset != 5 {
		t.Fatalf("batch: %+v", res.Results)
	}
	if got := len(b.requests("publish")) - n; got != 3 { // plain: lists publish, not broadcast
		t.Fatalf("the backend was asked %d times, want 3", got)
	}
	b.last("publish", &req)
	if req.APIKey != "env1" || req.User.ID != "" || req.Transport != "http" || req.ClientID != "" {
		t.Fatalf("the backend got %+v", req)
	}
	m = sub.next("the broadcast", func(f frame) bool { return f.Type == "message" && f.Offset == 4 })
	if !strings.Contains(string(m.Data), `"id":`) {
		t.Fatalf("broadcast data %s", m.Data)
	}
	// A single broadcast refused: the API's error object, its status.
	resp := a.do("POST", "/api/broadcast", apiKeyAll, map[string]any{"channel": "chat:1", "event": "message", "data": map[string]string{"text": "spam"}})
	if code, msg := resp.apiError(); resp.status != 403 || code != "forbidden" || !strings.Contains(msg, "spam") {
		t.Fatalf("single broadcast: %d %s", resp.status, resp.body)
	}
	b.checkSignatures()
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_refusals_total{hook="publish"}`); v != 3 {
		t.Errorf("publish refusals: %v", v)
	}
	if v := metricValue(t, a.srv.Addr(), `tandem_hook_failures_total{hook="publish",kind="timeout"}`); v != 1 {
		t.Errorf("publish timeouts: %v", v)
	}
}

// TestHookPublishUserHTTP: a user's publish over HTTP (a JWT) asks the
// publish hook where the namespace lists publish.
func TestHookPublishUserHTTP(t *testing.T) {
	b := hkPublishBackend(t)
	a := apiStart(t, hkEdits(withSecret(), hkNamespace("plain", "publish"),
		withHooks(t, `{"url": %q, "secret": %q, "publish": {}}`, b.URL, hkSecret)))
	token := mint(t, "ann", "Ann", time.Hour, "publish:plain:*", "subscribe:plain:*")
	resp := a.do("POST", "/api/broadcast", token, map[string]any{"channel": "plain:1", "event": "message", "data": map[string]string{"text": "spam"}})
	if resp.status != 403 {
		t.Fatalf("as a user: %d %s", resp.status, resp.body)
	}
	resp = a.do("POST", "/api/broadcast", token, map[string]any{"channel": "plain:1", "event": "message", "data": map[string]string{"text": "ok"}})
	if resp.status != 200 {
		t.Fatalf("as a user: %d %s", resp.status, resp.body)
	}
	var req hooks.PublishRequest
	b.last("publish", &req)
	if req.User.ID != "ann" || req.APIKey != "" || req.Transport != "http" {
		t.Fatalf("the backend got %+v", req)
	}
	resp = a.do("GET", "/api/channels/plain:1/history", token, nil)
	if !strings.Contains(string(resp.body), `{"id":1,"text":"ok"}`) || strings.Contains(string(resp.body), "spam") {
		t.Fatalf("history: %s", resp.body)
	}
}

// TestHookPublishDown: a backend that cannot be reached fails the publish
// under policy refuse (nothing stored) and lets it through unchanged under
// allow.
func TestHookPublishDown(t *testing.T) {
	dead := hkDeadURL(t)
	for _, policy := range []string{"refuse", "allow"} {
		t.Run(policy, func(t *testing.T) {
			a := apiStart(t, hkEdits(hkNamespace("chat", "publish"),
				withHooks(t, `{"url": %q, "secret": %q, "publish": {"on_failure": %q}}`, dead, hkSecret, policy)))
			r := connectRaw(t, a.ws, "", "ann")
			f := r.request(map[string]any{"type": "publish", "channel": "chat:1", "event": "message", "data": map[string]string{"text": "hi"}})
			var hist struct {
				Messages []struct{ Data json.RawMessage }
			}
			a.call("GET", "/api/channels/chat:1/history", nil, 200, &hist)
			if policy == "refuse" {
				hkExpectError(t, f, "unavailable", "cannot be reached")
				if len(hist.Messages) != 0 {
					t.Fatalf("stored %d messages", len(hist.Messages))
				}
				return
			}
			if f.Type != "published" || len(hist.Messages) != 1 || string(hist.Messages[0].Data) != `{"text":"hi"}` {
				t.Fatalf("publish: %s; history %+v", f.Raw, hist)
			}
		})
	}
}
