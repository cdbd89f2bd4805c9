package server_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/proto"
	"github.com/tandemhq/tandem/internal/server"
)

// goInternals are what an error message must not carry: Go's words, type
// names and package paths or prefixes.
var goInternals = []string{
	"Go ", "struct", "json:", "github.com", "reflect", "int64", "uint64", "float64",
	"session:", "storage:", "ot:", "auth:", "web:", "proto:", "doc: ",
}

// goQualified matches a Go name: a type or value qualified by one of our
// packages (proto.Request), or a camelCase name before a dot (an embedded
// struct's name in a field path, "broadcastReq.channel"); the protocol's
// own names are snake_case.
var goQualified = regexp.MustCompile(`\b(proto|session|storage|web|doc|ot|auth|server)\.[A-Z]|\b[a-z]+[A-Z][A-Za-z]*\.`)

// checkProtocolTerms fails unless msg is a message in the protocol's
// terms: not empty, no Go internals, and holding each of want.
func checkProtocolTerms(t *testing.T, what, msg string, want ...string) {
	t.Helper()
	t.Logf("%s → %s", what, msg)
	if msg == "" {
		t.Errorf("%s: no message", what)
		return
	}
	for _, bad := range goInternals {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: message %q carries %q", what, msg, bad)
		}
	}
	if m := goQualified.FindString(msg); m != "" {
		t.Errorf("%s: message %q names %q", what, msg, m)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: message %q does not say %q", what, msg, w)
		}
	}
}

// TestErrorsSpeakTheProtocol: every error the server sends for a bad frame
// or a bad HTTP request says what was wrong in the protocol's terms (the
// field, what it must be) and never in Go's: no type names, no package
// paths, no encoding/json wording.
func TestErrorsSpeakTheProtocol(t *testing.T) {
	t.Parallel()
	ts := startServer(t, withSecret(), withLimits(func(l *server.LimitsConfig) { l.FrameRate, l.FrameBurst = 1000, 1000 }))
	r := connectRaw(t, ts.URL, mint(t, "eve", "Eve", time.Hour, "subscribe:*", "publish:*", "presence:*", "read:doc:*", "write:doc:*", "comment:doc:*"), "")
	if f := r.request(map[string]any{"type": "open", "doc": "d"}); f.Type != proto.TypeSnapshot {
		t.Fatalf("open: %s", f.Raw)
	}
	if f := r.request(map[string]any{"type": "subscribe", "channel": "chat:e"}); f.Type != proto.TypeSubscribed {
		t.Fatalf("subscribe: %s", f.Raw)
	}
	for i, tc := range []struct {
		frame string // %[1]d is the frame's id
		want  []string
	}{
		{`{"id":%[1]d,"type":"subscribe","channel":"chat:x","since":{"offset":-1,"epoch":"e"}}`, []string{"since.offset", "non-negative integer", "-1"}},
		{`{"id":%[1]d,"type":"subscribe","channel":"chat:x","since":"yesterday"}`, []string{"since", "an object", "a string"}},
		{`[1,2,3]`, []string{"frame", "a JSON object", "an array"}},
		{`"ping"`, []string{"frame", "a JSON object", "a string"}},
		{`42`, []string{"frame", "a JSON object"}},
		{`{"id":1.5,"type":"ping"}`, []string{"id", "an integer", "1.5"}},
		{`{"id":"seven","type":"ping"}`, []string{"id", "an integer", "a string"}},
		{`{"id":%[1]d,"type":7}`, []string{"type", "a string", "a number"}},
		{`{"id":%[1]d,"type":"ping"`, []string{"not valid JSON"}},
		{`{"id":%[1]d,"type":"ping"} x`, []string{"not valid JSON"}},
		{`{"id":%[1]d,"type":"publish","channel":"chat:e","echo":"no"}`, []string{"echo", "true or false"}},
		{`{"id":%[1]d,"type":"comment","doc":"d","action":"add","version":0,"text":5}`, []string{"text", "a string"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":"0","op":["x"],"uid":"u"}`, []string{"version", "an integer"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":99999999999999999999,"op":["x"],"uid":"u"}`, []string{"version", "99999999999999999999"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":0,"op":"x","uid":"u"}`, []string{"op"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":0,"op":[1.5],"uid":"u"}`, []string{"op"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":0,"op":[0],"uid":"u"}`, []string{"op"}},
		{`{"id":%[1]d,"type":"op","doc":"d","version":0,"op":[5,"x"],"uid":"u"}`, nil},
		{`{"id":%[1]d,"type":"op","doc":"d","version":7,"op":["x"],"uid":"u"}`, nil},
		{`{"id":%[1]d,"type":"cursor","doc":"d","version":0,"ranges":[{"anchor":"x","head":0}]}`, []string{"ranges.anchor", "an integer"}},
		{`{"id":%[1]d,"type":"comment","doc":"d","action":"add","version":0,"range":{"from":3,"to":1},"text":"x"}`, nil},
		{`{"id":%[1]d,"type":"comment","doc":"d","action":"poke","comment_id":"cm_1"}`, nil},
		{`{"id":%[1]d,"type":"subscribe","channel":"chat:a b"}`, []string{"channel"}},
		{`{"id":%[1]d,"type":"subscribe","channel":"doc:d"}`, nil},
		{`{"id":%[1]d,"type":"open","doc":"a b"}`, []string{"document id"}},
		{`{"id":%[1]d,"type":"open","doc":".."}`, nil},
		{`{"id":%[1]d,"type":"publish","channel":"system:stats","data":{}}`, nil},
		{`{"id":%[1]d,"type":"retract","channel":"chat:e","offset":99}`, nil},
		{`{"id":%[1]d,"type":"read","channel":"chat:e","offset":99}`, nil},
		{`{"id":%[1]d,"type":"presence","channel":"chat:e","state":[1]}`, nil},
		{`{"id":%[1]d,"type":"refresh","token":"not-a-jwt"}`, nil}, // last: it closes the connection
	} {
		id := int64(1000 + i)
		text := tc.frame
		if strings.Contains(text, "%[1]d") {
			text = fmt.Sprintf(text, id)
		}
		r.sendText(text)
		f := r.next(text, func(f frame) bool { return f.Type == proto.TypeError })
		checkProtocolTerms(t, text, f.Message, tc.want...)
	}

	// The HTTP API.
	a := apiStart(t, nil)
	a.call("POST", "/api/docs", map[string]any{"id": "d", "content": "hello"}, 201, nil)
	for _, tc := range []struct {
		method, path, body string
		want               []string
	}{
		{"POST", "/api/broadcast", `{"channel":7}`, []string{"channel", "a string", "a number"}},
		{"POST", "/api/broadcast", `{"channel":"customer_7","evnt":"e"}`, []string{"unknown field", "evnt"}},
		{"POST", "/api/broadcast", `{"broadcasts":"x"}`, []string{"broadcasts", "an array"}},
		{"POST", "/api/broadcast", `{"broadcasts":[{"channel":1}]}`, []string{"broadcasts.channel", "a string"}},
		{"POST", "/api/broadcast", `{"channel":"a b"}`, []string{"channel"}},
		{"POST", "/api/broadcast", `{"channel":"customer_7"} {"channel":"customer_7"}`, []string{"more than one"}},
		{"POST", "/api/broadcast", `[1]`, []string{"body", "a JSON object", "an array"}},
		{"POST", "/api/broadcast", `{"channel":`, []string{"not valid JSON"}},
		{"POST", "/api/broadcast", `{"channel":"customer_7","ephemeral":"yes"}`, []string{"ephemeral", "true or false"}},
		{"POST", "/api/docs", `{"id":5}`, []string{"id", "a string"}},
		{"POST", "/api/docs", `{"id":"a b"}`, []string{"document id"}},
		{"PUT", "/api/docs/d/content", `{"content":5}`, []string{"content", "a string"}},
		{"PUT", "/api/docs/d/content", `{"content":"x","version":"1"}`, []string{"version", "an integer"}},
		{"PUT", "/api/docs/d/content", `{"content":"x","version":99}`, nil},
		{"PATCH", "/api/docs/d", `{"title":5}`, []string{"title", "a string"}},
		{"POST", "/api/docs/d/compact", `{"before":"x"}`, []string{"before", "an integer"}},
		{"POST", "/api/docs/d/compact", `{"before":99}`, nil},
		{"POST", "/api/docs/import", `{"format":5}`, []string{"format", "a string"}},
		{"POST", "/api/docs/import", `{"format":"tandem-export","format_version":"1"}`, []string{"format_version", "an integer"}},
		{"POST", "/api/docs/import", `{"format":"tandem-export","format_version":1,"doc":{"id":7}}`, []string{"doc.id", "a string"}},
		{"POST", "/api/docs/import", `{"format":"tandem-export","format_version":1,"ops":[{"op":"x"}]}`, nil},
		{"POST", "/api/docs/import", `{"format":"tandem-export","format_version":1,"doc":{"id":"a b"}}`, nil},
		{"POST", "/api/docs/import", `{"format":"tandem-export","format_version":9,"doc":{"id":"n"}}`, nil},
		{"POST", "/api/docs/import", `{"formt":1}`, []string{"unknown field"}},
		{"POST", "/api/docs/import", `{`, []string{"not valid JSON"}},
		{"GET", "/api/channels/customer_7/history?since=-1", ``, []string{"since"}},
		{"GET", "/api/channels/customer_7/history?limit=x", ``, []string{"limit"}},
		{"GET", "/api/channels/a%20b/history", ``, []string{"channel"}},
		{"GET", "/api/docs/d?version=x", ``, []string{"version"}},
		{"GET", "/api/docs/d?version=99", ``, nil},
		{"GET", "/api/docs/a%20b", ``, []string{"document id"}},
		{"GET", "/api/docs/nope", ``, nil},
		{"GET", "/api/docs/d/ops?from=9&to=1", ``, nil},
		{"GET", "/api/docs/d/diff?from=99", ``, nil},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		resp := a.do(tc.method, tc.path, apiKeyAll, body)
		code, msg := resp.apiError()
		what := tc.method + " " + tc.path + " " + tc.body
		if resp.status < 400 || code == "" {
			t.Errorf("%s: %d %s, want an error", what, resp.status, resp.body)
			continue
		}
		checkProtocolTerms(t, what, msg, tc.want...)
	}
}
